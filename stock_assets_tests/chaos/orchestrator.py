"""What the Dagster daemon does for raw_ticks, in a loop a scenario controls.

Each tick evaluates the project's Kafka sensor (`kafka_ticks_sensor` through
`dg.build_sensor_context`, keeping its cursor), skips run keys already launched (Dagster's run-key
deduplication), and executes each requested run in a subprocess (`ingest_run`), which a scenario
may kill. A failed run is retried as `run_retries` in infra/dagster/dagster.yaml says (Dagster's
run retries; none configured = none done). A sensor evaluation that raises is a failed tick: the
cursor stays, the next tick tries again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import yaml

from stock_assets.defs.ingest.sensors import kafka_ticks_sensor
from stock_assets.defs.resources import KafkaResource, WarehouseResource
from stock_assets.lib.settings import REPO_ROOT, DbSettings, KafkaSettings

DAGSTER_YAML = REPO_ROOT / "infra" / "dagster" / "dagster.yaml"


def max_run_retries() -> int:
    """run_retries.max_retries of the deployed dagster.yaml (0 when run retries are off)."""
    config = yaml.safe_load(DAGSTER_YAML.read_text()) or {}
    retries = config.get("run_retries") or {}
    return int(retries.get("max_retries", 0)) if retries.get("enabled") else 0


@dataclass
class Run:
    run_key: str | None
    run_config: Mapping[str, Any]
    attempt: int = 0
    process: subprocess.Popen[str] | None = None


@dataclass
class Orchestrator:
    db: DbSettings
    kafka: KafkaSettings
    env: dict[str, str]
    cursor: str | None = None
    launched_keys: set[str] = field(default_factory=set)
    log: list[str] = field(default_factory=list)
    runs_ok: int = 0
    runs_failed: int = 0
    sensor_errors: int = 0
    run_timeout_s: float = 150.0  # a run still going after this is killed as hung
    instance: dg.DagsterInstance = field(default_factory=dg.DagsterInstance.ephemeral)

    def resources(self) -> dict[str, object]:
        return {
            "warehouse": WarehouseResource(
                host=self.db.host, port=self.db.port, dbname=self.db.dbname
            ),
            "kafka": KafkaResource(
                bootstrap_servers=self.kafka.bootstrap_servers,
                topic_prefix=self.kafka.topic_prefix,
            ),
        }

    def sensor_tick(self) -> list[Run]:
        try:
            with dg.build_sensor_context(
                instance=self.instance, cursor=self.cursor, resources=self.resources()
            ) as ctx:
                result = kafka_ticks_sensor(ctx)
        except Exception as exc:  # a failed tick: Dagster logs it and keeps the cursor
            self.sensor_errors += 1
            self.log.append(f"sensor tick failed: {type(exc).__name__}: {str(exc)[:200]}")
            return []
        if not isinstance(result, dg.SensorResult):
            return []
        if result.cursor is not None:
            self.cursor = result.cursor
        runs = []
        for request in result.run_requests or []:
            if request.run_key is not None:
                if request.run_key in self.launched_keys:
                    continue
                self.launched_keys.add(request.run_key)
            runs.append(Run(request.run_key, request.run_config))
        return runs

    def start(self, run: Run) -> Run:
        env = dict(
            self.env,
            STOCK_DB_DBNAME=self.db.dbname,
            STOCK_KAFKA_TOPIC_PREFIX=self.kafka.topic_prefix,
        )
        run.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stock_assets_tests.chaos.ingest_run",
                json.dumps(run.run_config),
            ],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        return run

    def finish(self, run: Run, timeout_s: float = 240) -> bool:
        """Wait for the run, retrying a failure as dagster.yaml run_retries says; True: success."""
        assert run.process is not None
        while True:
            try:
                _, err = run.process.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                run.process.send_signal(signal.SIGUSR1)  # ingest_run prints its stacks
                time.sleep(2)
                run.process.kill()
                _, err = run.process.communicate()
                self.log.append(f"run {run.run_key} hung {timeout_s:.0f}s in: {hang_site(err)}")
            if run.process.returncode == 0:
                self.runs_ok += 1
                return True
            self.runs_failed += 1
            code = run.process.returncode
            reasons = [line for line in (err or "").splitlines() if line.startswith("RUN FAILED")]
            reason = reasons[-1] if reasons else f"exit code {code}"
            if code < 0:
                reason = f"killed by signal {-code}"
            self.log.append(f"run {run.run_key} attempt {run.attempt} failed: {reason[:300]}")
            if run.attempt >= max_run_retries():
                return False
            run.attempt += 1
            time.sleep(min(2**run.attempt, 10))
            self.start(run)

    def drive(
        self,
        done: Callable[[], bool],
        timeout_s: float,
        on_run: Callable[[Run], None] | None = None,
        interval_s: float = 1.0,
    ) -> bool:
        """Sensor ticks and runs until `done()` or the timeout; `on_run` sees each started run."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if done():
                return True
            for run in self.sensor_tick():
                self.start(run)
                if on_run is not None:
                    on_run(run)
                self.finish(run, timeout_s=self.run_timeout_s)
            time.sleep(interval_s)
        return done()


def hang_site(stderr: str | None) -> str:
    """The innermost project/psycopg/confluent frames of the main thread's faulthandler dump."""
    lines = (stderr or "").splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Current thread")]
    frames = [ln.strip() for ln in lines[starts[-1] + 1 :] if ln.strip().startswith("File")]
    mine = [f for f in frames if any(k in f for k in ("stock_assets", "psycopg", "confluent"))]
    return " <- ".join((mine or frames)[:4]) or "no stack dumped"


def terminate(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def child_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        **base,
        **extra,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), base.get("PYTHONPATH")])),
    }
