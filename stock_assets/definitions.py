"""The Dagster code location: every domain's definitions merged, and every resource registered.

Shared definitions (partitions, asset keys) live in stock_assets/defs/kernel.py; the resource
classes live with their domain (`defs/resources.py` for the warehouse and Kafka); they are bound
to their keys here only, once, so a domain never registers its own copy.
"""

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
from stock_assets.defs.forecast.resources import ForecastConfigResource, MlflowResource
from stock_assets.defs.resources import KafkaResource, WarehouseResource
from stock_assets.defs.risk.resources import SparkClusterResource
from stock_assets.defs.search.resources import SearchResource
from stock_assets.defs.trading.resources import TradingConfigResource
from stock_assets.defs.warehouse import jobs as warehouse_jobs

RESOURCES = {
    "warehouse": WarehouseResource(),
    "kafka": KafkaResource(),
    "search": SearchResource(),
    "pyspark": SparkClusterResource(),
    "trading_config": TradingConfigResource(),
    "mlflow": MlflowResource(),
    "forecast_config": ForecastConfigResource(),
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
    # every job runs its steps in its run worker (runs.py); this one covers the asset graph's
    # "Materialize" (the implicit asset job), the others set it on the job
    dg.Definitions(resources=RESOURCES, executor=dg.in_process_executor),
)
