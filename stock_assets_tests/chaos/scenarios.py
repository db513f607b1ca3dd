"""The chaos scenarios: a fault, unattended recovery, then a count of every record.

Each scenario produces real replayed ticks (plus poison records where it says so) with the
project's producer configuration (acks=all, idempotence), injects its fault, lets the
orchestrator (sensor + runs, as the Dagster daemon would) or the streaming job recover, and
tallies: produced = records the broker acknowledged; stored = rows in market.raw_ticks (or trade
counts in market.live_bars_1m); dead_lettered = records on the dead-letter topic (by source
offset); lost = acknowledged records neither stored nor dead-lettered; duplicated = records stored
(or dead-lettered) more than once. Targets: lost 0, duplicated 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from stock_assets.lib import db, marketdata
from stock_assets.lib.settings import REPO_ROOT, DbSettings, KafkaSettings
from stock_assets.lib.sources import replay
from stock_assets.lib.topics import DEAD_LETTER, TICKS, topic_name
from stock_assets.producer.service import producer_config
from stock_assets_tests.chaos.orchestrator import Orchestrator, Run, terminate
from stock_assets_tests.chaos.services import ChaosServices

SOURCE = "chaos"


@dataclass
class ScenarioResult:
    scenario: str
    produced: int = 0  # valid ticks the broker acknowledged
    poison: int = 0  # poison records the broker acknowledged
    stored: int = 0  # distinct ticks in the table (raw_ticks; live_bars_1m: trade counts)
    dead_lettered: int = 0  # distinct source records on the dead-letter topic
    lost: int = 0
    duplicated: int = 0
    poison_stored: int = 0  # poison records that reached the table (a validation gap)
    recovered: bool = False
    recovery_s: float | None = None  # from the fault to everything accounted for
    elapsed_s: float = 0.0
    fault: str = ""
    needs: str = ""  # the fixes (issue 12 items) recovery relies on
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        rec = f"{self.recovery_s:.1f}s" if self.recovery_s is not None else "never"
        return (
            f"{self.scenario:<24} produced={self.produced:<6} poison={self.poison:<2} "
            f"stored={self.stored:<6} dead_lettered={self.dead_lettered:<3} lost={self.lost:<6} "
            f"duplicated={self.duplicated:<4} recovery={rec:<7} "
            f"{'OK' if self.lost == 0 and self.duplicated == 0 and self.recovered else 'FAIL'}"
        )


# -- producing ------------------------------------------------------------------------------------


def replay_ticks(
    symbols: list[str], ticks_per_bar: int, *, days: int | None = None, minute: bool = False
) -> list[marketdata.Tick]:
    """Real bars replayed as ticks, time-ordered: AAPL minute bars (`minute`, the first `days`
    sessions) or daily bars of several symbols from 2010-01-04 on (`days` sessions)."""
    if minute:
        frame = replay.replay_frame("minute", symbols, seed=12, ticks_per_bar=ticks_per_bar)
    else:
        start = datetime(2010, 1, 4, tzinfo=UTC)
        frame = replay.replay_frame(
            "daily", symbols, seed=12, start=start, ticks_per_bar=ticks_per_bar
        )
    if days is not None:
        day = pl.from_epoch("ts_us", time_unit="us").dt.date()
        last = frame.select(day.unique().sort()).to_series()[days - 1]
        frame = frame.filter(day <= last)
    return list(replay.ticks_from_frame(frame, source=SOURCE))


def poison_records() -> list[tuple[str, bytes]]:
    """(kind, payload): records that must be dead-lettered, never stored (issue 12)."""
    good = {
        "type": "tick",
        "symbol": "AAPL",
        "ts_us": 1_785_000_000_000_000,
        "price": 10.0,
        "size": 1.0,
        "source": SOURCE,
        "seq": 10**9,
        "schema_version": 1,
    }

    def tick(**changes: Any) -> bytes:
        record = {**good, **changes}
        return marketdata.msgspec.json.encode({k: v for k, v in record.items() if v is not None})

    return [
        ("not_json", b"{not json"),
        ("nul_in_source", tick(source="x\u0000y", seq=10**9 + 1)),
        ("negative_price", tick(price=-12.5, seq=10**9 + 2)),
        ("zero_price", tick(price=0.0, seq=10**9 + 3)),
        ("missing_schema_version", tick(schema_version=None, seq=10**9 + 4)),
        ("oversize_source", tick(source="s" * 500_000, seq=10**9 + 5)),
        ("oversize_symbol", tick(symbol="A" * 600_000, seq=10**9 + 6)),
        ("lowercase_symbol", tick(symbol="aapl", seq=10**9 + 7)),
    ]


@dataclass
class Produced:
    ticks: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)  # -> (p, offset)
    poison: dict[tuple[int, int], str] = field(default_factory=dict)  # (p, offset) -> kind
    failed: list[str] = field(default_factory=list)


def produce(
    kafka: KafkaSettings,
    ticks: list[marketdata.Tick],
    poison: Iterable[tuple[str, bytes]] = (),
    *,
    chunks: int = 1,
    pause_s: float = 0.0,
    at_chunk: dict[int, Callable[[], None]] | None = None,
    flush_s: float = 180.0,
) -> Produced:
    """Produce in `chunks` with `pause_s` between them, calling `at_chunk[i]` before chunk i.

    Poison records are spread evenly through the stream. Only acknowledged records count.
    """
    producer = Producer(producer_config(kafka, **{"message.max.bytes": 2_000_000}))
    topic = topic_name(TICKS, kafka.topic_prefix)
    out = Produced()
    poison = list(poison)
    every = max(len(ticks) // (len(poison) + 1), 1)

    def acked(what: tuple[str, Any]) -> Callable[[KafkaError | None, Message], None]:
        def callback(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                out.failed.append(f"{what}: {err}")
                return
            where = (int(msg.partition() or 0), int(msg.offset() or 0))
            if what[0] == "tick":
                out.ticks[what[1]] = where
            else:
                out.poison[where] = what[1]

        return callback

    size = -(-len(ticks) // chunks)
    for i in range(chunks):
        if at_chunk and i in at_chunk:
            at_chunk[i]()
        for n, tick in enumerate(ticks[i * size : (i + 1) * size], start=i * size):
            while True:
                try:
                    producer.produce(
                        topic,
                        key=marketdata.key(tick),
                        value=marketdata.encode(tick),
                        on_delivery=acked(("tick", (tick.symbol, tick.seq))),
                    )
                    break
                except BufferError:
                    producer.poll(0.1)
            if poison and n % every == every - 1:
                kind, payload = poison.pop(0)
                producer.produce(
                    topic, key=b"AAPL", value=payload, on_delivery=acked(("poison", kind))
                )
            producer.poll(0)
        if pause_s:
            producer.flush(pause_s)
    for kind, payload in poison:
        producer.produce(topic, key=b"AAPL", value=payload, on_delivery=acked(("poison", kind)))
    left = producer.flush(flush_s)
    if left:
        out.failed.append(f"{left} records unacknowledged after {flush_s}s")
    return out


# -- counting -------------------------------------------------------------------------------------


def stored_ticks(settings: DbSettings) -> tuple[Counter[tuple[str, int]], set[tuple[int, int]]]:
    """(symbol, seq) -> rows in raw_ticks; and the (partition, offset)s stored."""
    with db.connect(settings) as conn:
        rows = conn.execute(
            "SELECT symbol, seq, kafka_partition, kafka_offset FROM market.raw_ticks"
        ).fetchall()
    return Counter((s, int(q)) for s, q, _, _ in rows), {(int(p), int(o)) for _, _, p, o in rows}


def dead_letters(kafka: KafkaSettings, timeout_s: float = 10.0) -> Counter[tuple[int, int]]:
    """(source partition, source offset) -> records on the dead-letter topic."""
    topic = topic_name(DEAD_LETTER, kafka.topic_prefix)
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": "chaos-count",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    found: Counter[tuple[int, int]] = Counter()
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
        ends = {}
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        deadline = time.monotonic() + timeout_s
        open_parts = set(ends)
        while open_parts and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=1.0):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        open_parts.discard(msg.partition())
                    continue
                headers = {h[0]: h[1] for h in msg.headers() or [] if isinstance(h[1], bytes)}
                try:
                    source = (
                        int(headers["dlq.source.partition"]),
                        int(headers["dlq.source.offset"]),
                    )
                except (KeyError, ValueError):
                    continue
                found[source] += 1
                if (msg.offset() or 0) + 1 >= ends[msg.partition()]:
                    open_parts.discard(msg.partition())
    finally:
        consumer.close()
    return found


def tally(
    result: ScenarioResult, produced: Produced, settings: DbSettings, kafka: KafkaSettings
) -> bool:
    """Fill the counts; True when every acknowledged record is accounted for exactly once."""
    counts, offsets = stored_ticks(settings)
    dlq = dead_letters(kafka)
    result.produced, result.poison = len(produced.ticks), len(produced.poison)
    result.stored = sum(1 for key in produced.ticks if counts.get(key))
    result.dead_lettered = len(dlq)
    lost_ticks = [
        k for k, where in produced.ticks.items() if not counts.get(k) and where not in dlq
    ]
    poison_lost = [w for w in produced.poison if w not in dlq and w not in offsets]
    result.poison_stored = sum(1 for w in produced.poison if w in offsets)
    result.lost = len(lost_ticks) + len(poison_lost)
    result.duplicated = sum(n - 1 for n in counts.values() if n > 1) + sum(
        n - 1 for n in dlq.values() if n > 1
    )
    if produced.failed:
        result.notes.append(f"producer: {produced.failed[:3]}")
    return result.lost == 0 and result.duplicated == 0


def drive_and_tally(
    result: ScenarioResult,
    services: ChaosServices,
    orchestrator: Orchestrator,
    produced: Produced,
    fault_at: Callable[[], float | None],
    timeout_s: float,
    on_run: Callable[[Run], None] | None = None,
) -> None:
    def accounted() -> bool:
        try:
            return tally(result, produced, orchestrator.db, orchestrator.kafka)
        except Exception:  # the database or broker is down (or starting): not yet
            return False

    started = time.monotonic()
    t_fault = fault_at()
    if t_fault is not None:
        result.notes.append(
            f"producing done, loading starts {started - t_fault:.1f}s after the fault"
        )
    result.recovered = orchestrator.drive(accounted, timeout_s, on_run=on_run)
    services.up()  # counted with everything up, whatever the outcome
    tally(result, produced, orchestrator.db, orchestrator.kafka)
    t0 = fault_at()
    if result.recovered and t0 is not None:
        result.recovery_s = round(time.monotonic() - t0, 1)
    result.notes += orchestrator.log[-6:]
    result.notes.append(
        f"runs ok {orchestrator.runs_ok}, failed {orchestrator.runs_failed}, "
        f"sensor errors {orchestrator.sensor_errors}"
    )


# -- faults while a run copies --------------------------------------------------------------------


COPY_QUERY = r'^COPY "?market"?\."?raw_ticks"? '  # tick_loader.COPY_RAW_TICKS, quoted or not
COPY_ACTIVE = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'active' AND query ~ %s"
)


def when_copying(
    settings: DbSettings, action: Callable[[], None], timeout_s: float = 120
) -> threading.Thread:
    """A thread that runs `action` once a raw_ticks COPY is in flight in `settings`' database.

    It watches on one open connection every 5 ms (reconnecting if PostgreSQL is down): a load of
    the scenarios' ~230k ticks copies for about a second on a quiet machine.
    """

    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        admin = DbSettings.load(port=settings.port, dbname="postgres")
        while time.monotonic() < deadline:
            try:
                with db.connect(admin, autocommit=True) as conn:
                    while time.monotonic() < deadline:
                        row = conn.execute(COPY_ACTIVE, (settings.dbname, COPY_QUERY)).fetchone()
                        if row and row[0]:
                            action()
                            return
                        time.sleep(0.005)
            except Exception:
                time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


# -- the scenarios --------------------------------------------------------------------------------


def broker_kill(services: ChaosServices, timeout_s: float = 120) -> ScenarioResult:
    """kill -9 of the (single) broker while the producer streams; a supervisor restarts it."""
    result = ScenarioResult(
        "broker_kill", fault="kill -9 of the Kafka broker mid-stream, restarted 3 s later"
    )
    fault: list[float] = []

    def kill_broker() -> None:
        services.kill("kafka")
        fault.append(time.monotonic())
        threading.Timer(3.0, services.up, args=("kafka",)).start()

    t0 = time.monotonic()
    with services.scenario_space("broker_kill") as (settings, kafka):
        ticks = replay_ticks(["AAPL", "MSFT", "IBM"], 20, days=60)
        produced = produce(kafka, ticks, chunks=20, pause_s=0.2, at_chunk={8: kill_broker})
        orchestrator = Orchestrator(settings, kafka, services.env())
        drive_and_tally(
            result, services, orchestrator, produced, lambda: fault[0] if fault else None, timeout_s
        )
    result.elapsed_s = round(time.monotonic() - t0, 1)
    return result


def replicated_broker_kill(services: ChaosServices, timeout_s: float = 150) -> ScenarioResult:
    """3 brokers (RF 3, min ISR 2): kill -9 of one mid-stream; produce and load with it down."""
    result = ScenarioResult(
        "replicated_broker_kill",
        fault="kill -9 of broker 2 of 3 mid-stream; loads run while it is down; restarted after",
    )
    fault: list[float] = []

    def kill_node() -> None:
        services.kill("kafka", node=2)
        fault.append(time.monotonic())

    t0 = time.monotonic()
    with services.scenario_space("replicated") as (settings, kafka):
        ticks = replay_ticks(["AAPL", "MSFT", "IBM"], 20, days=60)
        produced = produce(kafka, ticks, chunks=20, pause_s=0.2, at_chunk={6: kill_node})
        orchestrator = Orchestrator(settings, kafka, services.env())
        drive_and_tally(
            result, services, orchestrator, produced, lambda: fault[0] if fault else None, timeout_s
        )
        services.up("kafka")  # the node rejoins; nothing loaded may change
        if not tally(result, produced, settings, kafka):
            result.recovered = False
            result.notes.append("counts changed after broker 2 rejoined")
    result.elapsed_s = round(time.monotonic() - t0, 1)
    return result


def _kill_during_copy(
    services: ChaosServices,
    name: str,
    fault_desc: str,
    needs: str,
    timeout_s: float,
    kill: Callable[[Run], None],
) -> ScenarioResult:
    result = ScenarioResult(name, fault=fault_desc, needs=needs)
    fault: list[float] = []
    t0 = time.monotonic()
    with services.scenario_space(name) as (settings, kafka):
        # ~230k ticks: the COPY is in flight long enough to be seen (~1 s on a quiet machine)
        ticks = replay_ticks(["AAPL"], 96, minute=True)
        produced = produce(kafka, ticks)
        orchestrator = Orchestrator(settings, kafka, services.env())
        watchers: list[threading.Thread] = []

        def on_run(run: Run) -> None:
            if not watchers:  # the first run only

                def act() -> None:
                    kill(run)
                    fault.append(time.monotonic())

                watchers.append(when_copying(settings, act))

        drive_and_tally(
            result,
            services,
            orchestrator,
            produced,
            lambda: fault[0] if fault else None,
            timeout_s,
            on_run,
        )
        if not fault:
            result.recovered = False
            result.notes.append("the fault was never injected (no COPY seen)")
    result.elapsed_s = round(time.monotonic() - t0, 1)
    return result


def postgres_kill(services: ChaosServices, timeout_s: float = 120) -> ScenarioResult:
    """kill -9 of PostgreSQL (every process of it) during a run's COPY; restarted 1 s later."""

    def kill(_run: Run) -> None:
        services.kill("postgres")
        threading.Timer(1.0, services.up, args=("postgres",)).start()

    return _kill_during_copy(
        services,
        "postgres_kill",
        "kill -9 of PostgreSQL during the COPY of a raw_ticks run",
        "12.1 (sensor requests ledger gaps; run retries with backoff)",
        timeout_s,
        kill,
    )


