"""Load exact Kafka offset ranges of the ticks topic into market.raw_ticks, exactly once.

One warehouse transaction per load: advisory locks on each (topic, partition), a check of the
ledger (ingest.kafka_offsets), COPY of every decodable tick, the ledger rows for the ranges,
commit. A crash anywhere before the commit leaves nothing behind; re-running a range that
committed is a no-op; the ledger's exclusion constraint rejects overlapping ranges even from
concurrent loaders. Undecodable records go to the dead-letter topic (flushed before the commit,
so at-least-once there: a crash between flush and commit re-sends them, identifiable by the
dlq.source.* headers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

import polars as pl
import psycopg
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from stock_assets.lib.frames import CSV_DATETIME
from stock_assets.lib.marketdata import InvalidRecord, Tick, decode

RAW_TICK_COLUMNS = (
    "ts",
    "symbol",
    "price",
    "size",
    "source",
    "seq",
    "kafka_partition",
    "kafka_offset",
)
COPY_RAW_TICKS = (
    "COPY market.raw_ticks (ts, symbol, price, size, source, seq, kafka_partition, kafka_offset)"
    " FROM STDIN (FORMAT csv)"
)
CONSUME_BATCH = 5000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Batch:
    """One consume batch as columns; rendered to COPY CSV by polars (no per-row formatting)."""

    def __init__(self) -> None:
        self.ts_us: list[int] = []
        self.symbol: list[str] = []
        self.price: list[float] = []
        self.size: list[float] = []
        self.source: list[str] = []
        self.seq: list[int] = []
        self.partition: list[int] = []
        self.offset: list[int] = []

    def add(self, tick: Tick, partition: int, offset: int) -> None:
        self.ts_us.append(tick.ts_us)
        self.symbol.append(tick.symbol)
        self.price.append(tick.price)
        self.size.append(tick.size)
        self.source.append(tick.source)
        self.seq.append(tick.seq)
        self.partition.append(partition)
        self.offset.append(offset)

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "ts": pl.Series(self.ts_us, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
                "symbol": self.symbol,
                "price": pl.Series(self.price, dtype=pl.Float64),
                "size": pl.Series(self.size, dtype=pl.Float64),
                "source": self.source,
                "seq": pl.Series(self.seq, dtype=pl.Int64),
                "kafka_partition": pl.Series(self.partition, dtype=pl.Int32),
                "kafka_offset": pl.Series(self.offset, dtype=pl.Int64),
            }
        )

    def csv(self) -> bytes:
        return self.frame().write_csv(include_header=False, datetime_format=CSV_DATETIME).encode()


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
    """Producer to the dead-letter topic; `flush` raises unless every record was acknowledged."""

    def __init__(self, producer: Producer, topic: str, stage: str = "ingest") -> None:
        self.producer, self.topic, self.stage = producer, topic, stage
        self.errors: list[str] = []

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self.errors.append(str(err))

    def send(self, msg: Message, reason: str) -> None:
        headers: list[tuple[str, str | bytes | None]] = [
            ("dlq.reason", reason.encode()),
            ("dlq.stage", self.stage.encode()),
            ("dlq.source.topic", (msg.topic() or "").encode()),
            ("dlq.source.partition", str(msg.partition()).encode()),
            ("dlq.source.offset", str(msg.offset()).encode()),
        ]
        self.producer.produce(
            self.topic,
            value=msg.value(),
            key=msg.key(),
            headers=headers,
            on_delivery=self._delivered,
        )
        self.producer.poll(0)

    def flush(self, timeout_s: float) -> None:
        remaining = self.producer.flush(timeout_s)
        if remaining or self.errors:
            raise RuntimeError(
                f"dead-letter topic {self.topic}: {remaining} undelivered, errors {self.errors[:3]}"
            )


def ledger_overlaps(conn: psycopg.Connection, topic: str, r: OffsetRange) -> list[tuple[int, int]]:
    rows = conn.execute(
        "SELECT start_offset, end_offset FROM ingest.kafka_offsets"
        " WHERE topic = %s AND partition = %s AND int8range(start_offset, end_offset) && "
        " int8range(%s, %s) ORDER BY start_offset",
        (topic, r.partition, r.start, r.end),
    ).fetchall()
    return [(int(a), int(b)) for a, b in rows]


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
    the next message of a range that is not complete yet.
    """
    result = LoadResult()
    by_partition = sorted(ranges, key=lambda r: r.partition)
    if len({r.partition for r in by_partition}) != len(by_partition):
        raise ValueError("at most one range per partition in one load")
    with conn.transaction():
        pending = []
        for r in by_partition:  # lock in partition order: concurrent loaders cannot deadlock
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", (topic, r.partition))
            overlaps = ledger_overlaps(conn, topic, r)
            if overlaps == [(r.start, r.end)]:
                result.skipped.append(r)
            elif overlaps:
                raise RangeConflict(f"{topic}[{r.partition}] {r.start}-{r.end} overlaps {overlaps}")
            else:
                pending.append(r)
        if pending:
            counts = _consume_into_copy(
                conn, consumer, topic, pending, dead_letters, result, timeout_s, progress
            )
            dead_letters.flush(timeout_s)
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO ingest.kafka_offsets"
                    " (topic, partition, start_offset, end_offset, row_count, run_id)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    [
                        (topic, r.partition, r.start, r.end, counts[r.partition], run_id)
                        for r in pending
                    ],
                )
            result.loaded = pending
    return result


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
    ends = {r.partition: r.end for r in pending}
    starts = {r.partition: r.start for r in pending}
    counts = dict.fromkeys(ends, 0)
    open_parts = set(ends)
    consumer.assign([TopicPartition(topic, r.partition, r.start) for r in pending])
    min_ts, max_ts = result.min_ts_us, result.max_ts_us
    symbols, hours = result.symbols, result.hours
    deadline = time.monotonic() + timeout_s
    with conn.cursor() as cur, cur.copy(COPY_RAW_TICKS) as copy:
        while open_parts:
            messages = consumer.consume(CONSUME_BATCH, timeout=1.0)
            if not messages:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{topic}: no message for {timeout_s}s before the end of partitions "
                        f"{sorted(open_parts)} (ends {ends})"
                    )
                _close_finished(consumer, topic, open_parts, ends)
                continue
            deadline = time.monotonic() + timeout_s
            batch = _Batch()
            for msg in messages:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise RuntimeError(f"{topic}: consume error {err}")
                p, off = msg.partition(), msg.offset()
                if p is None or off is None:
                    continue
                if p not in open_parts or off < starts[p] or off >= ends[p]:
                    continue
                result.consumed += 1
                try:
                    record = decode(msg.value() or b"")
                    if not isinstance(record, Tick):
                        raise InvalidRecord(f"a {type(record).__name__.lower()} on the ticks topic")
                except InvalidRecord as exc:
                    dead_letters.send(msg, exc.reason)
                    reason = exc.reason.split(":")[0]
                    result.dead_letter_reasons[reason] = (
                        result.dead_letter_reasons.get(reason, 0) + 1
                    )
                    result.dead_lettered += 1
                    continue
                batch.add(record, p, off)
                counts[p] += 1
            if batch.ts_us:
                copy.write(batch.csv())
                result.rows += len(batch.ts_us)
                lo, hi = min(batch.ts_us), max(batch.ts_us)
                min_ts = lo if min_ts is None else min(min_ts, lo)
                max_ts = hi if max_ts is None else max(max_ts, hi)
                symbols.update(batch.symbol)
                hours.update(t // 3_600_000_000 for t in batch.ts_us)
            _close_finished(consumer, topic, open_parts, ends)
            if progress is not None:
                progress(result.rows)
    result.min_ts_us, result.max_ts_us = min_ts, max_ts
    return counts


def _close_finished(
    consumer: Consumer, topic: str, open_parts: set[int], ends: dict[int, int]
) -> None:
    """Drop partitions whose position reached the range end (control records count too)."""
    if not open_parts:
        return
    positions = consumer.position([TopicPartition(topic, p) for p in open_parts])
    done = [tp for tp in positions if tp.offset >= ends[tp.partition]]
    for tp in done:
        open_parts.discard(tp.partition)
    if done:
        consumer.pause(done)


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


def date_spans(dates: Sequence[date], max_gap_days: int = 7) -> list[tuple[date, date]]:
    """Sorted dates as inclusive spans, bridging gaps up to `max_gap_days` (weekends, holidays)."""
    spans: list[tuple[date, date]] = []
    for d in sorted(dates):
        if spans and (d - spans[-1][1]).days <= max_gap_days:
            spans[-1] = (spans[-1][0], d)
        else:
            spans.append((d, d))
    return spans
