"""NYSE (XNYS) sessions from exchange-calendars: session dates, open/close instants, half-days.

Timestamps are polars `Datetime("us", "UTC")`; session dates are exchange-local dates.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import polars as pl

if TYPE_CHECKING:
    import exchange_calendars as xc

EXCHANGE = "XNYS"
TIMEZONE = "America/New_York"  # the exchange time zone: every other module imports this one
ZONE = ZoneInfo(TIMEZONE)
# exchange-calendars builds a calendar for the last 20 years by default; the bundled history
# (bokeh_sampledata) starts in 2000, so the calendar has to be asked for an explicit start.
CALENDAR_START = date(1999, 1, 4)
REGULAR_SESSION_MINUTES = 390

SESSION_SCHEMA: dict[str, Any] = {
    "session_date": pl.Date,
    "open": pl.Datetime("us", "UTC"),
    "close": pl.Datetime("us", "UTC"),
    "minutes": pl.Int64,
    "half_day": pl.Boolean,
}


@lru_cache(maxsize=1)
def nyse() -> xc.ExchangeCalendar:
    # imported here: exchange_calendars (and pandas under it) take seconds to import, and the
    # code location needs only TIMEZONE when it loads
    import exchange_calendars as xc

    return xc.get_calendar(EXCHANGE, start=CALENDAR_START.isoformat())


def sessions(start: date, end: date) -> pl.DataFrame:
    """Sessions with start <= session_date <= end, one row each (empty if none)."""
    cal = nyse()
    first = max(start, cal.first_session.date())
    last = min(end, cal.last_session.date())
    if first > last:
        return pl.DataFrame(schema=SESSION_SCHEMA)
    schedule = cal.schedule.loc[first.isoformat() : last.isoformat()]
    if schedule.empty:
        return pl.DataFrame(schema=SESSION_SCHEMA)
    frame = pl.DataFrame(
        {
            "session_date": [d.date() for d in schedule.index],
            "open": [t.to_pydatetime() for t in schedule["open"]],
            "close": [t.to_pydatetime() for t in schedule["close"]],
        }
    ).with_columns(
        pl.col("open").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
        pl.col("close").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
    )
    minutes = ((pl.col("close") - pl.col("open")).dt.total_minutes()).cast(pl.Int64)
    return frame.with_columns(
        minutes.alias("minutes"), (minutes < REGULAR_SESSION_MINUTES).alias("half_day")
    ).select(list(SESSION_SCHEMA))


def is_session(day: date) -> bool:
    return sessions(day, day).height == 1
