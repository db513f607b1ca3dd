"""End to end: the real dev stack from an empty warehouse — history first, then live.

Starts what `make dev` starts, against the already running shared services but with its OWN
warehouse database (template0 + migrations), its OWN Dagster storage database and DAGSTER_HOME
(the project's dagster.yaml), its OWN Kafka topic prefix, search index prefix and Spark checkpoint:
`dagster dev` (webserver, daemon with the sensors, code server) on a non-default port, the Spark
streaming job, and the producer with `--source history` at the dev speed. Every setting flows
through the project's env vars (STOCK_DB_DBNAME, STOCK_KAFKA_TOPIC_PREFIX, ...).

Measures
  history_s        launch → every history symbol has indicators to its last history session,
                   signals, a backtest over its whole history, and the portfolio an equity curve
                   (`progress.history_done`; target <= 180); milestones_s also has
                   `signals_searchable`: every signal of the history is in the search index
                   (what the dashboard's Signals page lists)
  live phase       --live-minutes (default 10): event-time progress of the producer (newest tick
                   on Kafka) and of each stage; keep_pace_ratio (= "ratio") = progress of the
                   signals partitions materialized by Dagster / the producer's (target >= 0.95);
                   tick → signal latency per session day: publish time of the day's last tick
                   (Kafka CreateTime) → first materialization of that day's signals partition
                   (days still missing at the end count with their wait so far, a lower bound;
                   target p95 <= 60 s); max_queued_runs from the instance's run storage (<= 2)
A progress line every few seconds. Everything started is stopped (process groups) and the
databases, topics and indices are dropped. Writes bench/results/e2e.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from psycopg import sql

from stock_assets.cli import DAGSTER_PROCESS_ENV
from stock_assets.lib import db, kafka_admin, marketdata, migrations, retention
from stock_assets.lib import progress as stage_progress
from stock_assets.lib.calendar import TIMEZONE, ZONE
from stock_assets.lib.search import templates
from stock_assets.lib.settings import DbSettings, KafkaSettings, SearchSettings
from stock_assets.lib.sources import history
from stock_assets.lib.topics import TICKS, topic_name

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "e2e.json"
PY = str(ROOT / ".venv" / "bin" / "python")
DAGSTER = str(ROOT / ".venv" / "bin" / "dagster")
LIVE_STAGES = ("raw_ticks", "bars_1m", "bars_daily", "indicators", "signals", "live_bars_1m")
TARGETS = {"history_s": 180, "keep_pace_ratio": 0.95, "p95_s": 60, "max_queued_runs": 2}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: int) -> float | None:
    """The q-th percentile (nearest rank, so an infinite value stays infinite)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def ny_day(stamp_us: int) -> date:
    return datetime.fromtimestamp(stamp_us / 1e6, UTC).astimezone(ZONE).date()


