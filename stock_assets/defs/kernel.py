"""What every domain shares: the daily partitions, their run windows, and every asset key.

Partitions: one per New York calendar day (weekends and holidays exist and load empty: a
partition key is a plain date, which keeps keys, ranges and SQL windows trivial). end_offset=1
makes today's partition exist while the session runs, so live ticks and the end-of-day schedule
can target it. Asset keys follow the physical table (lib/tables.py) where there is one; domains,
sensors, checks, jobs and tests import them from here. Resources are registered in one place:
stock_assets/definitions.py.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg

from stock_assets.lib import tables
from stock_assets.lib.calendar import TIMEZONE
from stock_assets.lib.tables import TableSpec

# the tags of a ranged (single-run backfill) run over start..end partitions
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
START_DATE = "2000-03-01"  # first session of the bundled history (bokeh_sampledata)

session_partitions = dg.DailyPartitionsDefinition(
    start_date=START_DATE, timezone=TIMEZONE, end_offset=1
)


@dataclass(frozen=True)
class Window:
    """A run's partition window: [start, end) instants and the dates first..last inside it."""

    start: datetime
    end: datetime

    @property
    def first_date(self) -> date:
        return self.start.date()

    @property
    def last_date(self) -> date:
        return (self.end - timedelta(days=1)).date()

    def label(self) -> str:
        return f"{self.first_date}..{self.last_date}"


def window(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> Window:
    """The partition window of a single-partition or ranged (single-run backfill) run."""
    tw = context.partition_time_window
    return Window(tw.start, tw.end)


def session_asset(**kwargs: Any) -> Callable[..., dg.AssetsDefinition]:
    """`@dg.asset` on the daily session partitions; a ranged backfill is one run (the asset
    computes its whole window at once)."""
    return dg.asset(
        partitions_def=session_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        **kwargs,
    )


def table_key(spec: TableSpec) -> dg.AssetKey:
    """The asset key of the asset that owns a warehouse table: ["schema", "table"]."""
    return dg.AssetKey([spec.schema_name, spec.table_name])


# --- asset keys (one constant per asset) -----------------------------------------------------
RAW_TICKS = table_key(tables.RAW_TICKS)
SPLITS = table_key(tables.SPLITS)
BARS_1M = table_key(tables.BARS_1M)
BARS_DAILY = table_key(tables.BARS_DAILY)
INDICATORS = table_key(tables.INDICATORS)
SIGNALS = table_key(tables.SIGNALS)
ALERTS = table_key(tables.ALERTS)
ROLLING_BETA = table_key(tables.ROLLING_BETA)
BACKTESTS = table_key(tables.BACKTESTS)
PAPER_PORTFOLIO = dg.AssetKey(["trading", "paper_portfolio"])  # trading.orders/fills/equity...
ORDERS = dg.AssetKey(["trading", "orders"])  # trading.broker_orders/fills/positions, order_audit
EVALUATION = table_key(tables.EVALUATION)
PREDICTIONS = table_key(tables.PREDICTIONS)
SIGNALS_INDEX = dg.AssetKey(["search", "signals_index"])
DAILY_BARS_INDEX = dg.AssetKey(["search", "daily_bars_index"])
ALERTS_INDEX = dg.AssetKey(["search", "alerts_index"])
