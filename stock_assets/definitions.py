"""The Dagster code location: every domain's definitions merged, with the shared resources."""

from __future__ import annotations

import dagster as dg

from stock_assets.defs import analytics, ingest, market
from stock_assets.defs.resources import KafkaResource, WarehouseResource
from stock_assets.defs.warehouse import jobs as warehouse_jobs

RESOURCES = {
    "warehouse": WarehouseResource(),
    "kafka": KafkaResource(),
}

defs = dg.Definitions.merge(
    ingest.defs,
    market.defs,
    analytics.defs,
    warehouse_jobs.defs,
    dg.Definitions(resources=RESOURCES),
)