def ingest_run_kill(services: ChaosServices, timeout_s: float = 120) -> ScenarioResult:
    """kill -9 of a raw_ticks run process during its COPY."""

    def kill(run: Run) -> None:
        assert run.process is not None
        run.process.kill()

    return _kill_during_copy(
        services,
        "ingest_run_kill",
        "kill -9 of a running raw_ticks run during its COPY",
        "12.1 (sensor requests ledger gaps)",
        timeout_s,
        kill,
    )


def poison(services: ChaosServices, timeout_s: float = 120) -> ScenarioResult:
    """Poison records inside the ranges of valid ticks: dead-lettered alone, the rest loads."""
    result = ScenarioResult(
        "poison",
        fault="8 poison records (NUL, price <= 0, no schema_version, oversize, bad JSON)",
        needs="12.2 (per-record dead-lettering, bounded DLQ records, shared validation); 12.1",
    )
    t0 = time.monotonic()
    with services.scenario_space("poison") as (settings, kafka):
        ticks = replay_ticks(["AAPL", "MSFT"], 20, days=40)
        produced = produce(kafka, ticks, poison_records())
        orchestrator = Orchestrator(settings, kafka, services.env())
        drive_and_tally(result, services, orchestrator, produced, lambda: t0, timeout_s)
        _, offsets = stored_ticks(settings)
        stored_kinds = sorted(k for w, k in produced.poison.items() if w in offsets)
        dlq = dead_letters(kafka)
        missing = sorted(k for w, k in produced.poison.items() if w not in dlq and w not in offsets)
        result.notes.append(
            f"poison stored: {stored_kinds}; neither stored nor dead-lettered: {missing}"
        )
        if result.poison_stored:
            result.recovered = False
    result.elapsed_s = round(time.monotonic() - t0, 1)
    return result


