"""The one market-data model and its versioned wire format on Kafka.

Wire format: JSON objects keyed by symbol, tagged by `type` ("tick" | "bar") and carrying
`schema_version`. Timestamps are integer epoch microseconds UTC (`ts_us`); for bars `ts_us` is the
bar's start. JSON (not Avro) because every consumer here — Python, Spark's from_json, kcat, a human
with a console consumer — reads it without a schema registry, and msgspec encodes/decodes it with
typed validation at a few hundred nanoseconds per record. A breaking change bumps SCHEMA_VERSION;
decoders reject versions they do not know (they go to the dead-letter topic).

The tick validation contract is data (`TickContract`, `CONTRACT`): the per-record check here, the
vectorised polars check of the loader's fast path (`tick_valid_expr`) and the Spark column
expressions (spark/transforms.py) are all derived from it, and property tests hold them equal.
A payload is valid UTF-8 of at most `payload_max_bytes`. Every field is required on the wire
(a missing `schema_version` is rejected, not defaulted); unknown fields are ignored (forward
compatibility); duplicate keys: the last one wins.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

import msgspec

if TYPE_CHECKING:
    import polars as pl

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class TickContract:
    """What a valid tick is, as data; every check (Python, polars, Spark) is derived from it.

    Patterns are matched against the whole string. Strings are printable ASCII only: no control
    characters (a NUL fails PostgreSQL's COPY), no lone surrogates, nothing a terminal or a
    CSV line could be confused by. Lengths are bounded so that one record cannot blow up a
    dead-letter write or a row.
    """

    # a whole payload (a tick is ~150 bytes): also keeps every number and nesting depth within
    # what any JSON reader accepts (Jackson, under Spark, refuses numbers over 1000 characters)
    payload_max_bytes: int = 1000
    schema_versions: tuple[int, ...] = (SCHEMA_VERSION,)
    # an upper-case letter then letters, digits, '.', '-' (BRK.B, BF-B): 1..16 characters
    symbol_pattern: str = r"[A-Z][A-Z0-9.\-]{0,15}"
    # printable ASCII (space to '~'): 1..64 characters
    source_pattern: str = r"[\x20-\x7e]{1,64}"
    ts_us_min: int = 1  # after the epoch
    ts_us_max: int = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z (Python's datetime)
    price_max: float = 1e9  # price in (0, price_max], finite
    size_max: float = 1e12  # size in [0, size_max], finite
    seq_min: int = 0
    seq_max: int = 2**63 - 1  # PostgreSQL bigint


CONTRACT = TickContract()

# Dead-letter records are bounded so that writing one never fails (the topic's max.message.bytes
# is 1 MiB): the value is cut to DLQ_MAX_VALUE_BYTES, its full sha256 and length go in headers.
DLQ_MAX_VALUE_BYTES = 64 * 1024
DLQ_MAX_KEY_BYTES = 256
DLQ_MAX_REASON_CHARS = 512
MAX_SYMBOL_LEN = 16  # the symbol pattern's bound, for schemas and column widths
MAX_SOURCE_LEN = 64
_SYMBOL_RE = re.compile(CONTRACT.symbol_pattern)
_SOURCE_RE = re.compile(CONTRACT.source_pattern)


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


class WireTick(msgspec.Struct, tag_field="type", tag="tick", kw_only=True, gc=False):
    """A tick as decoded from the wire: every field required (no defaulted schema_version).

    gc=False: scalar fields only, so no reference cycle; a batch of them does not trigger
    cyclic-GC passes.
    """

    symbol: str
    ts_us: int
    price: float
    size: float
    source: str
    seq: int
    schema_version: int


class _WireBar(msgspec.Struct, tag_field="type", tag="bar", kw_only=True):
    symbol: str
    ts_us: int
    interval: Literal["1m", "5m", "15m", "30m", "1h", "1d"]
    open: float
    high: float
    low: float
    close: float
    volume: float
    source: str
    schema_version: int


WIRE_TICK_FIELDS = ("symbol", "ts_us", "price", "size", "source", "seq", "schema_version")


class InvalidRecord(ValueError):
    """A record that cannot enter the pipeline; `reason` says why (it travels to the DLQ)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(WireTick | _WireBar)
# the union, not WireTick alone: decoding straight into a tagged struct makes its tag optional
tick_decoder = _decoder


def clip(text: str, limit: int) -> str:
    """`text` cut to about `limit` characters, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


def _show(value: object, limit: int = 40) -> str:
    """A bounded repr for reasons: a 500,000-character field must not make a huge reason."""
    return clip(repr(value), limit)


def _price_ok(value: float, c: TickContract = CONTRACT) -> bool:
    return math.isfinite(value) and 0 < value <= c.price_max


def _size_ok(value: float, c: TickContract = CONTRACT) -> bool:
    return math.isfinite(value) and 0 <= value <= c.size_max


def _common_error(
    schema_version: int, symbol: str, source: str, ts: int, c: TickContract = CONTRACT
) -> str | None:
    if schema_version not in c.schema_versions:
        return f"unsupported schema_version {_show(schema_version)}"
    if _SYMBOL_RE.fullmatch(symbol) is None:
        return f"bad symbol {_show(symbol)}"
    if _SOURCE_RE.fullmatch(source) is None:
        return f"bad source {_show(source)}"
    if not c.ts_us_min <= ts <= c.ts_us_max:
        return f"bad timestamp {_show(ts)}"
    return None


def tick_error(t: WireTick | Tick, c: TickContract = CONTRACT) -> str | None:
    """Why a decoded tick breaks the contract (None when it is valid); first failing rule wins."""
    error = _common_error(t.schema_version, t.symbol, t.source, t.ts_us, c)
    if error is not None:
        return error
    if not _price_ok(t.price, c):
        return f"bad price {t.price!r}"
    if not _size_ok(t.size, c):
        return f"bad size {t.size!r}"
    if not c.seq_min <= t.seq <= c.seq_max:
        return f"bad seq {_show(t.seq)}"
    return None


def tick_valid_expr(c: TickContract = CONTRACT) -> pl.Expr:
    """The contract as one polars boolean expression over WIRE_TICK_FIELDS columns.

    Integer bounds are checked before the frame is built (a value outside int64 cannot be a
    column); NaN must be tested explicitly (polars orders NaN above every number).
    """
    import polars as pl

    def anchored(pattern: str) -> str:  # Rust regex: \z is the very end, as fullmatch
        return rf"^(?:{pattern})\z"

    price, size = pl.col("price"), pl.col("size")
    return (
        pl.col("schema_version").is_in(list(c.schema_versions))
        & pl.col("symbol").str.contains(anchored(c.symbol_pattern))
        & pl.col("source").str.contains(anchored(c.source_pattern))
        & pl.col("ts_us").is_between(c.ts_us_min, c.ts_us_max)
        & price.is_finite()
        & (price > 0)
        & (price <= c.price_max)
        & size.is_finite()
        & (size >= 0)
        & (size <= c.size_max)
        & pl.col("seq").is_between(c.seq_min, c.seq_max)
    ).fill_null(False)


def validate(record: Record) -> Record:
    """Semantic checks the type system cannot express; raises InvalidRecord."""
    if isinstance(record, Tick):
        error = tick_error(record)
        if error is not None:
            raise InvalidRecord(error)
    else:
        error = _common_error(record.schema_version, record.symbol, record.source, record.ts_us)
        if error is not None:
            raise InvalidRecord(error)
        values = (record.open, record.high, record.low, record.close)
        if not all(_price_ok(v) for v in values):
            raise InvalidRecord(f"bad OHLC price {_show(values, 120)}")
        if not _size_ok(record.volume):
            raise InvalidRecord(f"bad volume {record.volume!r}")
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
    if len(payload) > CONTRACT.payload_max_bytes:
        raise InvalidRecord(
            f"oversize payload: {len(payload)} bytes > {CONTRACT.payload_max_bytes}"
        )
    try:  # JSON is UTF-8; msgspec only checks the strings it keeps (and raises UnicodeDecodeError)
        payload.decode()
    except UnicodeDecodeError as exc:
        raise InvalidRecord(
            f"malformed JSON: not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from exc
    try:
        wire = _decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise InvalidRecord(f"schema violation: {clip(str(exc), 200)}") from exc
    except msgspec.DecodeError as exc:
        raise InvalidRecord(f"malformed JSON: {clip(str(exc), 200)}") from exc
    cls = Tick if isinstance(wire, WireTick) else Bar
    return validate(cls(**msgspec.structs.asdict(wire)))


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
