"""The one market-data model and its versioned wire format on Kafka.

Wire format: JSON objects keyed by symbol, tagged by `type` ("tick" | "bar") and carrying
`schema_version`. Timestamps are integer epoch microseconds UTC (`ts_us`); for bars `ts_us` is the
bar's start. JSON (not Avro) because every consumer here — Python, Spark's from_json, kcat, a human
with a console consumer — reads it without a schema registry, and msgspec encodes/decodes it with
typed validation at a few hundred nanoseconds per record. A breaking change bumps SCHEMA_VERSION;
decoders reject versions they do not know (they go to the dead-letter topic).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

SCHEMA_VERSION = 1
MAX_SYMBOL_LEN = 16


class Tick(msgspec.Struct, tag_field="type", tag="tick", frozen=True, kw_only=True):
    """One trade print."""

    symbol: str
    ts_us: int
    price: float
    size: float
    source: str
    seq: int
    schema_version: int = SCHEMA_VERSION


class Bar(msgspec.Struct, tag_field="type", tag="bar", frozen=True, kw_only=True):
    """One OHLCV bar starting at `ts_us`."""

    symbol: str
    ts_us: int
    interval: Literal["1m", "5m", "15m", "30m", "1h", "1d"]
    open: float
    high: float
    low: float
    close: float
    volume: float
    source: str
    schema_version: int = SCHEMA_VERSION


Record = Tick | Bar


class InvalidRecord(ValueError):
    """A record that cannot enter the pipeline; `reason` says why (it travels to the DLQ)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Record)


def validate(record: Record) -> Record:
    """Semantic checks the type system cannot express; raises InvalidRecord."""
    if record.schema_version != SCHEMA_VERSION:
        raise InvalidRecord(f"unsupported schema_version {record.schema_version}")
    if not record.symbol or len(record.symbol) > MAX_SYMBOL_LEN or not record.symbol.isupper():
        raise InvalidRecord(f"bad symbol {record.symbol!r}")
    if record.ts_us <= 0:
        raise InvalidRecord(f"bad timestamp {record.ts_us}")
    if isinstance(record, Tick):
        if not math.isfinite(record.price) or not math.isfinite(record.size) or record.size < 0:
            raise InvalidRecord(f"non-finite price or bad size ({record.price}, {record.size})")
    else:
        values = (record.open, record.high, record.low, record.close, record.volume)
        if not all(math.isfinite(v) for v in values):
            raise InvalidRecord("non-finite OHLCV value")
        if record.volume < 0:
            raise InvalidRecord(f"negative volume {record.volume}")
        if not (
            record.low
            <= min(record.open, record.close)
            <= max(record.open, record.close)
            <= record.high
        ):
            raise InvalidRecord(
                f"inconsistent OHLC o={record.open} h={record.high} l={record.low} c={record.close}"
            )
    return record


def encode(record: Record) -> bytes:
    return _encoder.encode(record)


def decode(payload: bytes) -> Record:
    """Parse and validate one Kafka value; raises InvalidRecord with a human-readable reason."""
    try:
        record = _decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise InvalidRecord(f"schema violation: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise InvalidRecord(f"malformed JSON: {exc}") from exc
    return validate(record)


def key(record: Record) -> bytes:
    """Kafka key: the symbol, so one symbol's records stay ordered in one partition."""
    return record.symbol.encode()


def ts_us(dt: datetime) -> int:
    """Epoch microseconds of an aware datetime."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: market timestamps must carry a timezone")
    delta = dt.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_ts_us(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=value)
