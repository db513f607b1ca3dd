"""How the sensor-driven jobs run: one in flight per job, in one process, bounded in time.

- `SERIAL_TAG`: the run queue (dagster.yaml `tag_concurrency_limits`, one run per unique value)
  lets at most one run of each tagged job start at a time; the sensors additionally request
  nothing while one is queued or in flight (`in_flight`), so work never queues behind itself and
  the next run takes everything pending at its launch.
- `in_process_executor`: a run executes its steps in the run worker itself, not one subprocess
  per step (each would import the code location again: ~2-5 s and ~250 MB each on 2 cores).
- `dagster/max_runtime`: DefaultRunLauncher cannot check a run worker's health, so a worker
  killed with SIGKILL would stay STARTED and block its sensor forever; run monitoring fails a run
  that exceeds this, and the ledger makes its range pending again.
"""

from __future__ import annotations

import dagster as dg

SERIAL_TAG = "stock/serial"
MAX_RUNTIME_TAG = "dagster/max_runtime"

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def serial_job_tags(job_name: str, max_runtime_s: int) -> dict[str, str]:
    """Tags of a job that runs at most once at a time (see dagster.yaml) and is time-bounded."""
    return {SERIAL_TAG: job_name, MAX_RUNTIME_TAG: str(max_runtime_s)}


def in_flight(instance: dg.DagsterInstance, job_name: str) -> list[str]:
    """Run ids of `job_name` that are queued or running (at most a few; normally 0 or 1)."""
    records = instance.get_run_records(
        dg.RunsFilter(job_name=job_name, statuses=IN_FLIGHT), limit=5
    )
    return [record.dagster_run.run_id for record in records]
