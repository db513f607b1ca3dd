"""The Dagster code location: every domain's definitions merged, with the shared resources."""

from __future__ import annotations

import dagster as dg

from stock_assets.defs import (
    analytics,
    forecast,
    ingest,
    market,
    monitoring,
    risk,
    search,
    trading,
)
from stock_assets.defs.resources import KafkaResource, WarehouseResource
from stock_assets.defs.search.resources import SearchResource
from stock_assets.defs.warehouse import jobs as warehouse_jobs

RESOURCES = {
    "warehouse": WarehouseResource(),
    "kafka": KafkaResource(),
    "search": SearchResource(),
}

defs = dg.Definitions.merge(
    ingest.defs,
    market.defs,
    analytics.defs,
    monitoring.defs,
    risk.defs,
    search.defs,
    trading.defs,
    forecast.defs,
    warehouse_jobs.defs,
    dg.Definitions(resources=RESOURCES),
)
