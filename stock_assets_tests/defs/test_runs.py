"""How the sensor-driven jobs run, against the real Kafka and PostgreSQL.

One run in flight per job; each run takes everything pending (one range per partition up to the
end offsets); the ledger, not a cursor, says what is pending, so a failed range is requested
again; the downstream trigger folds loads into one ranged run; an outage is retried inside the
same run, bad input is not; importing the code location loads no heavy module.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition
from pydantic import SecretStr

from stock_assets.defs import analytics, ingest, market
from stock_assets.defs.ingest.assets import PARTITION_SPANS, TRANSIENT_RETRY_POLICY, raw_ticks
from stock_assets.defs.ingest.sensors import kafka_ticks_sensor
from stock_assets.defs.kernel import RANGE_END_TAG, RANGE_START_TAG, RAW_TICKS
from stock_assets.defs.market.jobs import SESSION_ASSETS, SESSIONS_JOB, sessions_job
from stock_assets.defs.market.sensors import sessions_after_ingest
from stock_assets.defs.resources import WarehouseResource
from stock_assets.defs.runs import (
    LANE_TAG,
    PRIORITY_TAG,
    SENSOR_ORDER,
    SERIAL_TAG,
    SettingsRejected,
)
from stock_assets.defs.trading.resources import TradingConfigResource
from stock_assets.lib import db, kafka_admin, marketdata
from stock_assets.lib.calendar import TIMEZONE
from stock_assets.lib.errors import TransientError, WarehouseUnavailable
from stock_assets.lib.settings import ConfigError, DbSettings, KafkaSettings
from stock_assets.lib.topics import TICKS, topic_name
from stock_assets_tests.defs.conftest import add_run_in_flight, produce

REPO = Path(__file__).resolve().parents[2]
SYMBOLS = ("AAPL", "MSFT", "IBM", "GOOG", "FB", "NVDA", "AMZN", "TSLA", "ORCL", "INTC", "AMD")
SESSION_OPEN = datetime(2026, 8, 3, 9, 30, tzinfo=ZoneInfo(TIMEZONE))
HEAVY: tuple[str, ...] = (
    "exchange_calendars",
    "pandas",
    "pyspark",
    "py4j",
    "elasticsearch",
    "talib",
    "dash",
)
HEAVY += ("plotly", "httpx", "sklearn", "statsforecast", "mlflow", "dagster_pyspark", "pyarrow")
HEAVY += ("alpaca", "websockets")  # the broker adapter (issue 16)


def ticks(n_per_symbol: int, first_seq: int) -> list[marketdata.Tick]:
    start = marketdata.ts_us(SESSION_OPEN)
    return [
        marketdata.Tick(
            symbol=symbol,
            ts_us=start + (first_seq + i) * 1_000_000,
            price=100.0 + i % 7,
            size=10,
            source="test-runs",
            seq=first_seq + i,
        )
        for symbol in SYMBOLS
        for i in range(n_per_symbol)
    ]


def watermarks(settings: KafkaSettings) -> dict[int, tuple[int, int]]:
    topic = topic_name(TICKS, settings.topic_prefix)
    consumer = Consumer(kafka_admin.client_config(settings, **{"group.id": "test-runs"}))
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in parts
        }
    finally:
        consumer.close()


def tick(
    resources: dict[str, object], instance: dg.DagsterInstance
) -> dg.SensorResult | dg.SkipReason:
    with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
        result = kafka_ticks_sensor(ctx)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def requested_ranges(result: dg.SensorResult | dg.SkipReason) -> dict[int, tuple[int, int]]:
    assert isinstance(result, dg.SensorResult), result
    (request,) = result.run_requests or []
    ranges = request.run_config["ops"]["market__raw_ticks"]["config"]["ranges"]
    assert len({r["partition"] for r in ranges}) == len(ranges)  # one range per partition
    return {r["partition"]: (r["start"], r["end"]) for r in ranges}


def ingest_job(resources: dict[str, object]) -> dg.JobDefinition:
    defs = dg.Definitions.merge(ingest.defs, dg.Definitions(resources=resources))
    return defs.resolve_job_def("ingest_raw_ticks")


def run_config(topic: str, ranges: dict[int, tuple[int, int]]) -> dict[str, object]:
    config = {
        "topic": topic,
        "ranges": [{"partition": p, "start": a, "end": b} for p, (a, b) in ranges.items()],
    }
    return {"ops": {"market__raw_ticks": {"config": config}}}


def scalar(settings: DbSettings, query: str) -> int:
    with db.connect(settings) as conn:
        row = conn.execute(query.encode()).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def test_kafka_sensor_one_run_for_everything_pending_none_while_in_flight(
    resources: dict[str, object], module_kafka: KafkaSettings, module_db: DbSettings
) -> None:
    produced = produce(module_kafka, ticks(20, 0))
    instance = dg.DagsterInstance.ephemeral()

    in_flight = add_run_in_flight(instance, "ingest_raw_ticks")
    skipped = tick(resources, instance)
    assert isinstance(skipped, dg.SkipReason) and in_flight.run_id in (skipped.skip_message or "")

    instance.delete_run(in_flight.run_id)
    ranges = requested_ranges(tick(resources, instance))
    marks = {p: lh for p, lh in watermarks(module_kafka).items() if lh[1] > lh[0]}
    assert len(marks) > 1  # the symbols spread over several partitions
    assert ranges == marks  # everything up to the end offsets, one range per partition

    run = ingest_job(resources).execute_in_process(
        run_config=run_config(topic_name(TICKS, module_kafka.topic_prefix), ranges),
        instance=instance,
    )
    assert run.success
    assert scalar(module_db, "SELECT count(*) FROM market.raw_ticks") == produced
    done = tick(resources, instance)
    assert isinstance(done, dg.SkipReason) and "nothing pending" in (done.skip_message or "")

    # new ticks: the next run takes only the new tail of each partition
    produce(module_kafka, ticks(5, 100))
    tail = requested_ranges(tick(resources, instance))
    after = watermarks(module_kafka)
    assert tail == {
        p: (ranges.get(p, (0, low))[1], high)
        for p, (low, high) in after.items()
        if high > ranges.get(p, (0, low))[1]
    }


def test_a_gap_in_the_ledger_is_requested_again_before_the_tail(
    resources: dict[str, object], module_kafka: KafkaSettings, module_db: DbSettings
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    topic = topic_name(TICKS, module_kafka.topic_prefix)
    job = ingest_job(resources)
    pending = requested_ranges(tick(resources, instance))
    # a load of the partition with most pending died; a later one loaded its second half
    partition, (start, end) = max(pending.items(), key=lambda kv: kv[1][1] - kv[1][0])
    middle = (start + end) // 2
    assert job.execute_in_process(
        run_config=run_config(topic, {partition: (middle, end)}), instance=instance
    ).success

    again = requested_ranges(tick(resources, instance))
    assert again[partition] == (start, middle)  # the gap, first
    assert {p: r for p, r in again.items() if p != partition} == {
        p: r for p, r in pending.items() if p != partition
    }
    assert job.execute_in_process(run_config=run_config(topic, again), instance=instance).success
    done = tick(resources, instance)
    assert isinstance(done, dg.SkipReason)
    loaded = scalar(module_db, "SELECT count(*) FROM market.raw_ticks")
    assert loaded == sum(high - low for low, high in watermarks(module_kafka).values())
    assert scalar(module_db, "SELECT sum(row_count) FROM ingest.kafka_offsets") == loaded


def materialize_raw_ticks(instance: dg.DagsterInstance, *spans: str) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=RAW_TICKS, metadata={PARTITION_SPANS: list(spans)})
    )


def sessions_tick(
    instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult | dg.SkipReason:
    with dg.build_sensor_context(instance=instance, cursor=cursor) as ctx:
        result = sessions_after_ingest(ctx)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def span_of(result: dg.SensorResult | dg.SkipReason) -> tuple[str, str]:
    assert isinstance(result, dg.SensorResult), result
    (request,) = result.run_requests or []
    if request.partition_key:
        return request.partition_key, request.partition_key
    return request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]


def test_the_downstream_trigger_folds_loads_and_waits_for_the_run_in_flight() -> None:
    instance = dg.DagsterInstance.ephemeral()
    materialize_raw_ticks(instance, "2003-03-03..2003-03-05")
    materialize_raw_ticks(instance, "2003-03-10..2003-03-10", "2003-03-06..2003-03-07")
    materialize_raw_ticks(instance, "2003-03-12..2003-03-14")
    first = sessions_tick(instance, None)
    assert span_of(first) == ("2003-03-03", "2003-03-14")  # three loads, one ranged run
    assert isinstance(first, dg.SensorResult)

    # while that run is in flight: nothing, and the cursor does not move past the new loads
    running = add_run_in_flight(instance, sessions_job.name)
    materialize_raw_ticks(instance, "2003-03-17..2003-03-18")
    materialize_raw_ticks(instance, "2026-08-03..2026-08-03")  # far away: another region
    waiting = sessions_tick(instance, first.cursor)
    assert isinstance(waiting, dg.SkipReason)
    instance.delete_run(running.run_id)

    second = sessions_tick(instance, first.cursor)
    assert span_of(second) == ("2003-03-17", "2003-03-18")
    assert isinstance(second, dg.SensorResult)
    third = sessions_tick(instance, second.cursor)  # the far region was owed, not dropped
    assert span_of(third) == ("2026-08-03", "2026-08-03")
    assert isinstance(third, dg.SensorResult)
    assert isinstance(sessions_tick(instance, third.cursor), dg.SkipReason)


def test_a_long_sessions_range_runs_without_the_freshness_checks() -> None:
    instance = dg.DagsterInstance.ephemeral()
    materialize_raw_ticks(instance, "2003-03-03..2003-03-05")
    short = sessions_tick(instance, None)
    assert isinstance(short, dg.SensorResult)
    (request,) = short.run_requests or []
    assert request.asset_check_keys is None  # every check of the job
    materialize_raw_ticks(instance, "2003-04-01..2003-06-30")
    long = sessions_tick(instance, short.cursor)
    assert isinstance(long, dg.SensorResult)
    (request,) = long.run_requests or []
    names = {key.name for key in request.asset_check_keys or []}
    assert "event_time_freshness" not in names
    assert {
        "bars_1m_reconcile_raw_ticks",
        "bars_daily_consistent",
        "signals_reference_bars",
    } <= names
    assert request.asset_selection == SESSION_ASSETS


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_warehouse_errors_name_their_cause(module_db: DbSettings) -> None:
    down = module_db.model_copy(update={"port": closed_port(), "connect_timeout_s": 2})
    with pytest.raises(WarehouseUnavailable, match="unreachable"):
        db.connect(down)
    wrong = module_db.model_copy(update={"password": SecretStr("not-the-password")})
    with pytest.raises(ConfigError, match="rejects the settings"):
        db.connect(wrong)

    pooled = {
        "down": WarehouseResource(dbname=module_db.dbname, port=down.port),
        "wrong": WarehouseResource(dbname=module_db.dbname, password="not-the-password"),
    }
    with dg.build_resources(pooled) as built:
        with pytest.raises(WarehouseUnavailable) as caught, built.down.connection():
            pass
        assert not isinstance(caught.value, ConfigError)
        with pytest.raises(ConfigError), built.wrong.connection():
            pass


class DelayedProxy:
    """A TCP forwarder to the warehouse on a port that refuses connections until `open()`."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        self.port = int(self.listener.getsockname()[1])
        self.closed = threading.Event()

    def open(self) -> None:
        self.listener.listen()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def close(self) -> None:
        self.closed.set()
        self.listener.close()


