"""Search domain: warehouse data mirrored into the search engine, and the catch-up sensor."""

import dagster as dg

from stock_assets.defs.search.assets import daily_bars_index, signals_index
from stock_assets.defs.search.sensors import search_catch_up, search_index_job

defs = dg.Definitions(
    assets=[signals_index, daily_bars_index],
    jobs=[search_index_job],
    sensors=[search_catch_up],
)
