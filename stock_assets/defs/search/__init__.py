"""Search domain: signals, daily bars and alerts mirrored into the search engine; catch-up."""

import dagster as dg

from stock_assets.defs.search.assets import alerts_index, daily_bars_index, signals_index
from stock_assets.defs.search.sensors import search_catch_up, search_index_job

defs = dg.Definitions(
    assets=[signals_index, daily_bars_index, alerts_index],
    jobs=[search_index_job],
    sensors=[search_catch_up],
)
