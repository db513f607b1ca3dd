"""Load exact Kafka offset ranges of the ticks topic into market.raw_ticks, exactly once.

One warehouse transaction per load: advisory locks on each (topic, partition), a check of the
ledger (ingest.kafka_offsets), COPY of every valid tick, the ledger rows for the ranges, commit.
A crash anywhere before the commit leaves nothing behind; re-running a range that committed is a
no-op; the ledger's exclusion constraint rejects overlapping ranges even from concurrent loaders.

Per consume batch the fast path decodes every payload with msgspec (C, one call per payload, no
Python loop body), builds the batch as polars columns, validates it with one vectorised
expression derived from `marketdata.CONTRACT` and streams it as CSV to one COPY. One thread does
it all, in small batches: librdkafka fetches ahead in its own threads and the server parses the
COPY in its own process, so a second Python thread only fought the first one for the GIL (ADR
0032). A batch holding any payload that does not decode as a tick takes the per-record path
(`marketdata.decode`), which gives each bad record its own reason; both paths are
property-tested to agree record by record. Python's cyclic garbage collector is off during a
load: confluent-kafka's Message objects are GC-tracked, and its collections took most of the
consume time (ADR 0037).

Invalid records go to the dead-letter topic, bounded in size (marketdata.DLQ_MAX_*), queued
until the COPY succeeded and flushed before the commit (at-least-once there: a crash between
flush and commit re-sends them, identifiable by the dlq.source.* headers). A record the
warehouse itself rejects (a data or integrity error) does not fail its range: the load is redone
in careful mode — one COPY per batch in a savepoint, the failing batch row by row — and only
that record is dead-lettered.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import logging
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from operator import attrgetter

import msgspec
import polars as pl
import psycopg
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from psycopg import sql

from stock_assets.lib import tables
from stock_assets.lib.frames import CSV_DATETIME
from stock_assets.lib.marketdata import (
    CONTRACT,
    DLQ_MAX_KEY_BYTES,
    DLQ_MAX_REASON_CHARS,
    DLQ_MAX_VALUE_BYTES,
    WIRE_TICK_FIELDS,
    InvalidRecord,
    Tick,
    WireTick,
    clip,
    decode,
    tick_decoder,
    tick_error,
    tick_valid_expr,
)

log = logging.getLogger(__name__)

RAW_TICK_COLUMNS = tables.RAW_TICKS.written
COPY_RAW_TICKS = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
    sql.Identifier(tables.RAW_TICKS.schema_name, tables.RAW_TICKS.table_name),
    sql.SQL(", ").join(map(sql.Identifier, RAW_TICK_COLUMNS)),
)
# messages per consume batch once the load is under way. Small: confluent-kafka holds the GIL
# while it builds a batch's Message objects, and between two batches the server's COPY only has
# what the socket holds; 5k costs ~0.02 s more per 100k rows than 20k in per-batch overhead
CONSUME_BATCH = 5_000
FIRST_BATCH = 1_000  # the first batch, so the COPY starts early; then doubling to CONSUME_BATCH
CONSUME_WAIT_S = 0.1  # one consume() call's wait; the load's own deadline is `timeout_s`
# librdkafka consumer settings the loader relies on (merge them into the consumer's config).
# - reconnect.backoff.ms: since librdkafka 2.10 the bootstrap connection is dropped once metadata
#   names the brokers, and the connection to the partition leader is "sparse" (opened on demand)
#   and rate-limited to one attempt per reconnect.backoff.ms / 2: 50 ms by default, paid by a
#   load before its first fetch ("still suppressed for 49ms" in debug=broker logs).
# - fetch.queue.backoff.ms: once the local queue holds queued.min.messages (100k), the next fetch
#   of the partition is postponed by this much, 1000 ms by default: the loader drained the queue
#   and then waited. 10 ms: 1.7-2.1x the consume rate of a 1-partition 600k backlog.
#   Larger fetches (fetch.message.max.bytes 4 or 16 MiB, queued.min.messages 200k/500k) measured
#   no gain; 3 partitions in one consumer did (1.5-1.7x), 3 consumers in 3 threads did not (the
#   GIL is held while confluent-kafka builds each Message).
CONSUMER_CONFIG: dict[str, int | bool | str] = {
    "reconnect.backoff.ms": 20,
    "fetch.queue.backoff.ms": 10,
    "enable.partition.eof": False,
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64 = (-(2**63), 2**63 - 1)
_TICK_VALID = tick_valid_expr()  # built once: ~0.4 ms per build, once per batch otherwise
_WIRE_SCHEMA = {
    "symbol": pl.String,
    "ts_us": pl.Int64,
    "price": pl.Float64,
    "size": pl.Float64,
    "source": pl.String,
    "seq": pl.Int64,
    "schema_version": pl.Int64,
}


@dataclass
class LoadProfile:
    """Seconds spent per stage of the last load (for the benchmark's profile split)."""

    consume: float = 0.0  # consume() calls after the first batch, and the per-message getters
    prelude: float = 0.0  # metadata + assign, advisory locks, ledger check
    first_batch: float = 0.0  # from the end of the prelude to the first batch consumed
    finish: float = 0.0  # after the last COPY write: COPY end, dead letters, ledger rows, commit
    decode: float = 0.0
    validate: float = 0.0
    copy: float = 0.0
    fast_batches: int = 0
    slow_batches: int = 0
    last_write_end: tuple[float, float] = (0.0, 0.0)  # _now() after the last COPY write
    # this thread's CPU seconds per stage (time.thread_time): wall minus CPU is waiting
    cpu: dict[str, float] = field(default_factory=dict)


PROFILE = LoadProfile()


@contextlib.contextmanager
def _no_cyclic_gc() -> Generator[None]:
    """Python's cyclic garbage collector off for the block (back on after it, if it was on).

    confluent-kafka's Message objects are GC-tracked: 5,000 per batch set off ~7 young-generation
    collections, and the objects they promote set off full collections that walk the whole heap
    (every module's objects: polars, dagster...). That was 1.2-1.5 of the 1.6-1.9 µs per
    message `consume()` cost. Nothing the load allocates forms a reference cycle that matters:
    its objects are freed by reference counting, and the collector catches up when it is back on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.thread_time()


def _spent(stage: str, since: tuple[float, float]) -> tuple[float, float]:
    """Add the wall and CPU time since `since` to `stage` of PROFILE; returns now."""
    now = _now()
    setattr(PROFILE, stage, getattr(PROFILE, stage) + now[0] - since[0])
    PROFILE.cpu[stage] = PROFILE.cpu.get(stage, 0.0) + now[1] - since[1]
    return now


@dataclass
class DecodedBatch:
    """Valid ticks of one batch (`rows`: wire columns + `i`, the payload's index) and rejects."""

    rows: pl.DataFrame
    rejected: list[tuple[int, str]]  # (payload index, reason)
    fast: bool


def _frame(columns: Sequence[Sequence[object]], index: Sequence[int]) -> pl.DataFrame:
    data = {
        name: pl.Series(name, values, dtype=_WIRE_SCHEMA[name], strict=True)
        for name, values in zip(WIRE_TICK_FIELDS, columns, strict=True)
    }
    return pl.DataFrame({**data, "i": pl.Series("i", index, dtype=pl.Int64)})


def decode_fast(payloads: Sequence[bytes | None]) -> DecodedBatch | None:
    """The columnar path; None when a payload does not decode as a tick (or overflows int64)."""
    t = _now()
    try:
        if payloads and max(map(len, payloads)) > CONTRACT.payload_max_bytes:  # type: ignore[arg-type]
            return None
        # UTF-8 of every payload at once (a character split across two payloads would sit
        # outside a JSON value, which the decoder rejects anyway). One call per payload: one
        # call for the batch as a JSON array was slower (0.25 vs 0.22 µs per payload), 0.40
        # with the check it needs (two invalid payloads can join into a valid array)
        joined = b"".join(payloads)  # type: ignore[arg-type]
        if not joined.isascii():
            joined.decode()
        wires = list(map(tick_decoder.decode, payloads))  # type: ignore[arg-type]
        if any(type(w) is not WireTick for w in wires):  # a bar on the ticks topic
            return None
    except (msgspec.DecodeError, TypeError, UnicodeDecodeError):  # TypeError: a null value
        return None
    finally:
        t = _spent("decode", t)
    try:
        return _validated(wires)
    finally:
        _spent("validate", t)


def _validated(wires: list[WireTick]) -> DecodedBatch | None:
    if not wires:
        return DecodedBatch(_frame([[]] * len(WIRE_TICK_FIELDS), []), [], True)
    columns = [list(map(attrgetter(name), wires)) for name in WIRE_TICK_FIELDS]
    try:
        frame = _frame(columns, range(len(wires)))
    except (OverflowError, TypeError, pl.exceptions.PolarsError):  # an int beyond int64
        return None
    ok = frame.select(_TICK_VALID).to_series()
    if ok.all():
        return DecodedBatch(frame, [], True)
    rejected = []
    for i in (~ok).arg_true().to_list():
        reason = tick_error(wires[i])
        if reason is None:  # cannot happen while the property tests pass; never load it anyway
            reason = "rejected by the vectorised check only"
        rejected.append((i, reason))
    return DecodedBatch(frame.filter(ok), rejected, True)


def decode_slow(payloads: Sequence[bytes | None]) -> DecodedBatch:
    """The per-record path: `marketdata.decode` on each payload, each reject with its reason."""
    good: list[Tick] = []
    index: list[int] = []
    rejected: list[tuple[int, str]] = []
    for i, payload in enumerate(payloads):
        try:
            record = decode(payload or b"")
            if not isinstance(record, Tick):
                raise InvalidRecord(f"not a tick: a {type(record).__name__.lower()} record")
        except InvalidRecord as exc:
            rejected.append((i, exc.reason))
            continue
        good.append(record)
        index.append(i)
    columns = [[getattr(t, name) for t in good] for name in WIRE_TICK_FIELDS]
    return DecodedBatch(_frame(columns, index), rejected, False)


def decode_batch(payloads: Sequence[bytes | None]) -> DecodedBatch:
    fast = decode_fast(payloads)
    if fast is not None:
        return fast
    t = _now()
    try:
        return decode_slow(payloads)
    finally:
        _spent("decode", t)


def copy_frame(rows: pl.DataFrame) -> pl.DataFrame:
    """Decoded rows + kafka_partition/kafka_offset → the COPY columns, in order."""
    return rows.select(
        pl.col("ts_us").cast(pl.Datetime("us", "UTC")).alias("ts"),
        "symbol",
        "price",
        "size",
        "source",
        "seq",
        pl.col("kafka_partition").cast(pl.Int32),
        pl.col("kafka_offset"),
    )


def to_csv(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()  # straight to bytes: no str of the whole batch to encode
    frame.write_csv(buffer, include_header=False, datetime_format=CSV_DATETIME)
    return buffer.getvalue()


def bounded_dead_letter(
    value: bytes | None, key: bytes | None, reason: str
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """(value, key, headers) of a dead-letter record that fits any broker's message limit.

    The value keeps its first DLQ_MAX_VALUE_BYTES; `dlq.payload.sha256` and `dlq.payload.length`
    identify the original; `dlq.payload.truncated` says whether it was cut.
    """
    raw = value or b""
    headers = [
        ("dlq.reason", clip(reason, DLQ_MAX_REASON_CHARS).encode()),
        ("dlq.payload.sha256", hashlib.sha256(raw).hexdigest().encode()),
        ("dlq.payload.length", str(len(raw)).encode()),
        ("dlq.payload.truncated", b"true" if len(raw) > DLQ_MAX_VALUE_BYTES else b"false"),
    ]
    if key is not None and len(key) > DLQ_MAX_KEY_BYTES:
        headers.append(("dlq.key.length", str(len(key)).encode()))
        key = key[:DLQ_MAX_KEY_BYTES]
    return (None if value is None else raw[:DLQ_MAX_VALUE_BYTES]), key, headers


class RangeConflict(RuntimeError):
    """A requested range overlaps a loaded one without being identical to it."""


@dataclass(frozen=True)
class OffsetRange:
    partition: int
    start: int  # inclusive
    end: int  # exclusive

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"bad offset range {self}")

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass
class LoadResult:
    rows: int = 0
    dead_lettered: int = 0
    consumed: int = 0
    loaded: list[OffsetRange] = field(default_factory=list)
    skipped: list[OffsetRange] = field(default_factory=list)  # already in the ledger
    min_ts_us: int | None = None
    max_ts_us: int | None = None
    symbols: set[str] = field(default_factory=set)
    hours: set[int] = field(default_factory=set)  # epoch hours with a loaded tick
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)

    def touched_dates(self, tz: tzinfo) -> list[date]:
        """Local dates (in `tz`) with at least one loaded tick; exact for whole-hour offsets."""
        return sorted({(EPOCH + timedelta(hours=h)).astimezone(tz).date() for h in self.hours})

    def time_range(self) -> tuple[datetime, datetime] | None:
        if self.min_ts_us is None or self.max_ts_us is None:
            return None
        return (
            EPOCH + timedelta(microseconds=self.min_ts_us),
            EPOCH + timedelta(microseconds=self.max_ts_us),
        )


class DeadLetters:
    """Producer to the dead-letter topic; records are queued by `send`, produced by `flush`.

    `flush` raises unless every record was acknowledged; `discard` drops what is queued (a load
    redone from the start sends its dead letters again).
    """

    def __init__(self, producer: Producer, topic: str, stage: str = "ingest") -> None:
        self.producer, self.topic, self.stage = producer, topic, stage
        self.errors: list[str] = []
        self.pending: list[tuple[Message, str]] = []

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self.errors.append(str(err))

    def send(self, msg: Message, reason: str) -> None:
        self.pending.append((msg, reason))

    def discard(self) -> None:
        self.pending.clear()

    def _produce(self, msg: Message, reason: str) -> None:
        value, key, headers = bounded_dead_letter(msg.value(), msg.key(), reason)
        all_headers: list[tuple[str, str | bytes | None]] = [
            *headers,
            ("dlq.stage", self.stage.encode()),
            ("dlq.source.topic", (msg.topic() or "").encode()),
            ("dlq.source.partition", str(msg.partition()).encode()),
            ("dlq.source.offset", str(msg.offset()).encode()),
        ]
        while True:
            try:
                self.producer.produce(
                    self.topic,
                    value=value,
                    key=key,
                    headers=all_headers,
                    on_delivery=self._delivered,
                )
                break
            except BufferError:  # local queue full: let deliveries drain
                self.producer.poll(0.1)
        self.producer.poll(0)

    def flush(self, timeout_s: float) -> None:
        for msg, reason in self.pending:
            self._produce(msg, reason)
        self.pending.clear()
        remaining = self.producer.flush(timeout_s)
        if remaining or self.errors:
            raise RuntimeError(
                f"dead-letter topic {self.topic}: {remaining} undelivered, errors {self.errors[:3]}"
            )


def _send_ledger_check(
    conn: psycopg.Connection, topic: str, ranges: Sequence[OffsetRange]
) -> psycopg.Cursor:
    """Ledger ranges overlapping each of `ranges` (one query for all of them); fetch later."""
    return conn.execute(
        "SELECT k.partition, k.start_offset, k.end_offset"
        " FROM unnest(%s::int[], %s::bigint[], %s::bigint[]) AS r(p, s, e)"
        " JOIN ingest.kafka_offsets k ON k.topic = %s AND k.partition = r.p"
        " AND int8range(k.start_offset, k.end_offset) && int8range(r.s, r.e)"
        " ORDER BY k.partition, k.start_offset",
        (
            [r.partition for r in ranges],
            [r.start for r in ranges],
            [r.end for r in ranges],
            topic,
        ),
    )


def _overlaps_by_partition(
    cursor: psycopg.Cursor, ranges: Sequence[OffsetRange]
) -> dict[int, list[tuple[int, int]]]:
    found: dict[int, list[tuple[int, int]]] = {r.partition: [] for r in ranges}
    for p, a, b in cursor.fetchall():
        found[int(p)].append((int(a), int(b)))
    return found


def ledger_overlaps(
    conn: psycopg.Connection, topic: str, ranges: Sequence[OffsetRange]
) -> dict[int, list[tuple[int, int]]]:
    """Ledger ranges overlapping each of `ranges`, by partition (one query for all of them)."""
    return _overlaps_by_partition(_send_ledger_check(conn, topic, ranges), ranges)


def load_ranges(
    conn: psycopg.Connection,
    consumer: Consumer,
    topic: str,
    ranges: Sequence[OffsetRange],
    dead_letters: DeadLetters,
    *,
    run_id: str | None = None,
    timeout_s: float = 60.0,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Load exactly `ranges` of `topic` (one transaction); `progress(rows)` after each COPY chunk.

    `consumer` must be a fresh consumer (it is assigned here); `timeout_s` bounds the wait for
    the next message of a range that is not complete yet. `conn` must have autocommit off and no
    transaction open: the load begins and commits its own (or rolls it back and raises).
    """
    if conn.autocommit or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError("load_ranges commits its own transaction: pass an idle connection")
    PROFILE.__init__()  # type: ignore[misc]
    t_start = _now()
    by_partition = sorted(ranges, key=lambda r: r.partition)
    if len({r.partition for r in by_partition}) != len(by_partition):
        raise ValueError("at most one range per partition in one load")
    with _no_cyclic_gc():
        return _load_ranges(
            conn, consumer, topic, by_partition, dead_letters, run_id, timeout_s, progress, t_start
        )


def _load_ranges(
    conn: psycopg.Connection,
    consumer: Consumer,
    topic: str,
    by_partition: Sequence[OffsetRange],
    dead_letters: DeadLetters,
    run_id: str | None,
    timeout_s: float,
    progress: Callable[[int], None] | None,
    t_start: tuple[float, float],
) -> LoadResult:
    result = LoadResult()
    pending: list[OffsetRange] = []
    try:
        with conn.pipeline():
            # BEGIN (psycopg's, implicit: in pipeline mode psycopg waits for its result, a round
            # trip of its own, 4-8 ms for a new connection's first statement), then in one round
            # trip the locks, taken in partition order (unnest yields the array in order, so
            # concurrent loaders cannot deadlock), and the ledger check; sent before the
            # consumer asks the broker for the topic's metadata and is assigned, so that the
            # server works meanwhile. Consuming is read-only: what is loaded is still decided by
            # the ledger, inside the transaction. Without the metadata request, a consumer whose
            # broker connection is already up does not look up the leader of a newly assigned
            # topic until its 1 s metadata timer (ADR 0030). Assigning in a thread while BEGIN
            # runs measured no gain: a new consumer's first ~12 ms go to librdkafka (ADR 0037)
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s), p) FROM unnest(%s::int[]) AS p",
                (topic, [r.partition for r in by_partition]),
            )
            check = _send_ledger_check(conn, topic, by_partition)
            consumer.list_topics(topic, timeout=timeout_s)
            consumer.assign([TopicPartition(topic, r.partition, r.start) for r in by_partition])
            ledger = _overlaps_by_partition(check, by_partition)
        for r in by_partition:
            overlaps = ledger[r.partition]
            if overlaps == [(r.start, r.end)]:
                result.skipped.append(r)
            elif overlaps:
                raise RangeConflict(f"{topic}[{r.partition}] {r.start}-{r.end} overlaps {overlaps}")
            else:
                pending.append(r)
        if result.skipped:
            consumer.pause([TopicPartition(topic, r.partition) for r in result.skipped])
        _spent("prelude", t_start)
        counts: dict[int, int] = {}
        if pending:
            counts = _consume_into_copy(
                conn, consumer, topic, pending, dead_letters, result, timeout_s, progress
            )
            dead_letters.flush(timeout_s)
        with conn.pipeline(), conn.cursor() as cur:  # the ledger rows and COMMIT: one round trip
            cur.executemany(
                "INSERT INTO ingest.kafka_offsets"
                " (topic, partition, start_offset, end_offset, row_count, run_id)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (topic, r.partition, r.start, r.end, counts[r.partition], run_id)
                    for r in pending
                ],
            )
            conn.commit()
    except BaseException:
        with contextlib.suppress(psycopg.Error):  # a broken connection cannot commit anyway
            conn.rollback()
        raise
    result.loaded = pending
    if pending:
        _spent("finish", PROFILE.last_write_end)
    return result


@dataclass
class _Attempt:
    """What one pass over the ranges loaded (merged into the LoadResult when it committed)."""

    counts: dict[int, int]
    rows: int = 0
    consumed: int = 0
    dead_lettered: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    min_ts_us: int | None = None
    max_ts_us: int | None = None
    symbols: set[str] = field(default_factory=set)
    hours: set[int] = field(default_factory=set)

    def reject(self, dead_letters: DeadLetters, msg: Message, reason: str) -> None:
        dead_letters.send(msg, reason)
        category = reason.split(":")[0] if ":" in reason else " ".join(reason.split()[:2])
        self.reasons[category] = self.reasons.get(category, 0) + 1
        self.dead_lettered += 1

    def loaded(self, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        self.rows += frame.height
        ts = pl.col("ts_us")
        # one query for every statistic: each polars call has a fixed cost, paid per batch
        lo, hi, symbols, hours, partitions = frame.select(
            ts.min().alias("lo"),
            ts.max().alias("hi"),
            pl.col("symbol").unique().implode(),
            (ts // 3_600_000_000).unique().implode().alias("hours"),
            pl.col("kafka_partition").value_counts(name="n").implode(),
        ).row(0)
        assert isinstance(lo, int) and isinstance(hi, int)
        for counted in partitions:
            self.counts[counted["kafka_partition"]] += counted["n"]
        self.min_ts_us = lo if self.min_ts_us is None else min(self.min_ts_us, lo)
        self.max_ts_us = hi if self.max_ts_us is None else max(self.max_ts_us, hi)
        self.symbols.update(symbols)
        self.hours.update(hours)

    def merge_into(self, result: LoadResult) -> None:
        result.rows += self.rows
        result.consumed += self.consumed
        result.dead_lettered += self.dead_lettered
        for reason, n in self.reasons.items():
            result.dead_letter_reasons[reason] = result.dead_letter_reasons.get(reason, 0) + n
        if self.min_ts_us is not None and self.max_ts_us is not None:
            lo, hi = result.min_ts_us, result.max_ts_us
            result.min_ts_us = self.min_ts_us if lo is None else min(lo, self.min_ts_us)
            result.max_ts_us = self.max_ts_us if hi is None else max(hi, self.max_ts_us)
        result.symbols |= self.symbols
        result.hours |= self.hours


def _consume_into_copy(
    conn: psycopg.Connection,
    consumer: Consumer,
    topic: str,
    pending: Sequence[OffsetRange],
    dead_letters: DeadLetters,
    result: LoadResult,
    timeout_s: float,
    progress: Callable[[int], None] | None,
) -> dict[int, int]:
    try:
        with conn.transaction():  # a savepoint: a rejected COPY rolls back alone
            attempt = _load(
                conn, consumer, topic, pending, dead_letters, timeout_s, progress, assigned=True
            )
    except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
        log.warning(
            "%s: the warehouse rejected a record (%s); reloading in careful mode",
            topic,
            clip(str(exc).splitlines()[0], 200),
        )
        dead_letters.discard()
        attempt = _load(
            conn, consumer, topic, pending, dead_letters, timeout_s, progress, careful=True
        )
    attempt.merge_into(result)
    return attempt.counts


def _load(
    conn: psycopg.Connection,
    consumer: Consumer,
    topic: str,
    pending: Sequence[OffsetRange],
    dead_letters: DeadLetters,
    timeout_s: float,
    progress: Callable[[int], None] | None,
    *,
    careful: bool = False,
    assigned: bool = False,
) -> _Attempt:
    attempt = _Attempt(counts={r.partition: 0 for r in pending})
    batches = contextlib.closing(  # stops the prefetch thread however the COPY ends
        _decoded_batches(consumer, topic, pending, dead_letters, attempt, timeout_s, assigned)
    )
    with batches as batches_iter, conn.cursor() as cur:
        if not careful:
            # the default writer, in this thread: the socket buffers what the server has not read
            # yet, and a full buffer is the server's pace (psycopg waits with the GIL released).
            # QueuedLibpqWriter's worker thread needed the GIL for every 128 KiB it pushed and got
            # it late while this thread decoded: the server sat idle (ADR 0032)
            with cur.copy(COPY_RAW_TICKS) as copy:
                for frame, _ in batches_iter:
                    t = _now()
                    copy.write(to_csv(copy_frame(frame)))
                    _spent("copy", t)
                    attempt.loaded(frame)
                    if progress is not None:
                        progress(attempt.rows)
                PROFILE.last_write_end = _now()
            return attempt
        for frame, messages in batches_iter:
            try:
                with conn.transaction(), cur.copy(COPY_RAW_TICKS) as copy:
                    copy.write(to_csv(copy_frame(frame)))
                attempt.loaded(frame)
            except (psycopg.errors.DataError, psycopg.errors.IntegrityError):
                for row in frame.iter_slices(1):
                    try:
                        with conn.transaction(), cur.copy(COPY_RAW_TICKS) as copy:
                            copy.write(to_csv(copy_frame(row)))
                        attempt.loaded(row)
                    except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
                        reason = f"rejected by the warehouse: {str(exc).splitlines()[0]}"
                        attempt.reject(dead_letters, messages[int(row["i"][0])], reason)
            if progress is not None:
                progress(attempt.rows)
    PROFILE.last_write_end = _now()
    return attempt


@dataclass
class _Consumed:
    messages: list[Message]
    parts: list[int | None]
    offsets: list[int | None]
    payloads: list[bytes | None]


def _consumed_batches(
    consumer: Consumer, topic: str, pending: Sequence[OffsetRange], timeout_s: float
) -> Generator[_Consumed]:
    """The messages of `pending`, batch by batch, until every partition reached its end."""
    ends = {r.partition: r.end for r in pending}
    starts = {r.partition: r.start for r in pending}
    open_parts = set(ends)
    # the first batch small, so that the first COPY starts early and overlaps the rest, then
    # doubling: few batches (each has a fixed cost) for small loads, CONSUME_BATCH for large ones
    batch_size = FIRST_BATCH
    # never ask for more than the ranges still hold: consume(n, timeout) waits for n messages
    # until the timeout, so the last batch of a range ending at the partition's end would wait
    left = sum(r.size for r in pending)
    deadline = time.monotonic() + timeout_s
    first = True
    t = _now()  # consume time: from each resumption to the next yield
    while open_parts:
        messages = consumer.consume(max(1, min(batch_size, left)), timeout=CONSUME_WAIT_S)
        if not messages:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{topic}: no message for {timeout_s}s before the end of partitions "
                    f"{sorted(open_parts)} (ends {ends})"
                )
            left = _close_finished(consumer, topic, open_parts, ends, starts)
            continue
        deadline = time.monotonic() + timeout_s
        batch_size = min(CONSUME_BATCH, batch_size * 2)
        if any(m.error() is not None for m in messages):
            messages = _drop_errors(topic, messages)
        parts = [m.partition() for m in messages]
        offsets = [m.offset() for m in messages]
        if messages and not _all_in_range(parts, offsets, starts, ends):
            keep = [
                i
                for i, (p, o) in enumerate(zip(parts, offsets, strict=True))
                if p in ends and o is not None and starts[p] <= o < ends[p]
            ]
            messages = [messages[i] for i in keep]
            parts = [parts[i] for i in keep]
            offsets = [offsets[i] for i in keep]
        payloads = [m.value() for m in messages]
        left = _close_finished(consumer, topic, open_parts, ends, starts)
        # the time to the first batch is a fixed cost, not a consume rate
        _spent("first_batch" if first else "consume", t)
        first = False
        yield _Consumed(messages, parts, offsets, payloads)
        t = _now()


def _decoded_batches(
    consumer: Consumer,
    topic: str,
    pending: Sequence[OffsetRange],
    dead_letters: DeadLetters,
    attempt: _Attempt,
    timeout_s: float,
    assigned: bool,
) -> Generator[tuple[pl.DataFrame, list[Message]]]:
    """(valid rows with kafka_partition/kafka_offset, the batch's messages) per consume batch.

    `assigned`: the consumer already stands at the ranges' starts (load_ranges assigned it);
    otherwise (a redo in careful mode) it is assigned back to them here.
    """
    if not assigned:
        tps = [TopicPartition(topic, r.partition, r.start) for r in pending]
        consumer.assign(tps)
        consumer.resume(tps)  # partitions paused by the first pass
    consumed = _consumed_batches(consumer, topic, pending, timeout_s)
    try:
        for c in consumed:
            attempt.consumed += len(c.messages)
            batch = decode_batch(c.payloads)  # times itself (decode, validate)
            t = _now()
            if batch.fast:
                PROFILE.fast_batches += 1
            else:
                PROFILE.slow_batches += 1
            for i, reason in batch.rejected:
                attempt.reject(dead_letters, c.messages[i], reason)
            index = batch.rows.get_column("i")
            frame = batch.rows.with_columns(
                pl.Series("kafka_partition", c.parts, dtype=pl.Int64).gather(index),
                pl.Series("kafka_offset", c.offsets, dtype=pl.Int64).gather(index),
            )
            _spent("validate", t)  # rejects and offsets
            yield frame, c.messages
    finally:
        consumed.close()


def _drop_errors(topic: str, messages: list[Message]) -> list[Message]:
    kept = []
    for msg in messages:
        err = msg.error()
        if err is None:
            kept.append(msg)
        elif err.code() != KafkaError._PARTITION_EOF:
            raise RuntimeError(f"{topic}: consume error {err}")
    return kept


def _all_in_range(
    parts: list[int | None],
    offsets: list[int | None],
    starts: dict[int, int],
    ends: dict[int, int],
) -> bool:
    present = {p for p in parts if p is not None}
    known = [o for o in offsets if o is not None]
    if None in parts or len(known) != len(offsets) or not present <= ends.keys():
        return False
    lo, hi = min(known), max(known)
    return all(starts[p] <= lo and hi < ends[p] for p in present)


def _close_finished(
    consumer: Consumer,
    topic: str,
    open_parts: set[int],
    ends: dict[int, int],
    starts: dict[int, int],
) -> int:
    """Drop partitions whose position reached the range end (control records count too).

    Returns the offsets still to read in the open partitions (an upper bound of the messages:
    transaction markers take offsets too).
    """
    if not open_parts:
        return 0
    positions = consumer.position([TopicPartition(topic, p) for p in open_parts])
    done = [tp for tp in positions if tp.offset >= ends[tp.partition]]
    for tp in done:
        open_parts.discard(tp.partition)
    if done:
        consumer.pause(done)
    return sum(  # a partition not consumed yet has no position (a negative offset)
        ends[tp.partition] - max(tp.offset, starts[tp.partition])
        for tp in positions
        if tp.partition in open_parts
    )


def plan_batches(
    next_offsets: dict[int, int], end_offsets: dict[int, int], max_messages: int, max_batches: int
) -> list[list[OffsetRange]]:
    """Split the unrequested [next, end) offsets into batches of at most `max_messages` messages.

    Each batch holds at most one range per partition; partitions are taken in order, so the
    oldest backlog of every partition drains first. Returns at most `max_batches` batches.
    """
    cursor = dict(next_offsets)
    batches: list[list[OffsetRange]] = []
    while len(batches) < max_batches:
        budget, batch = max_messages, []
        for p in sorted(end_offsets):
            start = cursor.get(p, 0)
            take = min(end_offsets[p] - start, budget)
            if take <= 0:
                continue
            batch.append(OffsetRange(p, start, start + take))
            cursor[p] = start + take
            budget -= take
            if budget == 0:
                break
        if not batch:
            break
        batches.append(batch)
    return batches


def ledger_mismatches(
    conn: psycopg.Connection, topic: str, ranges: Sequence[OffsetRange]
) -> list[str]:
    """Ranges whose ledger row_count differs from the raw_ticks rows at those offsets."""
    bad = []
    for r in ranges:
        ledger = conn.execute(
            "SELECT row_count FROM ingest.kafka_offsets"
            " WHERE topic = %s AND partition = %s AND start_offset = %s AND end_offset = %s",
            (topic, r.partition, r.start, r.end),
        ).fetchone()
        rows = conn.execute(
            "SELECT count(*) FROM market.raw_ticks"
            " WHERE kafka_partition = %s AND kafka_offset >= %s AND kafka_offset < %s",
            (r.partition, r.start, r.end),
        ).fetchone()
        if ledger is None or rows is None or ledger[0] != rows[0]:
            bad.append(f"{r.partition}:{r.start}-{r.end} ledger={ledger} rows={rows}")
    return bad