def test_a_warehouse_outage_is_retried_inside_the_same_run(
    resources: dict[str, object], module_kafka: KafkaSettings, module_db: DbSettings
) -> None:
    assert raw_ticks_retry_policy().backoff is dg.Backoff.EXPONENTIAL
    assert raw_ticks_retry_policy().jitter is dg.Jitter.PLUS_MINUS
    produced = produce(module_kafka, ticks(3, 200))
    instance = dg.DagsterInstance.ephemeral()
    before = scalar(module_db, "SELECT count(*) FROM market.raw_ticks")
    ranges = requested_ranges(tick(resources, instance))
    proxy = DelayedProxy(module_db.port)
    # the first attempt waits 5 s for a connection and fails; the server is back after 6 s
    timer = threading.Timer(6.0, proxy.open)
    timer.start()
    try:
        flaky = {
            **resources,
            "warehouse": WarehouseResource(dbname=module_db.dbname, port=proxy.port),
        }
        run = ingest_job(flaky).execute_in_process(
            run_config=run_config(topic_name(TICKS, module_kafka.topic_prefix), ranges),
            instance=instance,
        )
    finally:
        timer.cancel()
        proxy.close()
    assert run.success
    retries = [e for e in run.all_events if e.event_type is dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert retries, "the outage was not retried in the run"
    assert "WarehouseUnavailable" in str(retries[0].event_specific_data)
    assert len(instance.get_runs()) == 1  # the same run, not a new one
    assert scalar(module_db, "SELECT count(*) FROM market.raw_ticks") == before + produced


def raw_ticks_retry_policy() -> dg.RetryPolicy:
    policy = raw_ticks.op.retry_policy
    assert policy == TRANSIENT_RETRY_POLICY
    return policy


def test_bad_input_fails_at_once_and_says_so(
    resources: dict[str, object], module_kafka: KafkaSettings
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    topic = topic_name(TICKS, module_kafka.topic_prefix)
    partition, (low, high) = next(
        (p, lh) for p, lh in watermarks(module_kafka).items() if lh[1] > lh[0] + 1
    )
    # overlaps loaded ranges without being one of them: a RangeConflict
    run = ingest_job(resources).execute_in_process(
        run_config=run_config(topic, {partition: (low + 1, high)}),
        instance=instance,
        raise_on_error=False,
    )
    assert not run.success
    assert not [e for e in run.all_events if e.event_type is dg.DagsterEventType.STEP_UP_FOR_RETRY]
    (failure,) = [e for e in run.all_events if e.event_type is dg.DagsterEventType.STEP_FAILURE]
    assert "not retried" in str(failure.event_specific_data)
    assert "RangeConflict" in str(failure.event_specific_data)


def test_bad_settings_fail_the_sessions_run_at_once(
    resources: dict[str, object], module_db: DbSettings, tmp_path: Path
) -> None:
    """market_sessions retries every step failure (job op_retry_policy) except bad settings."""
    assert sessions_job.op_retry_policy is not None and sessions_job.op_retry_policy.max_retries
    wrong_password = WarehouseResource(dbname=module_db.dbname, password="not-the-password")
    bad_trading = tmp_path / "trading.json"
    bad_trading.write_text("{not json")
    cases = {
        "warehouse rejects the password": {**resources, "warehouse": wrong_password},
        "trading config unreadable": {
            **resources,
            "trading_config": TradingConfigResource(path=str(bad_trading)),
        },
    }
    for case, case_resources in cases.items():
        defs = dg.Definitions.merge(
            market.defs,
            analytics.defs,
            dg.Definitions(resources={"trading_config": TradingConfigResource(), **case_resources}),
        )
        run = defs.resolve_job_def(SESSIONS_JOB).execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            partition_key="2026-08-03",
            raise_on_error=False,
        )
        events = run.all_events
        assert not run.success, case
        retried = [e for e in events if e.event_type is dg.DagsterEventType.STEP_UP_FOR_RETRY]
        assert not retried, f"{case}: retried {[e.step_key for e in retried]}"
        (failure, *_) = [e for e in events if e.event_type is dg.DagsterEventType.STEP_FAILURE]
        assert "not retried" in str(failure.event_specific_data), case
        assert "ConfigError" in str(failure.event_specific_data), case
    # the same error raised outside Dagster is still a ConfigError (callers catch that)
    assert isinstance(SettingsRejected(ConfigError("x")), ConfigError)


def test_sensor_driven_jobs_run_one_at_a_time_in_process() -> None:
    config = yaml.safe_load((REPO / "infra/dagster/dagster.yaml").read_text())
    docker = yaml.safe_load((REPO / "infra/dagster/dagster.docker.yaml").read_text())
    for key in ("run_coordinator", "run_monitoring", "sensors"):
        assert config[key] == docker[key]
    # local runs fork from a warm process (stock_assets/instance/launcher.py); compose's code server
    # container spawns them (DefaultRunLauncher)
    assert config["run_launcher"]["class"] == "WarmRunLauncher"
    assert docker["run_launcher"]["class"] == "DefaultRunLauncher"
    assert "run_retries" not in config  # a retried run would leave a window with none in flight
    with dg.instance_for_test(
        overrides={k: config[k] for k in ("run_coordinator", "run_launcher", "run_monitoring")}
    ) as instance:
        queue = instance.run_coordinator.get_run_queue_config()  # type: ignore[attr-defined]
    assert {"key": SERIAL_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in (
        queue.tag_concurrency_limits
    )
    from stock_assets.definitions import defs

    jobs = [defs.resolve_job_def("ingest_raw_ticks"), defs.resolve_job_def("market_sessions")]
    for job in jobs:
        assert job.tags[SERIAL_TAG] == job.name
        assert int(job.tags["dagster/max_runtime"]) > 0
        assert job.executor_def is dg.in_process_executor

    # lanes: the stream's two jobs have a slot each and are dequeued first; trading and every
    # auxiliary job are limited to one run at a time each (see dagster.yaml)
    limits = {
        (rule["key"], str(rule["value"])): rule["limit"] for rule in queue.tag_concurrency_limits
    }
    assert limits[(LANE_TAG, "aux")] == 1 and limits[(LANE_TAG, "trading")] == 1
    lanes = {
        name: defs.resolve_job_def(name).tags
        for name in (
            "ingest_raw_ticks",
            "market_sessions",
            "trading",
            "search_index",
            "alerts",
            "forecast_predictions",
            "forecast_evaluation",
            "warehouse_maintenance",
        )
    }
    # every job carries its lane: a run launched from the Launchpad gets the job's tags
    # (dagster_graphql create_valid_pipeline_run merges remote_job.tags into the run's)
    assert {name: tags[LANE_TAG] for name, tags in lanes.items()} == {
        "ingest_raw_ticks": "ingest",
        "market_sessions": "sessions",
        "trading": "trading",
        "search_index": "aux",
        "alerts": "trading",
        "forecast_predictions": "aux",
        "forecast_evaluation": "aux",
        "warehouse_maintenance": "aux",
    }
    assert all(
        job.name == "__ASSET_JOB" or LANE_TAG in job.tags for job in defs.resolve_all_job_defs()
    )
    # no process per step in any job, "Materialize" in the asset graph included
    assert {job.name: job.executor_def for job in defs.resolve_all_job_defs()} == {
        job.name: dg.in_process_executor for job in defs.resolve_all_job_defs()
    }
    for name in ("trading", "alerts", "forecast_predictions", "forecast_evaluation"):
        job = defs.resolve_job_def(name)
        assert job.tags[SERIAL_TAG] == name  # one run at a time in the queue too
        assert job.executor_def is dg.in_process_executor  # no process per step
    priority = {name: int(tags[PRIORITY_TAG]) for name, tags in lanes.items()}
    assert priority["ingest_raw_ticks"] > priority["market_sessions"] > priority["trading"]
    assert priority["trading"] == priority["alerts"] > priority["search_index"]
    slots = config["run_coordinator"]["config"]["max_concurrent_runs"]
    assert slots >= len({tags[LANE_TAG] for tags in lanes.values()})  # a slot for every lane
    # the sensors' order covers every sensor, and each gets a daemon thread of its own (a
    # follower waits for the ticks of the sensors before it, so those must not sit in the queue)
    assert set(SENSOR_ORDER) == {sensor.name for sensor in defs.sensors or []}
    sensors = config["sensors"]
    assert sensors["use_threads"] and sensors["num_workers"] >= len(SENSOR_ORDER)
    assert isinstance(WarehouseUnavailable("x"), TransientError)


def test_importing_the_code_location_loads_no_heavy_module() -> None:
    probe = (
        "import sys, stock_assets.definitions\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
    # the check itself can fail: the same probe sees a module once it is imported
    seen = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, stock_assets.lib.calendar as c; c.nyse(); "
            "print('exchange_calendars' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert seen.stdout.strip() == "True", seen.stderr