@dataclass
class App:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str], logs: Path) -> None:
        out = (logs / f"{self.name}.log").open("ab")
        # its own session = its own process group: stopping the group reaches every child
        self.process = subprocess.Popen(
            self.argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        pgid = self.process.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(10)
        except ProcessLookupError:
            return
        with contextlib.suppress(ProcessLookupError):  # children that outlived their leader
            os.killpg(pgid, signal.SIGKILL)


class KafkaWatch:
    """Reads the private ticks topic as it grows: newest event time, and per session day the
    wall time its last tick was published (the record's CreateTime)."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.topic = topic_name(TICKS, settings.topic_prefix)
        self.consumer = Consumer(
            kafka_admin.client_config(
                settings, **{"group.id": f"e2e-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False}
            )
        )
        self.consumer.assign(
            [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in range(TICKS.partitions)]
        )
        self.messages = 0
        self.newest_us = 0
        self.day_published: dict[date, float] = {}

    def poll(self, budget_s: float = 1.0) -> None:
        deadline = time.monotonic() + budget_s
        while time.monotonic() < deadline:
            batch = self.consumer.consume(20_000, 0.2)
            if not batch:
                return
            for msg in batch:
                if msg.error():
                    continue
                record = marketdata.decode(msg.value() or b"")
                self.messages += 1
                self.newest_us = max(self.newest_us, record.ts_us)
                day = ny_day(record.ts_us)
                created = msg.timestamp()[1] / 1000
                if created > self.day_published.get(day, 0.0):
                    self.day_published[day] = created

    def close(self) -> None:
        self.consumer.close()


@dataclass
class DagsterWatch:
    """The bench's own Dagster instance: queued runs and the signals partitions materialized."""

    instance: Any
    cursor: str | None = None
    signals_at: dict[date, float] = field(default_factory=dict)

    def poll(self) -> dict[str, int]:
        import dagster as dg

        from stock_assets.defs.kernel import SIGNALS

        while True:
            result = self.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=SIGNALS),
                limit=5000,
                cursor=self.cursor,
                ascending=True,
            )
            for record in result.records:
                if record.partition_key:
                    day = date.fromisoformat(record.partition_key)
                    self.signals_at.setdefault(day, record.timestamp)
            self.cursor = result.cursor
            if not result.has_more:
                break
        counts = {}
        for status in (
            dg.DagsterRunStatus.QUEUED,
            dg.DagsterRunStatus.STARTED,
            dg.DagsterRunStatus.SUCCESS,
            dg.DagsterRunStatus.FAILURE,
        ):
            counts[status.value.lower()] = self.instance.get_runs_count(
                dg.RunsFilter(statuses=[status])
            )
        return counts

    def queued_jobs(self) -> list[str]:
        """The jobs of the runs queued now (which lanes make up a peak)."""
        import dagster as dg

        runs = self.instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
        return sorted(run.job_name for run in runs)

    def signals_reached(self) -> datetime | None:
        if not self.signals_at:
            return None
        return stage_progress.stage_time(max(self.signals_at), "session", TIMEZONE)


RUN_PHASE_EVENTS = (
    "RUN_ENQUEUED",
    "RUN_DEQUEUED",
    "RUN_STARTING",
    "RUN_START",
    "STEP_START",
    "STEP_SUCCESS",
)


def run_phases(instance: Any, limit: int = 400) -> dict[str, Any]:
    """Where each job's runs spend their time, from the run records and the event log:
    queued (created → dequeued), launch (dequeued → RUN_START: a process, the code location's
    import, the instance), to_first_step (RUN_START → first STEP_START), work (first step → end),
    total (created → end); and per step (`steps`: its own duration, STEP_SUCCESS). Medians and
    maxima per job, in seconds."""
    import dagster as dg

    types = {getattr(dg.DagsterEventType, name) for name in RUN_PHASE_EVENTS}
    phases: dict[str, dict[str, list[float]]] = {}
    steps: dict[str, dict[str, list[float]]] = {}
    for record in instance.get_run_records(limit=limit):
        run = record.dagster_run
        if record.end_time is None:
            continue
        first: dict[str, float] = {}
        job = run.tags.get("dagster/sensor_name", run.job_name)
        for entry in instance.all_logs(run.run_id, of_type=types):
            event = entry.dagster_event
            # the enum's name: its stored value is still the legacy PIPELINE_* string
            first.setdefault(event.event_type.name, entry.timestamp)
            if event.event_type.name == "STEP_SUCCESS":
                durations = steps.setdefault(job, {}).setdefault(event.step_key, [])
                durations.append(event.event_specific_data.duration_ms / 1000)
        created = record.create_timestamp.timestamp()
        dequeued = first.get("RUN_DEQUEUED", first.get("RUN_STARTING", created))
        started = first.get("RUN_START")
        step = first.get("STEP_START")
        out = phases.setdefault(job, {})
        out.setdefault("queued", []).append(dequeued - created)
        if started is not None:
            out.setdefault("launch", []).append(started - dequeued)
            if step is not None:
                out.setdefault("to_first_step", []).append(step - started)
                out.setdefault("work", []).append(record.end_time - step)
        out.setdefault("total", []).append(record.end_time - created)

    def stats(values: list[float]) -> dict[str, float]:
        return {"median": round(statistics.median(values), 2), "max": round(max(values), 2)}

    return {
        job: {
            "runs": len(values["total"]),
            **{k: stats(v) for k, v in values.items()},
            "steps": {key: stats(v) for key, v in sorted(steps.get(job, {}).items())},
        }
        for job, values in sorted(phases.items())
    }


def create_plain_database(base: DbSettings, name: str) -> None:
    with db.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))


