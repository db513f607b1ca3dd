"""Analytics domain: indicators and signals over the daily bars."""

import dagster as dg

from stock_assets.defs.analytics.assets import indicators_asset, signals_asset
from stock_assets.defs.analytics.checks import analytics_checks

defs = dg.Definitions(assets=[indicators_asset, signals_asset], asset_checks=analytics_checks)
