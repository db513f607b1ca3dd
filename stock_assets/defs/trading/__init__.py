"""Trading domain: backtests, paper accounts, price-movement alerts and broker orders."""

import dagster as dg

from stock_assets.defs.trading.assets import alerts, backtests, paper_portfolio
from stock_assets.defs.trading.orders import orders
from stock_assets.defs.trading.sensors import (
    alerts_after_bars,
    alerts_job,
    orders_market_open,
    trading_after_signals,
    trading_job,
)

defs = dg.Definitions(
    assets=[backtests, paper_portfolio, alerts, orders],
    jobs=[trading_job, alerts_job],
    sensors=[trading_after_signals, alerts_after_bars],
    schedules=[orders_market_open],
)
