"""Pipeline progress in the stream's own time: where each stage stands, which one lags, by how much.

Two measures, both read from the real systems (no Dagster, no Dash here):

- **Offsets** per partition of the ticks topic: the retained log [low, high) against the ingest
  ledger (`lib/ledger.py`). Offsets no ledger range covers are `pending`; those below the last
  covered offset are a `gap` (a range that failed or never ran: work left behind), the rest is the
  `tail` (not loaded yet). "end - max loaded" hides gaps; this does not.
- **Event time** per stage: producer (the newest tick in Kafka) → raw_ticks → bars_1m → bars_daily
  → indicators → signals, as the newest *event* time each stage holds (a tick's `ts`, a bar's end,
  a session's close). A replayed or simulated stream carries 2000-era or simulated timestamps, so
  wall-clock age says nothing there: its lag is measured against the producer's event time. Only a
  live provider's stream is measured against the wall clock. The kind comes from the `source`
  field of the newest tick (Kafka first, else market.raw_ticks).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from stock_assets.lib import ledger

SourceKind = Literal["replay", "live"]
# Sources whose timestamps are not the wall clock: the bundled replay and the GBM simulator
# (lib/sources/replay.SOURCE, lib/sources/simulator.SOURCE; not imported: both load the calendar).
EVENT_TIME_SOURCES = frozenset({"replay", "simulator"})
PRODUCER = "producer"
# (stage, table, time column, kind of time): upstream first. A daily stage holding session D has
# processed the stream up to D's close; a 1-minute bar starting at t, up to t + 1 minute.
STAGES: tuple[tuple[str, str, str, str], ...] = (
    ("raw_ticks", "market.raw_ticks", "ts", "instant"),
    ("bars_1m", "market.bars_1m", "ts", "minute"),
    ("bars_daily", "market.bars_daily", "session_date", "session"),
    ("indicators", "analytics.indicators", "session_date", "session"),
    ("signals", "analytics.signals", "session_date", "session"),
)
STAGE_NAMES = (PRODUCER, *(s[0] for s in STAGES))
SESSION_CLOSE = time(16, 0)
NEWEST_PER_PARTITION = 5  # messages read back from each partition's end to find the newest tick


def source_kind(source: str | None) -> SourceKind:
    """`replay` for the bundled replay / simulator (event time), `live` for a provider."""
    return "replay" if source is None or source in EVENT_TIME_SOURCES else "live"


# --- offsets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionProgress:
    """One partition's retained log against the ledger."""

    partition: int
    low: int  # first retained offset
    high: int  # end offset (next to be written)
    covered_end: int | None  # end of the last ledger range, None = nothing loaded
    gaps: tuple[ledger.Span, ...]  # uncovered spans below covered_end
    tail: int  # uncovered offsets at or past covered_end

    @property
    def gap_offsets(self) -> int:
        return sum(end - start for start, end in self.gaps)

    @property
    def pending(self) -> int:
        return self.gap_offsets + self.tail


def partition_progress(
    covered: Mapping[int, Iterable[ledger.Span]], watermarks: Mapping[int, tuple[int, int]]
) -> list[PartitionProgress]:
    """Gap and tail of every partition in `watermarks` ({partition: (low, high)})."""
    out = []
    for p, (low, high) in sorted(watermarks.items()):
        spans = ledger.merge(covered.get(p, ()))
        covered_end = spans[-1][1] if spans else None
        missing = ledger.uncovered(spans, low, high)
        cut = covered_end if covered_end is not None else low
        gaps = tuple((s, min(e, cut)) for s, e in missing if s < cut)
        tail = sum(e - max(s, cut) for s, e in missing if e > cut)
        out.append(PartitionProgress(p, low, high, covered_end, gaps, tail))
    return out


# --- event time ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageProgress:
    stage: str
    event_time: datetime | None  # how far the stage has processed the stream (None = no data)
    lag_s: float | None  # behind the reference (producer event time, or wall clock if live)
    behind_upstream_s: float | None  # behind the stage before it, in event time


@dataclass(frozen=True)
class Progress:
    """A snapshot of the whole pipeline's progress."""

    kind: SourceKind
    source: str | None  # the newest tick's `source`
    reference: datetime | None  # what lag is measured against
    measured_at: datetime
    stages: list[StageProgress]
    partitions: list[PartitionProgress] = field(default_factory=list)
    kafka_error: str | None = None

    @property
    def reference_label(self) -> str:
        return "wall clock" if self.kind == "live" else "producer event time"

    def stage(self, name: str) -> StageProgress:
        return next(s for s in self.stages if s.stage == name)

    def lagging_stage(self) -> StageProgress | None:
        """The stage that adds the most lag behind its upstream (None when all are current)."""
        behind = [s for s in self.stages if s.behind_upstream_s]
        return max(behind, key=lambda s: s.behind_upstream_s or 0.0) if behind else None

    @property
    def gap_offsets(self) -> int:
        return sum(p.gap_offsets for p in self.partitions)


