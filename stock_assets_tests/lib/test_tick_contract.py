"""The tick validation contract: the loader's fast path is never looser than the per-record one.

Property-based (hypothesis) over valid and adversarial payloads (stock_assets_tests.payloads):
record by record, the columnar path (decode_fast: msgspec per payload, polars vectorised check)
accepts the same payloads with the same values and rejects the same ones with the same reasons
as the per-record path (marketdata.decode). Batches of payload fragments that would join into
valid JSON (a batch decoded as one array could read across payloads) are among the inputs.
Dead-letter records are bounded.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stock_assets.lib import marketdata, tick_loader
from stock_assets.lib.marketdata import CONTRACT, InvalidRecord, Tick
from stock_assets_tests.payloads import tick_payloads

PROPERTY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def per_record(payloads: Sequence[bytes | None]) -> list[str | None]:
    """The reference: one verdict per payload from marketdata.decode (None = accepted)."""
    out: list[str | None] = []
    for p in payloads:
        try:
            record = marketdata.decode(p or b"")
            out.append(None if isinstance(record, Tick) else "not a tick")
        except InvalidRecord as exc:
            out.append(exc.reason)
    return out


def verdicts(batch: tick_loader.DecodedBatch, n: int) -> list[str | None]:
    out: list[str | None] = [None] * n
    for i, reason in batch.rejected:
        out[i] = reason
    accepted = set(batch.rows.get_column("i").to_list())
    assert accepted.isdisjoint(i for i, _ in batch.rejected)
    assert accepted | {i for i, _ in batch.rejected} == set(range(n)), "a payload went missing"
    return out


def assert_same_rows(batch: tick_loader.DecodedBatch, payloads: Sequence[bytes | None]) -> None:
    for row in batch.rows.iter_rows(named=True):
        tick = marketdata.decode(payloads[row["i"]] or b"")
        assert isinstance(tick, Tick)
        for name in marketdata.WIRE_TICK_FIELDS:
            a, b = row[name], getattr(tick, name)
            assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), name


@PROPERTY
@given(tick_payloads())
def test_fast_path_matches_per_record_on_one_payload(payload: bytes) -> None:
    expected = per_record([payload])
    fast = tick_loader.decode_fast([payload])
    if fast is None:  # not a decodable tick: the batch takes the per-record path
        assert expected[0] is not None
        return
    assert verdicts(fast, 1) == expected
    assert_same_rows(fast, [payload])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(tick_payloads(), min_size=1, max_size=40))
def test_decode_batch_matches_per_record_on_a_batch(payloads: list[bytes]) -> None:
    batch = tick_loader.decode_batch(payloads)
    assert verdicts(batch, len(payloads)) == per_record(payloads)
    assert_same_rows(batch, payloads)


@st.composite
def joinable_fragments(draw: st.DrawFn) -> list[bytes]:
    """Payloads cut in two and glued with commas: invalid alone, often valid JSON once joined."""
    payloads: list[bytes] = draw(st.lists(tick_payloads(), min_size=1, max_size=12))
    out: list[bytes] = []
    for p in payloads:
        action = draw(st.integers(0, 3))
        if action == 0 and len(p) > 1:  # cut: two payloads that only make sense together
            cut = draw(st.integers(1, len(p) - 1))
            out += [p[:cut], p[cut:]]
        elif action == 1 and out:  # glue: two values in one payload
            out[-1] = out[-1] + b"," + p
        else:
            out.append(p)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(joinable_fragments())
def test_decode_batch_never_reads_across_payloads(payloads: list[bytes]) -> None:
    batch = tick_loader.decode_batch(payloads)
    assert verdicts(batch, len(payloads)) == per_record(payloads)
    assert_same_rows(batch, payloads)


@PROPERTY
@given(st.lists(tick_payloads(), min_size=1, max_size=40))
def test_vectorised_check_equals_the_per_record_check(payloads: list[bytes]) -> None:
    """On every payload that decodes as a tick, the polars expression == tick_error is None."""
    wires = []
    for p in payloads:
        try:
            wire = marketdata.tick_decoder.decode(p)
        except (ValueError, TypeError):
            continue
        if isinstance(wire, marketdata.WireTick):
            wires.append(wire)
    in_range = [
        w
        for w in wires
        if all(-(2**63) <= getattr(w, f) < 2**63 for f in ("ts_us", "seq", "schema_version"))
    ]
    frame = pl.DataFrame(
        {f: [getattr(w, f) for w in in_range] for f in marketdata.WIRE_TICK_FIELDS},
        schema={
            "symbol": pl.String,
            "ts_us": pl.Int64,
            "price": pl.Float64,
            "size": pl.Float64,
            "source": pl.String,
            "seq": pl.Int64,
            "schema_version": pl.Int64,
        },
    )
    got = frame.select(marketdata.tick_valid_expr()).to_series().to_list()
    assert got == [marketdata.tick_error(w) is None for w in in_range]


def test_mixed_batch_takes_the_per_record_path_and_keeps_the_good_ones() -> None:
    good = marketdata.encode(
        Tick(symbol="AAPL", ts_us=1_700_000_000_000_000, price=1.5, size=2, source="t", seq=1)
    )
    payloads: list[bytes | None] = [
        good,
        b"{not json",
        None,  # a tombstone
        good.replace(b'"source":"t"', b'"source":"t\\u0000"'),
        good.replace(b"1.5", b"-12.5"),
        good.replace(b"1.5", b"0"),
        good.replace(b',"schema_version":1', b""),
        good.replace(b'"AAPL"', b'"' + b"A" * 600_000 + b'"'),
        good,
    ]
    assert tick_loader.decode_fast(payloads) is None
    batch = tick_loader.decode_batch(payloads)
    assert batch.rows.get_column("i").to_list() == [0, 8]
    reasons = dict(batch.rejected)
    assert reasons[1].startswith("malformed JSON")
    assert reasons[2].startswith("malformed JSON")
    assert reasons[3] == "bad source 't\\x00'"
    assert reasons[4] == "bad price -12.5"
    assert reasons[5] == "bad price 0.0"
    assert reasons[6] == "schema violation: Object missing required field `schema_version`"
    assert reasons[7].startswith("oversize payload: 600")


def test_contract_bounds_are_inclusive_where_documented() -> None:
    base = {"symbol": "A", "ts_us": 1, "price": 1.0, "size": 0.0, "source": "s", "seq": 0}

    def error(**kw: object) -> str | None:
        return marketdata.tick_error(
            marketdata.WireTick(**{**base, **kw, "schema_version": 1})  # type: ignore[arg-type]
        )

    assert error() is None
    assert error(price=CONTRACT.price_max, size=CONTRACT.size_max) is None
    assert error(symbol="ABCDEFGHIJKLMNOP", source="x" * 64, seq=2**63 - 1) is None
    assert error(ts_us=CONTRACT.ts_us_max) is None
    assert error(price=math.nextafter(CONTRACT.price_max, math.inf)) is not None
    assert error(source="x" * 65) is not None
    assert error(symbol="A\n") is not None  # `$` would match before a final newline: fullmatch
    assert error(ts_us=0) is not None


def test_dead_letter_records_are_bounded() -> None:
    value, key = b"v" * 2_000_000, b"k" * 600_000
    out_value, out_key, headers = tick_loader.bounded_dead_letter(value, key, "bad symbol " * 9999)
    h = dict(headers)
    assert out_value == value[: marketdata.DLQ_MAX_VALUE_BYTES]
    assert out_key is not None and len(out_key) == marketdata.DLQ_MAX_KEY_BYTES
    assert h["dlq.payload.sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert h["dlq.payload.length"] == b"2000000"
    assert h["dlq.payload.truncated"] == b"true"
    assert h["dlq.key.length"] == b"600000"
    assert len(h["dlq.reason"]) < marketdata.DLQ_MAX_REASON_CHARS + 40
    small, _, small_h = tick_loader.bounded_dead_letter(b"{}", None, "r")
    assert small == b"{}" and dict(small_h)["dlq.payload.truncated"] == b"false"
