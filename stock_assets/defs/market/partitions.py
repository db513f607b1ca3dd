"""Daily partitions in the exchange's timezone, shared by bars, aggregates, indicators, signals.

One partition per New York calendar day (weekends and holidays exist and load empty: a partition
key is a plain date, which keeps keys, ranges and SQL windows trivial). end_offset=1 makes today's
partition exist while the session runs, so live ticks and the end-of-day schedule can target it.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import dagster as dg

from stock_assets.lib.calendar import TIMEZONE

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
