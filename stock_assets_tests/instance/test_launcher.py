"""WarmRunLauncher against real run workers: forked warm, fresh after an edit, terminated from
another process (as the webserver does), and a killed worker seen by the health check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.launcher import LaunchRunContext
from dagster._core.launcher.base import WorkerStatus

from stock_assets.instance.launcher import (
    BASE_PRELOAD,
    PID_TAG,
    WARM_EVENT,
    WarmRunLauncher,
    create_module_run,
    fork_refusal,
)

REPO = Path(__file__).resolve().parents[2]
TARGET = """
import os
import time

import dagster as dg

VERSION = {version!r}


@dg.op(config_schema={{"out": str}})
def record(context):
    with open(context.op_config["out"], "a") as f:
        f.write(f"{{VERSION}} {{os.getpid()}}\\n")


@dg.op(config_schema={{"release": str}})
def wait_for_release(context):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not os.path.exists(context.op_config["release"]):
        time.sleep(0.05)


@dg.job(executor_def=dg.in_process_executor)
def hello():
    record()


@dg.job(executor_def=dg.in_process_executor)
def waiting():
    wait_for_release()


defs = dg.Definitions(jobs=[hello, waiting])
"""


class Location:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.module = f"warm_target_{uuid.uuid4().hex[:8]}"
        self.path = root / f"{self.module}.py"

    def write(self, version: str) -> None:
        before = self.path.stat().st_mtime_ns if self.path.exists() else 0
        self.path.write_text(TARGET.format(version=version))
        os.utime(self.path, ns=(before + 10**9, before + 10**9))  # a distinct mtime
        sys.modules.pop(self.module, None)

    def create_run(self, instance: dg.DagsterInstance, job: str, config: dict) -> dg.DagsterRun:
        return create_module_run(instance, self.module, job, {"ops": config}, str(self.root))


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    overrides = {
        "run_launcher": {"module": "stock_assets.instance.launcher", "class": "WarmRunLauncher"}
    }
    with dg.instance_for_test(overrides=overrides) as instance:
        yield instance


@pytest.fixture
def location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Location:
    # the forkserver imports from its working directory and the installed packages (CPython
    # 3.11's forkserver ignores the parent's sys.path), as `dagster dev` run from the project
    monkeypatch.chdir(tmp_path)
    location = Location(tmp_path)
    location.write("v1")
    return location


def launch(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.DagsterRun:
    instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    return run


def wait_until(instance: dg.DagsterInstance, run_id: str, statuses: set) -> dg.DagsterRun:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        if run.status in statuses:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never reached {statuses}: {run.status}")


def warm_flags(instance: dg.DagsterInstance, run_id: str) -> list[bool]:
    records = instance.all_logs(run_id)
    return [
        bool(r.dagster_event.engine_event_data.metadata["warm"].value)  # type: ignore[union-attr]
        for r in records
        if r.dagster_event is not None and WARM_EVENT in (r.dagster_event.message or "")
    ]


def test_runs_fork_warm_and_pick_up_edits(instance, location, tmp_path):
    assert isinstance(instance.run_launcher, WarmRunLauncher)
    out = tmp_path / "out.txt"
    config = {"record": {"config": {"out": str(out)}}}
    first = launch(instance, location.create_run(instance, "hello", config))
    ended = wait_until(
        instance, first.run_id, {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE}
    )
    assert ended.status == dg.DagsterRunStatus.SUCCESS
    second = launch(instance, location.create_run(instance, "hello", config))
    assert wait_until(instance, second.run_id, {dg.DagsterRunStatus.SUCCESS}).is_success
    # an edit while a run is in flight: the next run starts on the new code without waiting for
    # the run in flight (which keeps the old forkserver alive) and without disturbing it
    release = tmp_path / "release"
    waiting = launch(
        instance,
        location.create_run(
            instance, "waiting", {"wait_for_release": {"config": {"release": str(release)}}}
        ),
    )
    wait_until(instance, waiting.run_id, {dg.DagsterRunStatus.STARTED})
    location.write("v2")
    third = launch(instance, location.create_run(instance, "hello", config))
    assert wait_until(instance, third.run_id, {dg.DagsterRunStatus.SUCCESS}).is_success
    in_flight = instance.get_run_by_id(waiting.run_id)
    assert in_flight is not None and in_flight.status == dg.DagsterRunStatus.STARTED
    release.touch()
    assert wait_until(instance, waiting.run_id, {dg.DagsterRunStatus.SUCCESS}).is_success

    lines = [line.split() for line in out.read_text().splitlines()]
    assert [version for version, _ in lines] == ["v1", "v1", "v2"]
    pids = {int(pid) for _, pid in lines}
    assert len(pids) == 3 and os.getpid() not in pids  # a process per run, none of them ours
    for run in (first, second, waiting, third):
        tagged = instance.get_run_by_id(run.run_id)
        assert tagged is not None and (run is waiting or int(tagged.tags[PID_TAG]) in pids)
        # the code location was imported by the forkserver, before the worker was forked
        assert warm_flags(instance, run.run_id) == [True]


def test_terminate_from_another_process_cancels_the_run(instance, location, tmp_path):
    release = tmp_path / "release"
    config = {"wait_for_release": {"config": {"release": str(release)}}}
    run = launch(instance, location.create_run(instance, "waiting", config))
    wait_until(instance, run.run_id, {dg.DagsterRunStatus.STARTED})
    # the webserver's own instance and launcher, not the one that launched the run
    with dg.DagsterInstance.from_ref(instance.get_ref()) as webserver:
        assert webserver.run_launcher is not instance.run_launcher
        assert webserver.run_launcher.terminate(run.run_id)
    ended = wait_until(
        instance, run.run_id, {dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE}
    )
    assert ended.status == dg.DagsterRunStatus.CANCELED
    assert not release.exists()


def test_health_check_sees_a_killed_worker(instance, location, tmp_path):
    config = {"wait_for_release": {"config": {"release": str(tmp_path / "never")}}}
    run = launch(instance, location.create_run(instance, "waiting", config))
    started = wait_until(instance, run.run_id, {dg.DagsterRunStatus.STARTED})
    launcher = instance.run_launcher
    assert launcher.supports_check_run_worker_health
    assert launcher.check_run_worker_health(started).status == WorkerStatus.RUNNING
    os.kill(int(started.tags[PID_TAG]), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while launcher.check_run_worker_health(started).status == WorkerStatus.RUNNING:
        assert time.monotonic() < deadline, "the killed worker still looks alive"
        time.sleep(0.1)
    assert launcher.check_run_worker_health(started).status == WorkerStatus.FAILED


def test_fork_refusal_names_the_reason(location, instance):
    run = location.create_run(instance, "hello", {"record": {"config": {"out": "x"}}})
    assert fork_refusal(run.job_code_origin) is None
    refusal = str(fork_refusal(run.job_code_origin, "/other/venv/bin/python"))
    assert "/other/venv/bin/python" in refusal and sys.executable in refusal
    assert fork_refusal(None) == "the run has no Python code origin"


def test_the_configured_preload_is_importable_and_fork_safe():
    """Every module dagster.yaml preloads imports in a fresh interpreter without starting a
    thread: a thread alive in the forkserver would be missing (and its locks held) in every
    forked worker."""
    config = yaml.safe_load((REPO / "infra/dagster/dagster.yaml").read_text())["run_launcher"]
    assert config["class"] == WarmRunLauncher.__name__
    preload = config["config"]["preload"]
    assert "exchange_calendars" in preload and "talib" in preload
    code = (
        "import importlib, threading\n"
        f"for m in {[*BASE_PRELOAD, *preload, 'stock_assets.definitions']!r}:\n"
        "    importlib.import_module(m)\n"
        "print(sorted(t.name for t in threading.enumerate()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        timeout=600,
    )
    assert done.stdout.strip().splitlines()[-1] == "['MainThread']"
