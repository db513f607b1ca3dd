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
  lane and an empty queue (`skip_while_lane_busy`), after the sensors before them in
  `SENSOR_ORDER` have queued their runs (`skip_unless_lane_free`, ADR 0039).
- `in_process_executor`: a run executes its steps in the run worker itself, not one subprocess
  per step (each would import the code location again: ~2-5 s and ~250 MB each on 2 cores).
- `dagster/max_runtime`: DefaultRunLauncher cannot check a run worker's health, so a worker
  killed with SIGKILL would stay STARTED and block its sensor forever; run monitoring fails a run
  that exceeds this, and the ledger makes its range pending again.
- `SettingsRejected`: a ConfigError raised inside a run is a `dg.Failure(allow_retries=False)`:
  an op RetryPolicy retries every other exception, but retrying cannot fix a wrong setting.
"""

from __future__ import annotations

import time
from typing import Literal

import dagster as dg

# not exported by dagster: the tick status the sensor daemon writes (ticks are public in the UI)
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

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


def lane_busy(instance: dg.DagsterInstance, lane: Lane) -> dg.SkipReason | None:
    """A reason to skip while a run of `lane` is queued or in flight; None: the lane is idle."""
    busy = instance.get_run_records(
        dg.RunsFilter(tags={LANE_TAG: lane}, statuses=IN_FLIGHT), limit=1
    )
    if busy:
        return dg.SkipReason(f"the {lane} lane is busy ({busy[0].dagster_run.run_id})")
    return None


def run_queued(instance: dg.DagsterInstance) -> dg.SkipReason | None:
    """A reason to skip while any run waits in the queue; None: the queue is empty."""
    queued = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]), limit=1)
    if queued:
        return dg.SkipReason(f"a run waits in the queue ({queued[0].dagster_run.run_id})")
    return None


def skip_while_lane_busy(instance: dg.DagsterInstance, lane: Lane) -> dg.SkipReason | None:
    """The rule of the followers sharing the `trading` and `aux` lanes: request a run only into
    an idle lane (no run of it queued or in flight) and an empty run queue. Their wait then
    happens in the sensor, whose next tick takes everything pending, not as queued runs: the
    queue holds the stream's own runs (ingest, sessions) or one follower's, dequeued within a
    second. A follower checks first (to skip cheaply) and again right before it returns a
    request, after the sensors before it (`skip_unless_lane_free`). None: the lane is free."""
    return lane_busy(instance, lane) or run_queued(instance)


# The order in which the sensors of one daemon iteration may queue runs (ADR 0039): the stream's
# first, then the followers of the shared lanes. The daemon starts every due sensor at once in
# parallel threads (dagster.yaml `sensors`, its loop is 5 s), so without an order a follower
# reading "empty queue" raced the stream's sensors and its lane peer: up to four runs were queued
# within one second (bench/e2e.py max_queued_runs 3-4). Within a shared lane the follower that
# ticks less often goes first: alerts (30 s) before trading (5 s), which has new signals after
# nearly every sessions run and, first, kept the lane busy until alerts' milestone moved from
# 107-162 s to 224 s; search (30 s) before predictions (60 s), for the Signals page.
SENSOR_ORDER = (
    "kafka_ticks_sensor",
    "sessions_after_ingest",
    "alerts_after_bars",
    "trading_after_signals",
    "search_catch_up",
    "forecast_after_bars",
)
# A follower waits at most this long for the ticks before it and the queue (a stream sensor's
# evaluation is 0.1-2 s, a queued run's wait ~1 s); then it skips and its next tick tries again.
SETTLE_TIMEOUT_S = 15.0
SETTLE_POLL_S = 0.2
# A STARTED tick older than this is one the daemon abandoned (killed mid-tick), not in flight:
# the daemon's own evaluation timeout is 60 s (DEFAULT_SENSOR_GRPC_TIMEOUT).
ABANDONED_TICK_S = 90.0


def earlier_sensors_in_flight(instance: dg.DagsterInstance, sensor_name: str) -> list[str]:
    """The sensors before `sensor_name` in SENSOR_ORDER whose newest tick is still evaluating or
    submitting its runs (the daemon marks a tick STARTED until its runs are queued)."""
    if instance.schedule_storage is None:  # an ephemeral instance keeps no ticks
        return []
    earlier = set(SENSOR_ORDER[: SENSOR_ORDER.index(sensor_name)])
    now = time.time()
    busy = []
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name not in earlier:
            continue
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
        if (
            ticks
            and ticks[0].status == TickStatus.STARTED
            and now - ticks[0].timestamp < ABANDONED_TICK_S
        ):
            busy.append(state.instigator_name)
    return sorted(busy, key=SENSOR_ORDER.index)


def skip_unless_lane_free(
    context: dg.SensorEvaluationContext, lane: Lane, timeout_s: float = SETTLE_TIMEOUT_S
) -> dg.SkipReason | None:
    """A follower's last check before it returns a request: wait until the sensors before it in
    SENSOR_ORDER have no tick in flight (their runs of this daemon iteration are then in the run
    storage) and no run waits in the queue (the stream's are dequeued within ~1 s); skip if its
    lane is busy. So a follower's run never joins the stream's in the queue, two followers of a
    lane never both see it idle, and a follower that reads its upstream while the stream's
    sensors queue runs still gets its turn in the same iteration (skipping instead starved the
    search catch-up while the stream queued a run every 5 s). None: request."""
    deadline = time.monotonic() + timeout_s
    while True:
        if busy := earlier_sensors_in_flight(context.instance, context.sensor_name):
            waiting = f"{', '.join(busy)} still evaluating"
        elif skip := lane_busy(context.instance, lane):
            return skip
        elif queued := run_queued(context.instance):
            waiting = queued.skip_message or "a run waits in the queue"
        else:
            return None
        if time.monotonic() >= deadline:
            return dg.SkipReason(f"{waiting} after {timeout_s:.0f} s")
        time.sleep(SETTLE_POLL_S)


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
