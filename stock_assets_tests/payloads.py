"""Hypothesis strategies: tick payloads, valid and adversarial, for the validation-contract tests.

Most payloads break zero to three rules at once: fields missing, null, of the wrong JSON type or
out of range (NaN/inf/negative/zero/huge numbers, bad symbols, control characters, oversize
strings, lone surrogates), unknown fields, duplicate keys, raw number literals JSON libraries
disagree on, trailing data (another object after the first), truncation, arbitrary bytes.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from stock_assets.lib.marketdata import CONTRACT

MISSING = object()


class RawNumber(str):
    """A number literal written as is into the JSON text (1e400, -0, 1E2, 0001, …)."""


_INT_EDGES = [0, 1, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), 2**64, 10**30]
_FLOAT_EDGES = [0.0, -0.0, 1e-300, 5e-324, 1e9, 1e9 + 1, 1e12, 1.0000001e12, 1e308]
_RAW_NUMBERS = [
    "1e400",
    "-1e400",
    "-0",
    "1E2",
    "1.0",
    "0001",
    "1.",
    ".5",
    "0x10",
    "+1",
    "1" * 30,
    "0." + "0" * 900 + "1",
    "Infinity",
    "NaN",
]
_WRONG_TYPES = st.sampled_from([None, True, "1", [1], {"a": 1}, MISSING])
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
_SURROGATES = st.sampled_from(["\ud800", "a\udc00", "\ud83d\ude00"])  # lone, lone, a pair


def _ints(lo: int, hi: int) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(lo, hi),
        st.sampled_from([*_INT_EDGES, lo - 1, hi + 1]),
        st.integers(-(2**70), 2**70),
        st.sampled_from(_RAW_NUMBERS).map(RawNumber),
        st.floats(),
        _WRONG_TYPES,
    )


def _floats(lo: float, hi: float) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.floats(lo, hi),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([*_FLOAT_EDGES, -1.0, -12.5, hi * 1.5]),
        st.integers(-(2**80), 2**80),
        st.sampled_from(_RAW_NUMBERS).map(RawNumber),
        st.sampled_from(["NaN", "Infinity", "1.5"]),
        _WRONG_TYPES,
    )


def _strings(pattern: str) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.from_regex(pattern, fullmatch=True),
        _TEXT,
        _SURROGATES,
        st.sampled_from(
            [
                "",
                "aapl",
                "123",
                "A B",
                "AAPL\n",
                "A\x00",
                "x\x7f",
                "Ä",
                "A" * 17,
                "x" * 65,
                "x" * 700,
            ]
        ),
        st.integers(-5, 5),
        _WRONG_TYPES,
    )


C = CONTRACT
VALID: dict[str, st.SearchStrategy[Any]] = {
    "type": st.just("tick"),
    "symbol": st.from_regex(C.symbol_pattern, fullmatch=True),
    "ts_us": st.integers(C.ts_us_min, C.ts_us_max),
    "price": st.floats(1e-6, C.price_max),
    "size": st.floats(0, C.size_max),
    "source": st.from_regex(C.source_pattern, fullmatch=True).filter(lambda s: len(s) < 40),
    "seq": st.integers(C.seq_min, C.seq_max),
    "schema_version": st.just(1),
}
BAD: dict[str, st.SearchStrategy[Any]] = {
    "type": st.one_of(st.sampled_from(["bar", "TICK", "", 1]), _WRONG_TYPES),
    "symbol": _strings(C.symbol_pattern),
    "ts_us": _ints(C.ts_us_min, C.ts_us_max),
    "price": _floats(0, C.price_max),
    "size": _floats(0, C.size_max),
    "source": _strings(C.source_pattern),
    "seq": _ints(C.seq_min, C.seq_max),
    "schema_version": st.one_of(st.sampled_from([0, 2, 1.0, "1", -1, 2**40]), _WRONG_TYPES),
}


@st.composite
def tick_payloads(draw: st.DrawFn) -> bytes:
    fields: dict[str, Any] = {name: draw(s) for name, s in VALID.items()}
    broken = draw(st.lists(st.sampled_from(sorted(BAD)), max_size=3, unique=True))
    for name in broken:
        fields[name] = draw(BAD[name])
    if draw(st.integers(0, 9)) == 0:  # unknown fields (ignored by both decoders)
        fields["extra"] = draw(
            st.one_of(_TEXT, _SURROGATES, st.integers(), st.lists(st.integers()))
        )
    raws: list[str] = []
    obj = {}
    for name, value in fields.items():
        if value is MISSING:
            continue
        if isinstance(value, RawNumber):
            obj[name] = f"__raw{len(raws)}__"
            raws.append(str(value))
        else:
            obj[name] = value
    if draw(st.booleans()):  # key order does not matter
        obj = dict(reversed(obj.items()))
    text = json.dumps(obj, allow_nan=True, ensure_ascii=draw(st.booleans()))
    for i, raw in enumerate(raws):
        text = text.replace(f'"__raw{i}__"', raw)
    payload = text.encode("utf-8", "surrogatepass")  # a lone surrogate: invalid UTF-8 bytes
    mutation = draw(st.integers(0, 19))
    if mutation == 0:
        payload += draw(st.sampled_from([b" x", b"{}", b" ", b"\n", b"]", b"\x00"]))
    elif mutation == 1 and payload:
        payload = payload[: draw(st.integers(0, len(payload) - 1))]
    elif mutation == 2:  # a duplicate key: the last one wins
        key = draw(st.sampled_from(sorted(VALID)))
        value = json.dumps(
            draw(
                st.one_of(
                    VALID[key],
                    BAD[key].filter(lambda v: v is not MISSING and not isinstance(v, RawNumber)),
                )
            ),
            allow_nan=True,
        )
        payload = payload[:-1] + f',"{key}":{value}}}'.encode()
    elif mutation == 3:
        payload = draw(st.binary(max_size=40))
    elif mutation == 4:
        payload = b" \r\n\t" + payload + b"\t\r\n "
    elif mutation == 5:  # two values back to back: Jackson reads the first one only
        payload += draw(st.sampled_from([b"", b" ", b"\n"])) + draw(
            st.sampled_from([payload, b"{}", b'{"a":"}{"}', b'"}"}', b"[]", b'{"x":[{}]}'])
        )
    return payload