def _expected_bars(ticks: list[marketdata.Tick]) -> Counter[tuple[str, int]]:
    return Counter((t.symbol, t.ts_us // 60_000_000) for t in ticks)


def streaming_kill(services: ChaosServices, timeout_s: float = 420) -> ScenarioResult:
    """kill -9 of `python -m spark.streaming` (driver and JVM) mid-stream, then a restart."""
    result = ScenarioResult(
        "streaming_kill",
        fault="kill -9 of the streaming job (process group) after 3 micro-batches; restarted",
    )
    t0 = time.monotonic()
    with services.scenario_space("streaming") as (settings, kafka):
        ticks = replay_ticks(["AAPL"], 4, days=2, minute=True)
        produced = produce(kafka, ticks)
        checkpoint = services.root / "checkpoints" / "live_bars"
        env = dict(
            services.env(),
            STOCK_DB_DBNAME=settings.dbname,
            STOCK_KAFKA_TOPIC_PREFIX=kafka.topic_prefix,
            STOCK_STREAMING_MASTER="local[1]",
            STOCK_STREAMING_CHECKPOINT_DIR=str(checkpoint),
            STOCK_STREAMING_MAX_OFFSETS_PER_TRIGGER="400",
            STOCK_STREAMING_TRIGGER_INTERVAL="200 milliseconds",
            SPARK_LOCAL_IP="127.0.0.1",
        )
        log_path = services.root / "log" / "streaming.log"

        def start(*args: str) -> subprocess.Popen[bytes]:
            with log_path.open("ab") as log:
                return subprocess.Popen(
                    [sys.executable, "-m", "spark.streaming", *args],
                    env=env,
                    cwd=REPO_ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )

        def batches() -> int:
            try:
                with db.connect(settings) as conn:
                    row = conn.execute("SELECT count(*) FROM market.live_bars_batches").fetchone()
                return int(row[0]) if row else 0
            except Exception:
                return 0

        job = start()
        fault = None
        try:
            deadline = time.monotonic() + timeout_s / 2
            while batches() < 3 and job.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            if job.poll() is None and batches() >= 3:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()
                fault = time.monotonic()
            else:
                result.notes.append(f"job ended/stalled before 3 batches (rc {job.poll()})")
        finally:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()
        if fault is not None:
            rerun = start("--available-now")
            try:
                rerun.wait(timeout=max(timeout_s - (time.monotonic() - t0), 30))
            except subprocess.TimeoutExpired:
                result.notes.append("restarted job did not finish in time")
            finally:
                if rerun.poll() is None:
                    os.killpg(rerun.pid, signal.SIGKILL)
                    rerun.wait()
            with db.connect(settings) as conn:
                rows = conn.execute(
                    "SELECT symbol, (extract(epoch FROM ts) / 60)::bigint, trade_count"
                    " FROM market.live_bars_1m"
                ).fetchall()
            got = {(s, int(m)): int(n) for s, m, n in rows}
            want = _expected_bars([t for t in ticks if (t.symbol, t.seq) in produced.ticks])
            result.produced = sum(want.values())
            result.stored = sum(min(got.get(k, 0), n) for k, n in want.items())
            result.lost = sum(max(n - got.get(k, 0), 0) for k, n in want.items())
            result.duplicated = sum(max(n - want.get(k, 0), 0) for k, n in got.items())
            result.recovered = rerun.returncode == 0 and result.lost == 0 and result.duplicated == 0
            if result.recovered:
                result.recovery_s = round(time.monotonic() - fault, 1)
            result.notes.append(
                f"bars expected {len(want)}, stored {len(got)}; micro-batches {batches()}"
            )
        result.notes += (
            log_path.read_text(errors="replace").splitlines()[-3:] if log_path.exists() else []
        )
    result.elapsed_s = round(time.monotonic() - t0, 1)
    return result


# name -> (profile, function, slow: only under `make chaos`, not `make test`)
SCENARIOS: dict[str, tuple[str, Callable[[ChaosServices], ScenarioResult], bool]] = {
    "broker_kill": ("single", broker_kill, False),
    "postgres_kill": ("single", postgres_kill, False),
    "ingest_run_kill": ("single", ingest_run_kill, False),
    "poison": ("single", poison, False),
    "streaming_kill": ("single", streaming_kill, True),
    "replicated_broker_kill": ("replicated", replicated_broker_kill, True),
}

__all__ = ["SCENARIOS", "ScenarioResult", "terminate"]
