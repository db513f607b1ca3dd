"""Trading domain: strategy backtests, paper-trading accounts and price-movement alerts."""

import dagster as dg

from stock_assets.defs.runs import lane_tags
from stock_assets.defs.trading.assets import alerts, backtests, paper_portfolio
from stock_assets.defs.trading.resources import TradingConfigResource

# Evaluates the trading assets' automation conditions; on by default so `make dev` fills them.
# Its runs (and the backfills it creates for alerts) take the `trading` lane: one at a time, after
# the stream's runs (defs/runs.py). Every 30 s: backtests and the paper portfolio end the history.
trading_automation = dg.AutomationConditionSensorDefinition(
    "trading_automation",
    target=dg.AssetSelection.assets(backtests, paper_portfolio, alerts),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    run_tags=lane_tags("trading"),
)

defs = dg.Definitions(
    assets=[backtests, paper_portfolio, alerts],
    sensors=[trading_automation],
    resources={"trading_config": TradingConfigResource()},
)