def session_end(day: date, tz: str) -> datetime:
    """The close (16:00 exchange time) of session `day`, UTC: a daily row's event time."""
    from zoneinfo import ZoneInfo

    return datetime.combine(day, SESSION_CLOSE, ZoneInfo(tz)).astimezone(UTC)


def stage_time(value: datetime | date | None, kind: str, tz: str) -> datetime | None:
    """A stage's newest stored time as the event time up to which it has processed the stream."""
    if value is None:
        return None
    if kind == "session" or (isinstance(value, date) and not isinstance(value, datetime)):
        day = value.date() if isinstance(value, datetime) else value
        return session_end(day, tz)
    assert isinstance(value, datetime)
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC) + (timedelta(minutes=1) if kind == "minute" else timedelta(0))


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else max((a - b).total_seconds(), 0.0)


def measure_stages(
    times: Mapping[str, datetime | None],
    source: str | None,
    now: datetime,
) -> tuple[SourceKind, datetime | None, list[StageProgress]]:
    """Lag of every stage in STAGE_NAMES from its event time (pure).

    Replay: the reference is the producer's newest event time, so 2000-era data that keeps pace
    with the stream has lag ~0. Live: the reference is `now`.
    """
    kind = source_kind(source)
    producer = times.get(PRODUCER)
    if producer is None:  # no readable tick in Kafka: the newest loaded one is the best estimate
        producer = max((t for t in times.values() if t is not None), default=None)
    reference = now if kind == "live" else producer
    stages = []
    upstream: datetime | None = None  # the nearest upstream stage holding data
    for name in STAGE_NAMES:
        event_time = producer if name == PRODUCER else times.get(name)
        behind = None if name == PRODUCER else _seconds(upstream, event_time)
        stages.append(StageProgress(name, event_time, _seconds(reference, event_time), behind))
        upstream = event_time or upstream
    return kind, reference, stages


# --- readers (the real systems) --------------------------------------------------------------


def read_stage_times(
    conn: Any, tz: str | None = None
) -> tuple[dict[str, datetime | None], str | None]:
    """Newest event time of every warehouse stage (index-served max) and the newest tick's source.

    A table that does not exist yet counts as empty.
    """
    from psycopg import sql

    if tz is None:
        from stock_assets.lib.calendar import TIMEZONE

        tz = TIMEZONE
    times: dict[str, datetime | None] = {}
    for name, table, column, kind in STAGES:
        if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
            times[name] = None
            continue
        schema, rel = table.split(".")
        newest = conn.execute(
            sql.SQL("SELECT max({c}) FROM {t}").format(
                c=sql.Identifier(column), t=sql.Identifier(schema, rel)
            )
        ).fetchone()[0]
        times[name] = stage_time(newest, kind, tz)
    source = None
    if times.get("raw_ticks") is not None:
        row = conn.execute(
            "SELECT source FROM market.raw_ticks ORDER BY ts DESC LIMIT 1"
        ).fetchone()
        source = row[0] if row else None
    return times, source


def read_watermarks(consumer: Any, topic: str, timeout_s: float) -> dict[int, tuple[int, int]]:
    """{partition: (low, high)} of `topic`; every broker call bounded by `timeout_s`."""
    from confluent_kafka import TopicPartition

    metadata = consumer.list_topics(topic, timeout=timeout_s)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None:
        raise LookupError(f"topic {topic} not found: {described.error if described else ''}")
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s, cached=False)
        for p in sorted(described.partitions)
    }


def newest_tick(
    consumer: Any,
    topic: str,
    watermarks: Mapping[int, tuple[int, int]],
    timeout_s: float,
) -> tuple[datetime | None, str | None]:
    """The newest event time (and its source) among the last few messages of every partition.

    `consumer` must be assigned nothing yet and have `enable.partition.eof` on; at most
    NEWEST_PER_PARTITION messages per partition are read, the whole call bounded by `timeout_s`.
    Undecodable records (poison, bars) are skipped.
    """
    import time as clock

    from confluent_kafka import KafkaError, TopicPartition

    from stock_assets.lib.marketdata import InvalidRecord, Tick, decode

    assignment = [
        TopicPartition(topic, p, max(low, high - NEWEST_PER_PARTITION))
        for p, (low, high) in watermarks.items()
        if high > low
    ]
    if not assignment:
        return None, None
    consumer.assign(assignment)
    waiting = {tp.partition for tp in assignment}
    newest: tuple[int, str] | None = None
    deadline = clock.monotonic() + timeout_s
    try:
        while waiting and (left := deadline - clock.monotonic()) > 0:
            msg = consumer.poll(min(left, 0.5))
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    waiting.discard(msg.partition())
                continue
            if msg.offset() >= watermarks[msg.partition()][1] - 1:
                waiting.discard(msg.partition())
            try:
                record = decode(msg.value() or b"")
            except (InvalidRecord, ValueError):
                continue
            if isinstance(record, Tick) and (newest is None or record.ts_us > newest[0]):
                newest = (record.ts_us, record.source)
    finally:
        consumer.unassign()
    if newest is None:
        return None, None
    return datetime.fromtimestamp(newest[0] / 1e6, UTC), newest[1]


