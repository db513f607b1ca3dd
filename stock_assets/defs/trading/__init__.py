"""Trading domain: strategy backtests, paper-trading accounts and price-movement alerts."""

import dagster as dg

from stock_assets.defs.trading.assets import alerts, backtests, paper_portfolio
from stock_assets.defs.trading.resources import TradingConfigResource

defs = dg.Definitions(
    assets=[backtests, paper_portfolio, alerts],
    resources={"trading_config": TradingConfigResource()},
)
