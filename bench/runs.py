"""Run overhead: importing the code location, and a run that finds nothing new, end to end.

1. Import: a fresh interpreter runs `import stock_assets.definitions`, vs the floor a code location
   cannot go below, a fresh `import dagster` (median of ROUNDS each, interleaved), timed inside
   the interpreter; the whole process (start, import, exit) is reported too. For scale, the
   same import plus the heavy modules it used to load eagerly (exchange_calendars, pyspark,
   dagster_pyspark, elasticsearch, talib, httpx) is timed too.
2. Empty run: `dagster job execute` of ingest_raw_ticks in a fresh process — what a run worker
   launched by DefaultRunLauncher does: start Python, load the code location, open the instance
   (a private DAGSTER_HOME with the project's run_launcher / run_coordinator / run_monitoring and
   SQLite storage), execute with the job's in_process executor — for a range that is already in
   the ledger (the load finds nothing new and commits nothing). Baseline: the same job on the
   multiprocess executor (Dagster's default, one subprocess per step that loads the code location
   again). The warehouse database and the Kafka topics are private and dropped afterwards.
   Also timed: a Kafka sensor evaluation with nothing pending (in process).

3. The same empty run launched by the project's run launcher (stock_assets/instance/launcher.py,
   WarmRunLauncher): forked from a forkserver that already imported Dagster and the code
   location, launch to run end, vs the fresh interpreter of 2 (what DefaultRunLauncher's code
   server spawns per run). The first launch (starting the forkserver) is reported apart.

4. Dagster storage operations (an event written, a run record read: what the daemon and every
   run worker do all the time) through the project's PooledPostgresStorage vs dagster-postgres's
   own DagsterPostgresStorage (a new PostgreSQL connection per operation), same private database.

Prints the ratios; writes bench/results/runs.json (`ratio` = import(definitions)/import(dagster)).
Targets on a quiet 2-core machine: import <= 3 s, empty run <= 10 s.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from confluent_kafka import Producer
from dagster._core.launcher import LaunchRunContext

from stock_assets.defs import ingest
from stock_assets.defs.ingest.assets import raw_ticks
from stock_assets.defs.ingest.sensors import kafka_ticks_sensor
from stock_assets.defs.resources import KafkaResource, WarehouseResource
from stock_assets.instance.launcher import WarmRunLauncher, create_module_run
from stock_assets.lib import db, kafka_admin, marketdata, migrations
from stock_assets.lib.settings import DbSettings, KafkaSettings
from stock_assets.lib.topics import TICKS, topic_name

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "runs.json"
ROUNDS = 5
RUN_ROUNDS = 3
EAGER = "exchange_calendars, pyspark.sql, dagster_pyspark, elasticsearch, talib, httpx"

# The baseline job: the same asset on Dagster's default (multiprocess) executor.
baseline_defs = dg.Definitions.merge(
    ingest.defs,
    dg.Definitions(
        jobs=[
            dg.define_asset_job(
                "ingest_raw_ticks_multiprocess",
                selection=[raw_ticks],
                executor_def=dg.multiprocess_executor,
            )
        ],
        resources={"warehouse": WarehouseResource(), "kafka": KafkaResource()},
    ),
)


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """(seconds, stdout) of a process, start to exit."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed: {done.stderr[-2000:]}")
    return elapsed, done.stdout


def import_times() -> dict[str, dict[str, list[float]]]:
    """Per probe: `import` (the import statement, timed inside the fresh interpreter) and
    `process` (the whole interpreter: start, import, and exit, where CPython's finalization
    frees every module: ~0.5 s after Dagster). A forked run worker pays neither (it exits with
    os._exit); the target is the import's."""
    py = [sys.executable, "-W", "ignore", "-c"]
    probes = {
        "dagster": "dagster",
        "definitions": "stock_assets.definitions",
        "definitions_eager_heavy": f"stock_assets.definitions, {EAGER}",
    }
    times: dict[str, dict[str, list[float]]] = {
        name: {"import": [], "process": []} for name in probes
    }
    for _ in range(ROUNDS):
        for name, modules in probes.items():
            code = (
                "import time; t = time.perf_counter(); import " + modules + "; "
                "print(time.perf_counter() - t)"
            )
            elapsed, stdout = timed([*py, code])
            times[name]["process"].append(elapsed)
            times[name]["import"].append(float(stdout.split()[-1]))
    return times


def instance_home(root: Path) -> Path:
    """A DAGSTER_HOME with the project's run settings and SQLite storage (nothing shared)."""
    project = yaml.safe_load((REPO / "infra/dagster/dagster.yaml").read_text())
    config = {k: project[k] for k in ("run_coordinator", "run_launcher", "run_monitoring")}
    config |= {"storage": {"sqlite": {"base_dir": str(root / "storage")}}}
    config |= {"telemetry": {"enabled": False}}
    (root / "dagster.yaml").write_text(yaml.safe_dump(config))
    return root


