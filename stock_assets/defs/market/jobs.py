"""The partitioned job that recomputes bars → aggregates → indicators → signals for NY days.

Launched by the after-ingest sensor for the days a raw_ticks load touched, and by the
end-of-day schedule after the close.
"""

import dagster as dg

from stock_assets.defs.kernel import BARS_1M, BARS_DAILY, INDICATORS, SIGNALS
from stock_assets.defs.runs import serial_job_tags
from stock_assets.lib import calendar

SESSIONS_JOB = "market_sessions"
SESSION_ASSETS = [BARS_1M, BARS_DAILY, INDICATORS, SIGNALS]

# Every step re-computes its window in one transaction (delete + insert), so re-executing a step
# after a warehouse outage mid-run is safe: the run stays in flight and retries after ~5, 15, 35 s.
SESSIONS_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

sessions_job = dg.define_asset_job(
    SESSIONS_JOB,
    selection=dg.AssetSelection.assets(*SESSION_ASSETS),
    description="Recompute bars_1m, bars_daily, indicators and signals for a range of NY days.",
    tags={"domain": "market", **serial_job_tags(SESSIONS_JOB, max_runtime_s=3600, lane="sessions")},
    executor_def=dg.in_process_executor,
    op_retry_policy=SESSIONS_RETRY_POLICY,
)


@dg.schedule(
    job=sessions_job,
    cron_schedule="30 17 * * 1-5",
    execution_timezone=calendar.TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="After the close (17:30 New York, weekdays): recompute the day's partition.",
)
def market_end_of_day(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    day = context.scheduled_execution_time.astimezone(calendar.ZONE).date()
    if not calendar.is_session(day):
        return dg.SkipReason(f"{day} is not an NYSE session")
    return dg.RunRequest(run_key=f"eod:{day}", partition_key=day.isoformat())
