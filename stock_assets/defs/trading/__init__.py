"""Trading domain: strategy backtests, paper-trading accounts and price-movement alerts."""

import dagster as dg

from stock_assets.defs.trading.assets import alerts, backtests, paper_portfolio

# Evaluates the trading assets' automation conditions; on by default so `make dev` fills them.
trading_automation = dg.AutomationConditionSensorDefinition(
    "trading_automation",
    target=dg.AssetSelection.assets(backtests, paper_portfolio, alerts),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)

defs = dg.Definitions(
    assets=[backtests, paper_portfolio, alerts],
    sensors=[trading_automation],
)