def loaded_range(db_settings: DbSettings, kafka: KafkaSettings) -> dict[str, Any]:
    """Produce 100 ticks, load them once (in process); returns the run config of that range."""
    producer = Producer(kafka_admin.client_config(kafka, **{"acks": "all"}))
    start = marketdata.ts_us(datetime.now(UTC) - timedelta(hours=1))
    for i in range(100):
        tick = marketdata.Tick(
            symbol="AAPL", ts_us=start + i, price=100.0, size=1, source="bench", seq=i
        )
        producer.produce(
            topic_name(TICKS, kafka.topic_prefix),
            key=marketdata.key(tick),
            value=marketdata.encode(tick),
        )
    assert producer.flush(30) == 0
    resources = {
        "warehouse": WarehouseResource(dbname=db_settings.dbname),
        "kafka": KafkaResource(topic_prefix=kafka.topic_prefix),
    }
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), resources=resources) as c:
        request = kafka_ticks_sensor(c)
    assert isinstance(request, dg.SensorResult)
    (run,) = request.run_requests or []
    job = dg.Definitions.merge(ingest.defs, dg.Definitions(resources=resources))
    assert job.resolve_job_def("ingest_raw_ticks").execute_in_process(run.run_config).success
    return dict(run.run_config)


def sensor_idle_s(db_settings: DbSettings, kafka: KafkaSettings) -> float:
    resources = {
        "warehouse": WarehouseResource(dbname=db_settings.dbname),
        "kafka": KafkaResource(topic_prefix=kafka.topic_prefix),
    }
    times = []
    for _ in range(RUN_ROUNDS):
        started = time.perf_counter()
        with dg.build_sensor_context(
            instance=dg.DagsterInstance.ephemeral(), resources=resources
        ) as ctx:
            result = kafka_ticks_sensor(ctx)
        times.append(time.perf_counter() - started)
        assert isinstance(result, dg.SkipReason), result
    return statistics.median(times)


def empty_runs(db_settings: DbSettings, kafka: KafkaSettings) -> dict[str, list[float]]:
    run_config = loaded_range(db_settings, kafka)
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        home = instance_home(Path(tmp))
        (home / "run.yaml").write_text(yaml.safe_dump(run_config))
        env = os.environ | {
            "DAGSTER_HOME": str(home),
            "STOCK_DB_DBNAME": db_settings.dbname,
            "STOCK_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "PYTHONWARNINGS": "ignore",
        }
        dagster = str(Path(sys.executable).with_name("dagster"))
        execute = [dagster, "job", "execute"]
        variants = {
            "in_process": [*execute, "-m", "stock_assets.definitions", "-a", "defs"],
            "multiprocess": [*execute, "-f", __file__, "-a", "baseline_defs"],
        }
        jobs = {"in_process": "ingest_raw_ticks", "multiprocess": "ingest_raw_ticks_multiprocess"}
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(RUN_ROUNDS):
            for name, argv in variants.items():
                config = ["-j", jobs[name], "-c", str(home / "run.yaml")]
                times[name].append(timed([*argv, *config], env)[0])
        times |= warm_launches(home, run_config, env)
    return times


def warm_launches(
    home: Path, run_config: dict[str, Any], env: dict[str, str]
) -> dict[str, list[float]]:
    """The same empty run launched by the project's WarmRunLauncher, from launch to its end:
    the first launch starts the forkserver (its imports), the next ones fork warm workers."""
    saved = dict(os.environ)
    os.environ.update(env)  # what the forkserver (and so every worker) inherits
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert isinstance(instance.run_launcher, WarmRunLauncher)
            times: dict[str, list[float]] = {"warm_first": [], "warm": []}
            for i in range(RUN_ROUNDS + 1):
                run = create_module_run(
                    instance, "stock_assets.definitions", "ingest_raw_ticks", run_config, str(REPO)
                )
                started = time.perf_counter()
                instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
                while not (done := instance.get_run_by_id(run.run_id)) or not done.is_finished:
                    time.sleep(0.02)
                if not done.is_success:
                    raise RuntimeError(f"warm run {run.run_id} ended {done.status}")
                times["warm_first" if i == 0 else "warm"].append(time.perf_counter() - started)
            return times
    finally:
        os.environ.clear()
        os.environ.update(saved)


STORAGE_OPS = 100