def measure(
    conn: Any,
    consumer: Any | None,
    topic: str,
    *,
    now: datetime | None = None,
    timeout_s: float = 3.0,
    overrides: Mapping[str, datetime | None] | None = None,
    tz: str | None = None,
) -> Progress:
    """The pipeline's progress: offsets (Kafka vs ledger) and event time per stage.

    `consumer`: a confluent-kafka Consumer (group never joined: partitions are assigned) or None
    to skip Kafka. `overrides` replace a stage's event time read from its table (e.g. the signals
    stage from Dagster's materialized partitions: signals are sparse events, their table's newest
    row is not how far the stage has processed).
    """
    now = now or datetime.now(UTC)
    times, source = read_stage_times(conn, tz)
    times.update({k: v for k, v in (overrides or {}).items() if v is not None})
    partitions: list[PartitionProgress] = []
    kafka_error = None
    if consumer is not None:
        from confluent_kafka import KafkaException

        try:
            watermarks = read_watermarks(consumer, topic, timeout_s)
            times[PRODUCER], kafka_source = newest_tick(consumer, topic, watermarks, timeout_s)
        except (KafkaException, LookupError) as exc:  # unreachable broker: a state, not a crash
            kafka_error = f"{type(exc).__name__}: {exc}"
        else:
            partitions = partition_progress(ledger.coverage(conn, topic), watermarks)
            source = kafka_source or source
    kind, reference, stages = measure_stages(times, source, now)
    return Progress(kind, source, reference, now, stages, partitions, kafka_error)


# How far a stage may trail the producer before its freshness check fails, per stream kind.
# Replay at the dev speed (3600x: a session every ~7 s) advances ~2 sessions per ingest cycle, so
# budgets are a few sessions of event time; live budgets are wall-clock-sized. A live check is
# measured against the producer too (not the clock): a closed market must not fail it.
LAG_BUDGET_S: dict[SourceKind, dict[str, float]] = {
    "replay": {
        "raw_ticks": 4 * 86400,
        "bars_1m": 5 * 86400,
        "bars_daily": 7 * 86400,
        "indicators": 8 * 86400,
        "signals": 9 * 86400,
    },
    "live": {
        "raw_ticks": 15 * 60,
        "bars_1m": 20 * 60,
        "bars_daily": 26 * 3600,
        "indicators": 27 * 3600,
        "signals": 28 * 3600,
    },
}


@dataclass(frozen=True)
class Verdict:
    passed: bool
    behind_producer_s: float | None
    budget_s: float
    description: str


def freshness_verdict(progress: Progress, stage: str, budget_s: float | None = None) -> Verdict:
    """Whether `stage` keeps pace: its event time within budget of the producer's newest tick."""
    budget = budget_s if budget_s is not None else LAG_BUDGET_S[progress.kind][stage]
    producer = progress.stage(PRODUCER).event_time
    own = progress.stage(stage).event_time
    if producer is None:
        return Verdict(True, None, budget, "no tick produced yet: nothing to be behind")
    if own is None:
        return Verdict(
            False,
            None,
            budget,
            f"{stage} holds no data while the stream is at {producer:%Y-%m-%d %H:%M} UTC",
        )
    behind = _seconds(producer, own) or 0.0
    passed = behind <= budget
    verb = "within" if passed else "over"
    return Verdict(
        passed,
        behind,
        budget,
        f"{stage} at {own:%Y-%m-%d %H:%M} UTC, {format_lag(behind)} behind the producer "
        f"({progress.kind} stream, event time; {verb} the {format_lag(budget)} budget)",
    )


