"""Search indices mirrored from the warehouse, one daily partition (or a range) per run.

Each run makes the partition's documents equal the warehouse rows of its days (see
stock_assets/lib/search/indexing.py), so re-running a partition never duplicates, and a run after
an outage indexes whatever the failed runs missed. The engine being down fails only these assets:
they read the warehouse and nothing downstream of the warehouse depends on them.
"""

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

import dagster as dg
import psycopg

from stock_assets.defs.kernel import (
    ALERTS,
    ALERTS_INDEX,
    BARS_DAILY,
    DAILY_BARS_INDEX,
    SIGNALS,
    SIGNALS_INDEX,
    session_asset,
    window,
)
from stock_assets.defs.resources import WarehouseResource
from stock_assets.defs.search.resources import SearchResource
from stock_assets.lib.search import indexing, templates
from stock_assets.lib.search.client import SearchUnavailable

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

MATCHES_WAREHOUSE = "matches_warehouse"

Sync = Callable[["Elasticsearch", psycopg.Connection, str, date, date], indexing.IndexReport]

# For failures other than the engine being unavailable (e.g. a warehouse blip); engine outages are
# retried per SearchResource.step_retries (RetryRequested takes precedence over this policy).
RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)


def index_asset(
    key: dg.AssetKey,
    upstream: dg.AssetKey,
    dataset: templates.Dataset,
    sync: Sync,
    description: str,
) -> dg.AssetsDefinition:
    """An asset that syncs one dataset's window from the warehouse into the search engine."""

    @session_asset(
        key=key,
        deps=[upstream],
        group_name="search",
        kinds={"elasticsearch", "timescaledb"},
        retry_policy=RETRY_POLICY,
        check_specs=[dg.AssetCheckSpec(MATCHES_WAREHOUSE, asset=key)],
        description=description,
    )
    def _asset(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, search: SearchResource
    ) -> dg.MaterializeResult:
        w = window(context)
        prefix = search.prefix
        try:
            client = search.client()
            applied = templates.apply_templates(client, prefix)
            migrated = templates.migrate_monthly_indices(client, dataset, prefix)
            with warehouse.connection() as conn:
                report = sync(client, conn, prefix, w.first_date, w.last_date)
            in_index = indexing.count(client, dataset, prefix, report.first_date, report.last_date)
        except SearchUnavailable as exc:
            context.log.error(str(exc))
            raise dg.RetryRequested(
                max_retries=search.step_retries, seconds_to_wait=search.step_retry_wait_s
            ) from exc
        if report.failed:
            raise dg.Failure(
                description=f"{report.failed} document(s) rejected by the engine: "
                + "; ".join(report.errors),
                metadata={"indexed": report.indexed, "failed": report.failed},
                allow_retries=False,  # a rejected document fails the same way again
            )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": report.indexed,
                "window": w.label(),
                "synced_dates": f"{report.first_date}..{report.last_date}",
                "warehouse_rows": report.rows_read,
                "indexed": report.indexed,
                "deleted_stale": report.deleted,
                "docs_in_index": in_index,
                "indices": sorted(report.indices),
                "alias": dataset.alias(prefix),
                "templates": {t.name: f"v{t.version} {t.status}" for t in applied},
                "monthly_indices_migrated": len(migrated),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=MATCHES_WAREHOUSE,
                    passed=in_index == report.rows_read,
                    metadata={"docs_in_index": in_index, "warehouse_rows": report.rows_read},
                )
            ],
        )

    return _asset


signals_index = index_asset(
    SIGNALS_INDEX,
    SIGNALS,
    templates.SIGNALS,
    indexing.sync_signals,
    "Signals with their forward return, searchable by reason text (re-syncs 14 prior days).",
)
daily_bars_index = index_asset(
    DAILY_BARS_INDEX,
    BARS_DAILY,
    templates.BARS_DAILY,
    indexing.sync_daily_bars,
    "Daily session aggregates (OHLCV, VWAP, returns, volatility) in the search engine.",
)
alerts_index = index_asset(
    ALERTS_INDEX,
    ALERTS,
    templates.ALERTS,
    indexing.sync_alerts,
    "Price-movement alerts (rule, direction, message) searchable by message text.",
)