def storage_ops(db_settings: DbSettings) -> dict[str, list[float]]:
    """Seconds per (event write + run read) through each storage class, interleaved rounds."""
    url = (
        f"postgresql+psycopg2://{db_settings.user}:{db_settings.password.get_secret_value()}"
        f"@{db_settings.host}:{db_settings.port}/{db_settings.dbname}"
    )
    pooled = {"module": "stock_assets.instance.storage", "class": "PooledPostgresStorage"}
    storages = {
        "nullpool": {"postgres": {"postgres_url": url}},
        "pooled": {"custom": {**pooled, "config": {"postgres_url": url}}},
    }
    times: dict[str, list[float]] = {name: [] for name in storages}
    for _ in range(RUN_ROUNDS):
        for name, storage in storages.items():
            with dg.instance_for_test(overrides={"storage": storage}) as instance:
                run = instance.create_run_for_job(dg.GraphDefinition("noop").to_job())
                started = time.perf_counter()
                for i in range(STORAGE_OPS):
                    instance.report_engine_event(f"bench {i}", run)
                    instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id]), limit=1)
                times[name].append((time.perf_counter() - started) / STORAGE_OPS)
    return times


def main() -> None:
    imports = import_times()
    base_db = DbSettings.load()
    name = f"bench_runs_{uuid.uuid4().hex[:8]}"
    db_settings = db.create_database(base_db, name)
    kafka = KafkaSettings.load(topic_prefix=f"bench-runs-{uuid.uuid4().hex[:6]}.")
    kafka_admin.ensure_topics(kafka)
    try:
        with db.connect(db_settings) as conn:
            migrations.apply(conn)
        runs = empty_runs(db_settings, kafka)
        sensor_s = sensor_idle_s(db_settings, kafka)
        storage = storage_ops(db.create_database(base_db, f"{name}_dagster"))
    finally:
        db.drop_database(base_db, name)
        db.drop_database(base_db, f"{name}_dagster")
        admin = kafka_admin.admin(kafka)
        mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(kafka.topic_prefix)]
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            future.result(timeout=30)

    med = {k: statistics.median(v["import"]) for k, v in imports.items()}
    process = {k: statistics.median(v["process"]) for k, v in imports.items()}
    ops = {k: statistics.median(v) for k, v in storage.items()}
    run_med = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "ratio": round(med["definitions"] / med["dagster"], 3),
        "import_definitions_s": round(med["definitions"], 3),
        "import_dagster_s": round(med["dagster"], 3),
        "process_definitions_s": round(process["definitions"], 3),
        "process_dagster_s": round(process["dagster"], 3),
        "import_definitions_with_eager_heavy_s": round(med["definitions_eager_heavy"], 3),
        "import_saved_ratio": round(med["definitions_eager_heavy"] / med["definitions"], 3),
        "empty_run_in_process_s": round(run_med["in_process"], 3),
        "empty_run_multiprocess_s": round(run_med["multiprocess"], 3),
        "empty_run_ratio_multiprocess_over_in_process": round(
            run_med["multiprocess"] / run_med["in_process"], 3
        ),
        "empty_run_warm_launch_s": round(run_med["warm"], 3),
        "empty_run_warm_first_launch_s": round(run_med["warm_first"], 3),
        "empty_run_ratio_cold_over_warm": round(run_med["in_process"] / run_med["warm"], 3),
        "sensor_tick_nothing_pending_s": round(sensor_s, 3),
        "storage_op_pooled_ms": round(ops["pooled"] * 1000, 2),
        "storage_op_nullpool_ms": round(ops["nullpool"] * 1000, 2),
        "storage_ratio_nullpool_over_pooled": round(ops["nullpool"] / ops["pooled"], 2),
        "raw": {"imports_s": imports, "empty_runs_s": runs, "storage_op_s": storage},
        "rounds": {"imports": ROUNDS, "runs": RUN_ROUNDS},
        "load_average_at_end": os.getloadavg(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "dagster": dg.__version__,
        "topic": topic_name(TICKS, kafka.topic_prefix),
    }
    print(
        f"import: definitions {med['definitions']:.2f} s vs dagster {med['dagster']:.2f} s "
        f"(ratio {result['ratio']}); with the formerly eager heavy modules "
        f"{med['definitions_eager_heavy']:.2f} s; whole interpreter (start, import, exit) "
        f"{process['definitions']:.2f} s vs {process['dagster']:.2f} s"
    )
    print(
        f"empty run end to end: in_process {run_med['in_process']:.2f} s vs multiprocess "
        f"{run_med['multiprocess']:.2f} s (ratio "
        f"{result['empty_run_ratio_multiprocess_over_in_process']}); idle sensor tick "
        f"{sensor_s:.3f} s; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"empty run launched by WarmRunLauncher: {run_med['warm']:.2f} s forked warm vs "
        f"{run_med['in_process']:.2f} s in a fresh interpreter (ratio "
        f"{result['empty_run_ratio_cold_over_warm']}); the first launch, which starts the "
        f"forkserver, {run_med['warm_first']:.2f} s"
    )
    print(
        f"storage: event write + run read {ops['pooled'] * 1000:.2f} ms pooled vs "
        f"{ops['nullpool'] * 1000:.2f} ms with a connection per operation (ratio "
        f"{result['storage_ratio_nullpool_over_pooled']})"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
