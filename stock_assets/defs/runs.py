"""How runs share 2 cores: lanes, priorities, one in flight per job, bounded in time.

- Lanes (`LANE_TAG`, dagster.yaml `tag_concurrency_limits`): the stream's critical path,
  `ingest` (raw_ticks) and `sessions` (bars → signals), each has a slot of its own; the trading
  automation has one (backtests and the paper portfolio: the Portfolio page, the end of the
  history); every other run (search indexing, alerts, forecasts, maintenance) shares ONE `aux`
  slot. So auxiliary work can never take the slots of the stream, nor more than one at a time.
  Runs launched by hand from the UI carry no lane.
- Priorities (`dagster/priority`, read by the QueuedRunCoordinator when it dequeues): ingest
  before sessions before trading before aux.
- `SERIAL_TAG`: the run queue lets at most one run of each tagged job start at a time; the
  sensors and schedules additionally request nothing while one is queued or in flight
  (`skip_while_in_flight`), so work never queues behind itself and the next run takes
  everything pending at its launch. The followers of the shared lanes request only into an idle
  lane and an empty queue (`skip_while_lane_busy`).
- `in_process_executor`: a run executes its steps in the run worker itself, not one subprocess
  per step (each would import the code location again: ~2-5 s and ~250 MB each on 2 cores).
- `dagster/max_runtime`: DefaultRunLauncher cannot check a run worker's health, so a worker
  killed with SIGKILL would stay STARTED and block its sensor forever; run monitoring fails a run
  that exceeds this, and the ledger makes its range pending again.
- `SettingsRejected`: a ConfigError raised inside a run is a `dg.Failure(allow_retries=False)`:
  an op RetryPolicy retries every other exception, but retrying cannot fix a wrong setting.
"""

from __future__ import annotations

from typing import Literal

import dagster as dg

from stock_assets.lib.settings import ConfigError

SERIAL_TAG = "stock/serial"
LANE_TAG = "stock/lane"
PRIORITY_TAG = "dagster/priority"
MAX_RUNTIME_TAG = "dagster/max_runtime"
# The stream's sensors (Kafka → ingest, ingest → sessions): the sensor daemon's own loop is 5 s
# (dagster/_daemon/sensor.py MIN_INTERVAL_LOOP_TIME); an evaluation that finds a run in flight
# is one run-storage query, so checking as often as the daemon loops costs little and starts the
# next run as soon as the previous one ends.
SENSOR_INTERVAL_S = 5

Lane = Literal["ingest", "sessions", "trading", "aux"]
# higher is dequeued first (QueuedRunCoordinator); the stream's critical path first
PRIORITY: dict[Lane, int] = {"ingest": 30, "sessions": 20, "trading": 10, "aux": 0}

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def lane_tags(lane: Lane) -> dict[str, str]:
    """Tags putting a run in `lane` (its slot in dagster.yaml) with the lane's priority."""
    return {LANE_TAG: lane, PRIORITY_TAG: str(PRIORITY[lane])}


def serial_job_tags(job_name: str, max_runtime_s: int, lane: Lane) -> dict[str, str]:
    """Tags of a job that runs at most once at a time (see dagster.yaml), in `lane`, and is
    time-bounded."""
    return {SERIAL_TAG: job_name, MAX_RUNTIME_TAG: str(max_runtime_s), **lane_tags(lane)}


def in_flight(instance: dg.DagsterInstance, job_name: str) -> list[str]:
    """Run ids of `job_name` that are queued or running (at most a few; normally 0 or 1)."""
    records = instance.get_run_records(
        dg.RunsFilter(job_name=job_name, statuses=IN_FLIGHT), limit=5
    )
    return [record.dagster_run.run_id for record in records]


def skip_while_lane_busy(instance: dg.DagsterInstance, lane: Lane) -> dg.SkipReason | None:
    """The rule of the followers sharing the `trading` and `aux` lanes: request a run only into
    an idle lane (no run of it queued or in flight) and an empty run queue. Their wait then
    happens in the sensor, whose next tick takes everything pending, not as queued runs: the
    queue holds the stream's own runs (ingest, sessions) and at most one follower's, dequeued
    within a second. A follower checks first (to skip cheaply) and again right before it returns
    a request: the daemon evaluates sensors in parallel threads (dagster.yaml `sensors`), so a
    sensor of the same iteration may have queued a run while this one read its upstream.
    None: the lane is free."""
    busy = instance.get_run_records(
        dg.RunsFilter(tags={LANE_TAG: lane}, statuses=IN_FLIGHT), limit=1
    )
    if busy:
        return dg.SkipReason(f"the {lane} lane is busy ({busy[0].dagster_run.run_id})")
    queued = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]), limit=1)
    if queued:
        return dg.SkipReason(f"a run waits in the queue ({queued[0].dagster_run.run_id})")
    return None


def skip_while_in_flight(instance: dg.DagsterInstance, job_name: str) -> dg.SkipReason | None:
    """The coalescing rule of every sensor and schedule that starts a serial job: request nothing
    while a run of it is queued or in flight (the sensor's cursor does not move), so the next run
    takes everything pending at its launch. None: the job is idle."""
    busy = in_flight(instance, job_name)
    if not busy:
        return None
    return dg.SkipReason(f"a {job_name} run is queued or in flight ({busy[0]})")


class SettingsRejected(ConfigError, dg.Failure):
    """A ConfigError that Dagster's op RetryPolicy does not retry (`allow_retries=False`)."""

    def __init__(self, exc: ConfigError) -> None:
        dg.Failure.__init__(
            self,
            description=f"not retried, bad input or settings (ConfigError): {exc}",
            allow_retries=False,
        )


def settings_rejected(exc: ConfigError) -> SettingsRejected:
    return exc if isinstance(exc, SettingsRejected) else SettingsRejected(exc)