def delete_topics(settings: KafkaSettings) -> None:
    client = kafka_admin.admin(settings)
    names = [
        n for n in client.list_topics(timeout=10).topics if n.startswith(settings.topic_prefix)
    ]
    for future in client.delete_topics(names, operation_timeout=30).values() if names else []:
        future.result(timeout=30)


def delete_indices(settings: SearchSettings, prefix: str) -> None:
    """The run's indices and the index templates its search assets installed."""
    try:
        with urllib.request.urlopen(f"{settings.url}/_cat/indices/{prefix}*?format=json") as r:
            names = [f"/{i['index']}" for i in json.load(r)]
        with urllib.request.urlopen(f"{settings.url}/_index_template/{prefix}*") as r:
            names += [f"/_index_template/{t['name']}" for t in json.load(r)["index_templates"]]
        for name in names:
            request = urllib.request.Request(f"{settings.url}{name}", method="DELETE")
            urllib.request.urlopen(request).close()
    except OSError as exc:
        print(f"search indices {prefix}*: not deleted ({exc})")


def searchable_signals(settings: SearchSettings, prefix: str) -> int:
    """Documents behind the signals alias (what the dashboard's Signals page searches)."""
    url = f"{settings.url}/{templates.SIGNALS.alias(prefix)}/_count"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(json.load(r)["count"])
    except OSError:  # no index yet (404) or the engine busy: not searchable yet
        return 0


def event_s(a: datetime | None, b: datetime | None) -> float:
    """Event-time progress from a to b in seconds (0 when a stage had not started)."""
    if b is None:
        return 0.0
    return (b - (a or b)).total_seconds()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--live-minutes", type=float, default=10.0)
    parser.add_argument("--history-timeout-s", type=float, default=900.0)
    parser.add_argument("--every-s", type=float, default=5.0, help="progress line period")
    parser.add_argument("--speed", type=float, default=3600.0, help="the dev default")
    args = parser.parse_args(argv)
    # started in the background by a shell, SIGINT arrives ignored and SIGTERM would end the
    # process without the cleanup below (process groups, databases, topics): both raise instead
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    run_id = uuid.uuid4().hex[:8]
    base = DbSettings.load()
    warehouse_db, dagster_db = f"stocks_e2e_{run_id}", f"dagster_e2e_{run_id}"
    kafka = KafkaSettings.load(topic_prefix=f"e2e-{run_id}.")
    search_prefix = f"e2e{run_id}"
    work = Path(tempfile.mkdtemp(prefix=f"e2e-{run_id}-"))
    logs = work / "logs"
    logs.mkdir()
    dagster_home = work / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(ROOT / "infra" / "dagster" / "dagster.yaml", dagster_home / "dagster.yaml")
    port = free_port()
    env = {
        **os.environ,
        "STOCK_DB_DBNAME": warehouse_db,
        "STOCK_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "STOCK_SEARCH_INDEX_PREFIX": search_prefix,
        "STOCK_STREAMING_CHECKPOINT_DIR": str(work / "spark-checkpoint"),
        "STOCK_STREAMING_APP_NAME": f"e2e-live-bars-{run_id}",
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_HOST": base.host,
        "DAGSTER_PG_PORT": str(base.port),
        "DAGSTER_PG_USER": base.user,
        "DAGSTER_PG_PASSWORD": base.password.get_secret_value(),
        "DAGSTER_PG_DB": dagster_db,
        **DAGSTER_PROCESS_ENV,
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith("DAGSTER_")})
    apps = [
        App(
            "dagster",
            [
                DAGSTER,
                "dev",
                "-w",
                str(ROOT / "workspace.yaml"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
        ),
        App("streaming", [PY, "-m", "spark.streaming"]),
        App(
            "producer",
            [
                PY,
                "-m",
                "stock_assets.cli",
                "produce",
                "--source",
                "history",
                "--speed",
                str(args.speed),
                "--checkpoint",
                str(work / "history.ckpt"),
            ],
        ),
    ]
    frame = history.history_frame()
    end = history.history_end(frame)
    print(f"e2e {run_id}: warehouse {warehouse_db}, Dagster {dagster_db} on :{port}, "
          f"topics {kafka.topic_prefix}*, logs {logs}", flush=True)  # fmt: skip
    result: dict[str, Any] = {}
    kafka_watch: KafkaWatch | None = None
    try:
        db.create_database(base, warehouse_db)
        create_plain_database(base, dagster_db)
        with db.connect(base.model_copy(update={"dbname": warehouse_db})) as conn:
            migrations.apply(conn)
            retention.configure_policies(conn)
        kafka_admin.ensure_topics(kafka)
        kafka_watch = KafkaWatch(kafka)
        result = measure(args, apps, env, logs, end, kafka_watch, base, warehouse_db)
    except RuntimeError as exc:
        print(f"e2e failed: {exc}")
        for log_file in sorted(logs.glob("*.log")):
            print(f"--- {log_file.name} (tail)\n" + log_file.read_text()[-2000:])
    finally:
        for app in reversed(apps):
            app.stop()
        if kafka_watch is not None:
            kafka_watch.close()
        for name in (warehouse_db, dagster_db):
            try:
                db.drop_database(base, name)
            except psycopg.Error as exc:
                print(f"database {name}: not dropped ({exc})")
        delete_topics(kafka)
        delete_indices(SearchSettings.load(), search_prefix)
        shutil.rmtree(dagster_home, ignore_errors=True)
    if not result:
        return 1
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: result[k] for k in ("history_s", "ratio", "latency", "max_queued_runs")}))
    return 0


