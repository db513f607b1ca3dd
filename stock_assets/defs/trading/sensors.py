"""What runs the trading assets: two coalescing sensors and the market-open schedule.

- `trading_after_signals` -> `trading` job (backtests, paper portfolio, orders; unpartitioned,
  the `trading` lane): after new signals or daily bars, ONE run; nothing while one is queued or
  in flight, and the run takes every update since (the paper portfolio advances from its own
  watermark, backtests read the whole history). It does not wait for the stream's sessions runs:
  the paper portfolio applies sessions only up to the newest day whose signals were materialized
  (`trading.assets.signals_through`), so bars of a day whose signals are still being computed
  are left for the next run.
- `alerts_after_bars` -> `alerts` job (`analytics/alerts`, daily partitions, the `trading` lane):
  the days whose daily bars are newer than their alerts, as one ranged run (defs/catch_up.py).
  Both sensors request nothing while a run of the lane waits for the slot: they take turns.
- `orders_market_open` (09:35 New York, weekdays): a `trading` run when the market opens, so
  live orders held by the market-hours limit go out (defs/trading/orders.py).
"""

from __future__ import annotations

import dagster as dg

from stock_assets.defs.catch_up import latest_upstream, partitioned_follower
from stock_assets.defs.kernel import ALERTS, BARS_DAILY, SIGNALS
from stock_assets.defs.runs import (
    SENSOR_INTERVAL_S,
    serial_job_tags,
    skip_unless_lane_free,
    skip_while_in_flight,
    skip_while_lane_busy,
)
from stock_assets.defs.trading.assets import alerts, backtests, paper_portfolio
from stock_assets.defs.trading.orders import orders
from stock_assets.lib.calendar import TIMEZONE

TRADING_JOB = "trading"
ALERTS_JOB = "alerts"
ALERTS_INTERVAL_S = 30

trading_job = dg.define_asset_job(
    TRADING_JOB,
    selection=dg.AssetSelection.assets(backtests, paper_portfolio, orders),
    description="Backtests, the paper portfolio and broker orders after new signals.",
    # the job's tags are every run's, a run launched from the Launchpad included
    tags={"domain": "trading", **serial_job_tags(TRADING_JOB, max_runtime_s=1800, lane="trading")},
    executor_def=dg.in_process_executor,
)

alerts_job = dg.define_asset_job(
    ALERTS_JOB,
    selection=dg.AssetSelection.assets(alerts),
    description="Price-movement alerts for a range of NY days.",
    # The trading lane: alerts are the trading bot's, their run is short now (the whole 2000-2013
    # history in one ranged in-process run, ~17 s of work at load 13), and in the `aux` lane
    # they waited behind multi-minute search indexing runs. Both sensors of the lane request
    # only into an idle lane, so they take turns.
    tags={"domain": "trading", **serial_job_tags(ALERTS_JOB, max_runtime_s=3600, lane="trading")},
    executor_def=dg.in_process_executor,
)


@dg.sensor(
    job=trading_job,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="One trading run after new signals or daily bars; none while one is in flight.",
)
def trading_after_signals(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    if skip := skip_while_in_flight(context.instance, TRADING_JOB):
        return skip
    if skip := skip_while_lane_busy(context.instance, "trading"):  # an alerts run: take turns
        return skip
    seen = int(context.cursor or 0)
    newest = latest_upstream(context.instance, [SIGNALS, BARS_DAILY])
    if newest <= seen:
        return dg.SkipReason("no new signals or daily bars")
    if skip := skip_unless_lane_free(context, "trading"):  # the sensors before it first
        return skip
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"{TRADING_JOB}@{newest}")], cursor=str(newest)
    )


alerts_after_bars = partitioned_follower(
    "alerts_after_bars",
    alerts_job,
    target=ALERTS,
    upstream=[BARS_DAILY],
    minimum_interval_seconds=ALERTS_INTERVAL_S,
    description="One alerts run over the days whose daily bars are newer than their alerts.",
)


@dg.schedule(
    job=trading_job,
    cron_schedule="35 9 * * 1-5",
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At the open (09:35 New York, weekdays): send the orders held until then.",
)
def orders_market_open(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    return skip_while_in_flight(context.instance, TRADING_JOB) or dg.RunRequest()
