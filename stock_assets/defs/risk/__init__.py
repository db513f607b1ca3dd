"""Risk domain: cross-symbol analytics on the Spark cluster (a lazily imported PySpark resource)."""

import dagster as dg

from stock_assets.defs.risk.assets import rolling_beta

defs = dg.Definitions(assets=[rolling_beta])
