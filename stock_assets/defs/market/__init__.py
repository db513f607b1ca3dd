"""Market domain: splits, cleaned 1-minute bars, daily aggregates; the sessions job."""

import dagster as dg

from stock_assets.defs.market.assets import bars_1m, bars_daily, splits
from stock_assets.defs.market.checks import market_checks
from stock_assets.defs.market.jobs import market_end_of_day, sessions_job
from stock_assets.defs.market.sensors import sessions_after_ingest

defs = dg.Definitions(
    assets=[splits, bars_1m, bars_daily],
    asset_checks=market_checks,
    jobs=[sessions_job],
    schedules=[market_end_of_day],
    sensors=[sessions_after_ingest],
)