def measure(
    args: argparse.Namespace,
    apps: list[App],
    env: dict[str, str],
    logs: Path,
    end: history.HistoryEnd,
    kafka_watch: KafkaWatch,
    base: DbSettings,
    warehouse_db: str,
) -> dict[str, Any]:
    import dagster as dg

    warehouse = base.model_copy(update={"dbname": warehouse_db})
    dagster_watch = DagsterWatch(dg.DagsterInstance.get())
    t0 = time.monotonic()
    for app in apps:
        app.start(env, logs)
    milestones: dict[str, float] = {}
    max_queued = 0
    max_queued_jobs: list[str] = []
    queued_samples: dict[int, int] = {}  # queued runs -> samples (one a second) with that many
    search = SearchSettings.load()
    search_prefix = env["STOCK_SEARCH_INDEX_PREFIX"]
    signals_in_history: int | None = None
    history_s: float | None = None
    live_start: tuple[float, float, int] | None = None
    live_end_at: float | None = None
    last_line = 0.0
    progress: dict[str, stage_progress.StageCount] = {}
    runs: dict[str, int] = {}
    at_live_start: dict[str, str] = {}
    window_start: dict[str, datetime] = {}
    elapsed = 0.0
    with db.connect(warehouse, autocommit=True) as conn:
        while True:
            time.sleep(1.0)
            elapsed = time.monotonic() - t0
            dead = [a.name for a in apps if not a.alive()]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited early; see {logs}")
            kafka_watch.poll()
            progress = stage_progress.read_counts(conn, TIMEZONE)
            runs = dagster_watch.poll()
            queued_samples[runs["queued"]] = queued_samples.get(runs["queued"], 0) + 1
            if runs["queued"] > max_queued:
                max_queued, max_queued_jobs = runs["queued"], dagster_watch.queued_jobs()
            if kafka_watch.messages >= end.ticks:
                milestones.setdefault("history_in_kafka", elapsed)
            for stage, value in progress.items():
                if value.rows:
                    milestones.setdefault(stage, elapsed)
            lacking = stage_progress.history_missing(conn, end.last_session)
            if history_s is None and not lacking:
                history_s = milestones["history_done"] = elapsed
                print(f"[+{elapsed:5.0f}s] history complete", flush=True)
            if live_start is None and (history_s is not None or elapsed > args.history_timeout_s):
                live_start = (elapsed, time.time(), kafka_watch.newest_us)
                at_live_start = {k: v.label() for k, v in progress.items()}
                live_end_at = elapsed + args.live_minutes * 60
                print(f"[+{elapsed:5.0f}s] live phase for {args.live_minutes:g} min", flush=True)
            if live_start is not None:  # where each stage stood when the window began (or
                # when it first had data inside the window)
                for stage, value in progress.items():
                    if value.event_time is not None:
                        window_start.setdefault(stage, value.event_time)
                if (reached := dagster_watch.signals_reached()) is not None:
                    # at least the history's last session: a sessions run still writing the
                    # history's last region when the window begins is not live progress
                    last = max(end.last_session.values())
                    floor = stage_progress.stage_time(last, "session", TIMEZONE)
                    window_start.setdefault("signals_partitions", max(reached, floor or reached))
            if elapsed - last_line >= args.every_s:
                last_line = elapsed
                # the Signals page: every history signal searchable (the search catch-up)
                searchable = ""
                if history_s is not None and "signals_searchable" not in milestones:
                    if signals_in_history is None:
                        row = conn.execute("SELECT count(*) FROM analytics.signals").fetchone()
                        signals_in_history = int(row[0]) if row else 0
                    found = searchable_signals(search, search_prefix)
                    searchable = f" searchable signals={found:,}/{signals_in_history:,}"
                    if found >= signals_in_history:
                        milestones["signals_searchable"] = elapsed
                producer_at = (
                    ny_day(kafka_watch.newest_us).isoformat() if kafka_watch.newest_us else "-"
                )
                print(
                    f"[+{elapsed:5.0f}s] producer→{producer_at} kafka={kafka_watch.messages:,} "
                    + stage_progress.counts_summary(progress, (*LIVE_STAGES, "backtests", "equity"))
                    + f" runs q={runs['queued']} run={runs['started']} ok={runs['success']}"
                    f" fail={runs['failure']}{searchable}"
                    + (f" | history lacks: {', '.join(lacking[:6])}" if history_s is None else ""),
                    flush=True,
                )
            if live_end_at is not None and elapsed >= live_end_at:
                break
    assert live_start is not None
    start_elapsed, start_wall, start_newest = live_start
    live_s = elapsed - start_elapsed
    producer_s = (kafka_watch.newest_us - start_newest) / 1e6
    stages = {
        s: round(event_s(window_start.get(s), progress[s].event_time), 1) for s in LIVE_STAGES
    }
    signals_s = event_s(window_start.get("signals_partitions"), dagster_watch.signals_reached())
    stages["signals_partitions"] = round(signals_s, 1)
    newest = datetime.fromtimestamp(kafka_watch.newest_us / 1e6, UTC)
    stage_lag = {
        s: round((newest - t).total_seconds(), 1) if (t := progress[s].event_time) else None
        for s in LIVE_STAGES
    }
    ratio = round(signals_s / producer_s, 3) if producer_s > 0 else None
    # tick -> signal latency per session day whose last tick was published in the live phase;
    # a day whose signals never came counts as infinitely late (p95 is null once > 5 % are)
    now = time.time()
    latencies: list[float] = []
    missing = 0
    for day, published in sorted(kafka_watch.day_published.items()):
        if published < start_wall or day >= ny_day(kafka_watch.newest_us):
            continue  # published before the live phase, or the day is still running
        done = dagster_watch.signals_at.get(day)
        if done is None:
            missing += 1
            latencies.append(math.inf)
        else:
            latencies.append(done - published)
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    return {
        "ratio": ratio,
        "keep_pace_ratio": ratio,
        "history_s": round(history_s, 1) if history_s is not None else None,
        "history_timeout_s": args.history_timeout_s,
        "history_ticks": end.ticks,
        "milestones_s": {k: round(v, 1) for k, v in milestones.items()},
        "live_s": round(live_s, 1),
        "speed": args.speed,
        "producer_progress_s": round(producer_s, 1),
        # wall clock minus the newest event time: the producer never runs ahead of it, so once
        # caught up it waits for the next NYSE session (progress 0 while the market is closed)
        "producer_event_lag_at_end_s": round(now - kafka_watch.newest_us / 1e6, 1),
        "stage_progress_s": stages,
        "stage_event_lag_at_end_s": stage_lag,
        "latency": {
            "p50_s": round(p50, 1) if p50 is not None and math.isfinite(p50) else None,
            "p95_s": round(p95, 1) if p95 is not None and math.isfinite(p95) else None,
            "days": len(latencies),
            "days_without_signals": missing,
        },
        "max_queued_runs": max_queued,
        "max_queued_jobs": max_queued_jobs,  # at the first sample with that many
        "queued_runs_samples": {str(k): v for k, v in sorted(queued_samples.items())},
        "runs": runs,
        "run_phases_s": run_phases(dagster_watch.instance),
        "at_live_start": at_live_start,
        "final": {s: v.label() for s, v in progress.items()},
        "targets": TARGETS,
        "machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg()},
    }


if __name__ == "__main__":
    sys.exit(main())
