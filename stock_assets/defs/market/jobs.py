"""The partitioned job that recomputes bars → aggregates → indicators → signals for NY days.

Launched by the after-ingest sensor for the days a raw_ticks load touched, and by the
end-of-day schedule after the close.
"""

from zoneinfo import ZoneInfo

import dagster as dg

from stock_assets.defs.market.assets import BARS_1M, BARS_DAILY
from stock_assets.lib import calendar

INDICATORS = dg.AssetKey(["analytics", "indicators"])
SIGNALS = dg.AssetKey(["analytics", "signals"])

sessions_job = dg.define_asset_job(
    "market_sessions",
    selection=dg.AssetSelection.assets(BARS_1M, BARS_DAILY, INDICATORS, SIGNALS),
    description="Recompute bars_1m, bars_daily, indicators and signals for a range of NY days.",
    tags={"domain": "market"},
)


@dg.schedule(
    job=sessions_job,
    cron_schedule="30 17 * * 1-5",
    execution_timezone=calendar.TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="After the close (17:30 New York, weekdays): recompute the day's partition.",
)
def market_end_of_day(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    day = context.scheduled_execution_time.astimezone(ZoneInfo(calendar.TIMEZONE)).date()
    if not calendar.is_session(day):
        return dg.SkipReason(f"{day} is not an NYSE session")
    return dg.RunRequest(run_key=f"eod:{day}", partition_key=day.isoformat())
