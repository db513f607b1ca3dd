"""Trading domain: backtests, paper accounts, price-movement alerts and broker orders."""

import dagster as dg

from stock_assets.defs.trading.assets import alerts, backtests, paper_portfolio
from stock_assets.defs.trading.orders import orders

# Evaluates the trading assets' automation conditions; on by default so `make dev` fills them.
trading_automation = dg.AutomationConditionSensorDefinition(
    "trading_automation",
    target=dg.AssetSelection.assets(backtests, paper_portfolio, alerts, orders),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)

defs = dg.Definitions(
    assets=[backtests, paper_portfolio, alerts, orders],
    sensors=[trading_automation],
)
