"""Trading domain: backtests, paper accounts, price-movement alerts and broker orders."""

import dagster as dg

from stock_assets.defs.runs import lane_tags
from stock_assets.defs.trading.assets import alerts, backtests, paper_portfolio
from stock_assets.defs.trading.orders import orders

# Evaluate the trading assets' automation conditions; on by default so `make dev` fills them.
# Backtests and the paper portfolio end the history (the Portfolio page): every 30 s, in the
# `trading` lane, one run at a time after the stream's runs (defs/runs.py). Alerts follow every
# new daily partition (backfills of thousands of days during the history) in the shared `aux`
# lane, so they never hold the trading slot.
trading_automation = dg.AutomationConditionSensorDefinition(
    "trading_automation",
    target=dg.AssetSelection.assets(backtests, paper_portfolio, orders),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    run_tags=lane_tags("trading"),
)
alerts_automation = dg.AutomationConditionSensorDefinition(
    "alerts_automation",
    target=dg.AssetSelection.assets(alerts),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    run_tags=lane_tags("aux"),
)

defs = dg.Definitions(
    assets=[backtests, paper_portfolio, alerts, orders],
    sensors=[trading_automation, alerts_automation],
)