def format_lag(seconds: float | None) -> str:
    """A lag as a short human string: 0 s, 42 s, 3.5 min, 2.0 h, 4.1 d."""
    if seconds is None or math.isnan(seconds):
        return "no data"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def summary(progress: Progress) -> str:
    """One line: which stage lags and by how much, and the gaps."""
    worst = progress.lagging_stage()
    parts = [f"{progress.kind} stream ({progress.source or 'no ticks yet'})"]
    if worst is None:
        parts.append("every stage is current")
    else:
        parts.append(f"{worst.stage} lags {format_lag(worst.behind_upstream_s)} behind its input")
    empty = [s.stage for s in progress.stages if s.event_time is None]
    if empty and progress.stage(PRODUCER).event_time is not None:
        parts.append(f"no data yet in {', '.join(empty)}")
    gaps = progress.gap_offsets
    parts.append(f"{gaps} offsets in ledger gaps" if gaps else "no ledger gaps")
    return "; ".join(parts)


def stage_rows(progress: Progress) -> Sequence[dict[str, Any]]:
    """Display rows (stage, event time, lag, behind upstream) for pages and check metadata."""
    return [
        {
            "stage": s.stage,
            "event time": s.event_time.strftime("%Y-%m-%d %H:%M:%S") if s.event_time else None,
            f"lag ({progress.reference_label})": format_lag(s.lag_s),
            "behind upstream": "" if s.stage == PRODUCER else format_lag(s.behind_upstream_s),
        }
        for s in progress.stages
    ]


# --- row counts: what `stockctl progress` and bench/e2e.py print while the history lands -------

# stage -> query returning (rows, newest stored time, a timestamptz or a session date). Fixed
# strings: no identifier is built from input.
COUNTED: dict[str, str] = {
    "raw_ticks": "SELECT count(*), max(ts) FROM market.raw_ticks",
    "bars_1m": "SELECT count(*), max(ts) FROM market.bars_1m",
    "bars_daily": "SELECT count(*), max(session_date) FROM market.bars_daily",
    "indicators": "SELECT count(*), max(session_date) FROM analytics.indicators",
    "signals": "SELECT count(*), max(session_date) FROM analytics.signals",
    "backtests": "SELECT count(*), max(last_session) FROM trading.backtests",
    "equity": "SELECT count(*), max(ts) FROM trading.equity",
    "alerts": "SELECT count(*), max(session_date) FROM analytics.alerts",
    "live_bars_1m": "SELECT count(*), max(ts) FROM market.live_bars_1m",
}


@dataclass(frozen=True)
class StageCount:
    rows: int
    event_time: datetime | None  # a session date counts as reached at its close

    def label(self) -> str:
        reached = self.event_time.date().isoformat() if self.event_time else "-"
        return f"{self.rows:,} (→{reached})"


def read_counts(conn: Any, tz: str) -> dict[str, StageCount]:
    out = {}
    for stage, query in COUNTED.items():
        rows, newest = conn.execute(query).fetchone() or (0, None)
        out[stage] = StageCount(int(rows), stage_time(newest, "instant", tz))
    return out


def counts_summary(counts: Mapping[str, StageCount], stages: Sequence[str] | None = None) -> str:
    return " ".join(f"{s}={counts[s].label()}" for s in stages or tuple(counts))


def history_missing(conn: Any, last_sessions: Mapping[str, date]) -> list[str]:
    """What the history still lacks, one short item per symbol and stage ([] = complete): every
    history symbol needs indicators up to its last history session, signals, and a backtest over
    its whole history; the paper portfolio needs an equity curve."""
    reached = conn.execute(
        "SELECT s.symbol,"
        " (SELECT max(session_date) FROM analytics.indicators i WHERE i.symbol = s.symbol),"
        " (SELECT max(last_session) FROM trading.backtests b WHERE b.symbol = s.symbol),"
        " EXISTS (SELECT 1 FROM analytics.signals g WHERE g.symbol = s.symbol)"
        " FROM unnest(%s::text[]) AS s(symbol) ORDER BY s.symbol",
        (list(last_sessions),),
    ).fetchall()
    missing = []
    for symbol, indicators, backtest, has_signals in reached:
        last = last_sessions[symbol]
        if indicators is None or indicators < last:
            missing.append(f"{symbol} indicators→{indicators or '-'}<{last}")
        if not has_signals:
            missing.append(f"{symbol} signals")
        if backtest is None or backtest < last:
            missing.append(f"{symbol} backtest→{backtest or '-'}<{last}")
    equity = conn.execute("SELECT EXISTS (SELECT 1 FROM trading.equity)").fetchone()
    if not (equity and equity[0]):
        missing.append("equity")
    return missing


def history_done(conn: Any, last_sessions: Mapping[str, date]) -> bool:
    """Every history symbol has indicators up to its last history session, signals, and a
    backtest over its whole history; the paper portfolio has an equity curve."""
    return not history_missing(conn, last_sessions)
