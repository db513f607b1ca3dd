"""spark.transforms: wire-format parsing and 1-minute bars, against hand-computed expectations."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark import transforms as T
from stock_assets.lib import marketdata
from stock_assets.lib.marketdata import Tick, ts_us
from stock_assets_tests.payloads import tick_payloads
from stock_assets_tests.spark.conftest import assert_rows_equal

T0 = datetime(2026, 7, 29, 13, 30, tzinfo=UTC)
US0 = ts_us(T0)


def tick_json(extra: object = ..., **overrides: object) -> bytes:
    fields: dict[str, object] = {
        "type": "tick",
        "symbol": "AAPL",
        "ts_us": US0,
        "price": 210.5,
        "size": 100.0,
        "source": "test",
        "seq": 1,
        "schema_version": 1,
    }
    fields.update(overrides)
    if extra is not ...:
        fields["extra"] = extra
    return json.dumps({k: v for k, v in fields.items() if v is not ...}).encode()


OVERSIZE = tick_json(extra="x" * 1000)
PARSE_CASES: list[tuple[bytes, str | None]] = [
    (tick_json(), None),
    (tick_json(price=210), None),  # an integral JSON number is a valid double
    (tick_json(size=0.0), None),
    (tick_json(symbol="BRK.B", extra={"nested": [1, "x"]}), None),  # unknown fields are ignored
    (b"not json", "malformed JSON"),
    (b"", "malformed JSON"),
    (tick_json() + b" x", "malformed JSON"),  # trailing data after the object
    (tick_json() + tick_json(), "malformed JSON"),  # two objects back to back
    (tick_json() + b"\n{}", "malformed JSON"),
    (tick_json() + b' "}"}', "malformed JSON"),  # the last brace outside the first object
    (tick_json(extra={"a": [{}]}) + b'{"b":[]}', "malformed JSON"),
    (tick_json(source='a"}{b\\'), None),  # brackets, quote and backslash inside a string
    (tick_json(extra=[[[{"x": "]}"}]]]), None),  # nested, closed at the end
    (tick_json().replace(b"}", b',"z":"\\ud800"}'), "malformed JSON"),  # a lone surrogate
    (tick_json(type="bar"), "not a tick: type=bar"),
    (tick_json(schema_version=2), "unsupported schema_version 2"),
    (
        tick_json(schema_version=...),
        "schema violation: a field is missing, null or not of its type",
    ),
    (tick_json(symbol="aapl"), "bad symbol aapl"),
    (tick_json(symbol="123"), "bad symbol 123"),
    (tick_json(symbol=""), "bad symbol "),
    (tick_json(symbol="A" * 17), "bad symbol " + "A" * 17),
    (tick_json(symbol=7), "schema violation: a field is missing, null or not of its type"),
    (tick_json(source="a\u0000b"), "bad source a\x00b"),
    (tick_json(source="x" * 65), "bad source " + "x" * 40 + "…"),
    (tick_json(ts_us=0), "bad timestamp 0"),
    (tick_json(ts_us="soon"), "schema violation: a field has the wrong type"),
    (tick_json(price=-12.5), "bad price -12.5"),
    (tick_json(price=0), "bad price 0.0"),
    (tick_json(size=-1.0), "bad size -1.0"),
    (
        b'{"type":"tick","symbol":"AAPL","ts_us":1,"price":NaN,"size":1,"source":"t","seq":1,'
        b'"schema_version":1}',
        "malformed JSON",
    ),
    (tick_json(price="NaN"), "schema violation: a field has the wrong type"),
    (tick_json(seq=...), "schema violation: a field is missing, null or not of its type"),
    (tick_json(seq=-1), "bad seq -1"),
    (OVERSIZE, f"oversize payload: {len(OVERSIZE)}"),
]


@pytest.fixture(scope="module")
def parsed_cases(spark: SparkSession) -> dict[str, tuple[str | None, str]]:
    """Every case parsed in one Spark job: payload → (error, payload column)."""
    raw = spark.createDataFrame([(p,) for p, _ in PARSE_CASES], "value binary")
    return {r["payload"]: (r["error"], r["payload"]) for r in T.parse_ticks(raw).collect()}


@pytest.mark.parametrize(("payload", "error"), PARSE_CASES)
def test_parse_ticks_reasons(
    parsed_cases: dict[str, tuple[str | None, str]], payload: bytes, error: str | None
) -> None:
    assert parsed_cases[payload.decode()][0] == error
    try:  # the Python loader's verdict is the same
        marketdata.decode(payload)
        python_error = None
    except marketdata.InvalidRecord as exc:
        python_error = exc.reason
    assert (python_error is None) == (error is None), python_error


def test_parse_ticks_reads_the_wire_format(spark: SparkSession) -> None:
    tick = Tick(symbol="MSFT", ts_us=US0 + 123_456, price=415.25, size=7.0, source="x", seq=42)
    raw = spark.createDataFrame(
        [(b"MSFT", marketdata.encode(tick), 3, 17)],
        "key binary, value binary, partition int, offset long",
    )
    parsed = T.parse_ticks(raw)
    assert T.invalid_ticks(parsed).count() == 0
    got = T.valid_ticks(parsed).select(
        "symbol", F.unix_micros("ts").alias("ts"), "ts_us", "price", "size", "source", "seq"
    )
    assert_rows_equal(
        got,
        [
            {
                "symbol": "MSFT",
                "ts": US0 + 123_456,
                "ts_us": US0 + 123_456,
                "price": 415.25,
                "size": 7.0,
                "source": "x",
                "seq": 42,
            }
        ],
        key=["symbol", "seq"],
    )
    assert parsed.columns[:3] == ["key", "partition", "offset"]  # Kafka metadata, for the DLQ


def ticks_frame(spark: SparkSession, rows: list[tuple[str, int, float, float, int]]):  # type: ignore[no-untyped-def]
    """(symbol, µs after T0, price, size, seq) rows → a TICK_COLUMNS frame, in the given order."""
    data = [(s, US0 + d, p, z, "t", q) for s, d, p, z, q in rows]
    df = spark.createDataFrame(
        data, "symbol string, ts_us long, price double, size double, source string, seq long"
    )
    return df.select(
        "symbol", F.timestamp_micros("ts_us").alias("ts"), "ts_us", "price", "size", "source", "seq"
    )


def bars_rows(bars):  # type: ignore[no-untyped-def]
    return bars.select("symbol", F.unix_micros("ts").alias("ts"), *T.BAR_COLUMNS[2:])


MIN = 60_000_000


def test_bars_ohlcv_vwap_ordered_by_time_then_seq(spark: SparkSession) -> None:
    ticks = ticks_frame(
        spark,
        [
            # listed out of order: the bar must not depend on row order
            ("AAPL", 30_000_000, 101.0, 10.0, 3),
            ("AAPL", 59_999_999, 99.0, 5.0, 5),  # last tick of the window: close
            ("AAPL", 1_000, 100.0, 20.0, 2),  # same µs as seq 1: seq breaks the tie
            ("AAPL", 1_000, 100.5, 1.0, 1),  # earliest (ts, seq): open
            ("AAPL", 40_000_000, 103.0, 4.0, 4),
            ("AAPL", MIN, 98.0, 1.0, 6),  # exactly on the next minute: next window
            ("MSFT", 5, 400.0, 3.0, 1),
            ("MSFT", 6, 401.0, 1.0, 1),
        ],
    )
    notional = 101 * 10 + 99 * 5 + 100 * 20 + 100.5 * 1 + 103 * 4
    expected = [
        {
            "symbol": "AAPL",
            "ts": US0,
            "open": 100.5,
            "high": 103.0,
            "low": 99.0,
            "close": 99.0,
            "volume": 40.0,
            "vwap": notional / 40,
            "trade_count": 5,
        },
        {
            "symbol": "AAPL",
            "ts": US0 + MIN,
            "open": 98.0,
            "high": 98.0,
            "low": 98.0,
            "close": 98.0,
            "volume": 1.0,
            "vwap": 98.0,
            "trade_count": 1,
        },
        {
            "symbol": "MSFT",
            "ts": US0,
            "open": 400.0,
            "high": 401.0,
            "low": 400.0,
            "close": 401.0,
            "volume": 4.0,
            "vwap": (1200 + 401) / 4,
            "trade_count": 2,
        },
    ]
    assert_rows_equal(bars_rows(T.bars_1m(ticks)), expected, key=["symbol", "ts"])
    # the same ticks in another order and partitioning give the same bars
    shuffled = ticks.repartition(3).orderBy(F.rand(seed=7))
    assert_rows_equal(bars_rows(T.bars_1m(shuffled)), expected, key=["symbol", "ts"])


def test_bars_vwap_falls_back_to_mean_price_without_volume(spark: SparkSession) -> None:
    ticks = ticks_frame(spark, [("IBM", 1, 10.0, 0.0, 1), ("IBM", 2, 12.0, 0.0, 2)])
    expected = [
        {
            "symbol": "IBM",
            "ts": US0,
            "open": 10.0,
            "high": 12.0,
            "low": 10.0,
            "close": 12.0,
            "volume": 0.0,
            "vwap": 11.0,
            "trade_count": 2,
        }
    ]
    assert_rows_equal(bars_rows(T.bars_1m(ticks)), expected, key=["symbol", "ts"])


@pytest.mark.parametrize("offset_us", [0, 1, MIN - 1, MIN, 37 * MIN + 12_345])
def test_window_end_matches_spark_window(spark: SparkSession, offset_us: int) -> None:
    df = spark.createDataFrame([(US0 + offset_us,)], "ts_us long").select(
        T.window_end_us(F.col("ts_us")).alias("mine"),
        F.unix_micros(F.window(F.timestamp_micros("ts_us"), T.BAR_WINDOW).end).alias("spark"),
    )
    row = df.first()
    assert row is not None and row["mine"] == row["spark"]


@settings(
    max_examples=3,
    deadline=None,
    derandomize=False,
    suppress_health_check=list(HealthCheck),
)
@given(st.lists(tick_payloads(), min_size=150, max_size=150))
def test_spark_and_python_accept_and_reject_the_same_payloads(
    spark: SparkSession, payloads: list[bytes]
) -> None:
    """One validation contract: Spark's parse_ticks and marketdata.decode agree record by record."""
    raw = spark.createDataFrame(list(enumerate(payloads)), "offset long, value binary")
    spark_errors = {r["offset"]: r["error"] for r in T.parse_ticks(raw).collect()}
    disagreements = []
    for i, payload in enumerate(payloads):
        try:
            marketdata.decode(payload)
            python_error = None
        except marketdata.InvalidRecord as exc:
            python_error = exc.reason
        if (python_error is None) != (spark_errors[i] is None):
            disagreements.append((payload, python_error, spark_errors[i]))
    assert not disagreements, disagreements[:3]


def test_spark_dead_letters_are_bounded(spark: SparkSession) -> None:
    huge = b'{"type":"tick","symbol":"' + b"A" * 600_000 + b'"}'
    raw = spark.createDataFrame(
        [(b"K" * 1000, huge, "t", 0, 7)],
        "key binary, value binary, topic string, partition int, offset long",
    )
    (row,) = T.bounded_dead_letters(T.invalid_ticks(T.parse_ticks(raw)), "stage").collect()
    headers = {h["key"]: bytes(h["value"]) for h in row["headers"]}
    assert bytes(row["value"]) == huge[: marketdata.DLQ_MAX_VALUE_BYTES]
    assert bytes(row["key"]) == b"K" * marketdata.DLQ_MAX_KEY_BYTES
    assert headers["dlq.payload.sha256"] == hashlib.sha256(huge).hexdigest().encode()
    assert headers["dlq.payload.length"] == str(len(huge)).encode()
    assert headers["dlq.payload.truncated"] == b"true"
    assert headers["dlq.reason"].startswith(b"oversize payload")
    assert headers["dlq.source.offset"] == b"7" and headers["dlq.stage"] == b"stage"
