"""Pure helpers for the market page's time ranges: URL query, quick ranges, zoom events."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

QUICK_RANGES: dict[str, timedelta | None] = {
    "1D": timedelta(days=1),
    "1W": timedelta(days=7),
    "1M": timedelta(days=31),
    "3M": timedelta(days=92),
    "1Y": timedelta(days=366),
    "All": None,
}
# Resolution choices of the market page: the smallest bucket a candle may have ("auto": from the
# data's density, see `density`).
RESOLUTIONS: dict[str, timedelta | None] = {
    "auto": None,
    "1 min": timedelta(minutes=1),
    "5 min": timedelta(minutes=5),
    "1 h": timedelta(hours=1),
    "1 day": timedelta(days=1),
    "1 week": timedelta(days=7),
}
Density = Literal["daily", "intraday"]
# A full session has 390 one-minute bars; replayed daily bars give ~18 prints a session. Below
# this many bars per session the data is daily at heart and minute buckets would show dots.
SPARSE_BARS_PER_SESSION = 60
DEFAULT_SESSIONS: dict[Density, int] = {"daily": 120, "intraday": 10}
_RANGE_KEY = re.compile(r"^xaxis\d*\.range\[(0|1)\]$")
_AUTORANGE_KEY = re.compile(r"^xaxis\d*\.autorange$")


def parse_query(search: str | None) -> dict[str, str]:
    """`?symbol=AAPL&start=2024-01-02` → {"symbol": "AAPL", "start": "2024-01-02"} (last wins)."""
    if not search:
        return {}
    return {k: v[-1] for k, v in parse_qs(search.lstrip("?")).items() if v}


def parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def day_bounds(start: date, end: date, tz: str) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in exchange-local time, as UTC instants."""
    zone = ZoneInfo(tz)
    lo = datetime.combine(start, datetime.min.time(), zone)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), zone)
    return lo.astimezone(UTC), hi.astimezone(UTC)


def quick_range(key: str, first: datetime, last: datetime, tz: str) -> tuple[date, date]:
    """The exchange-local (start, end) dates of quick range `key` ending at the last bar."""
    zone = ZoneInfo(tz)
    last_day = last.astimezone(zone).date()
    first_day = first.astimezone(zone).date()
    span = QUICK_RANGES.get(key)
    if span is None:
        return first_day, last_day
    return max(first_day, last_day - span + timedelta(days=1)), last_day


def zoom_range(relayout: dict[str, Any] | None, tz: str) -> tuple[datetime, datetime] | bool | None:
    """The x range a user zoomed to, as UTC instants; True for "reset zoom"; None otherwise.

    Plotly reports the range of the dragged axis in the axis' (exchange-local, naive) time.
    """
    if not relayout:
        return None
    if any(_AUTORANGE_KEY.match(k) and v for k, v in relayout.items()):
        return True
    ends: dict[str, str] = {}
    for key, value in relayout.items():
        match = _RANGE_KEY.match(key)
        if match:
            ends[match[1]] = str(value)
    if set(ends) != {"0", "1"}:
        for key, value in relayout.items():
            if re.match(r"^xaxis\d*\.range$", key) and isinstance(value, list) and len(value) == 2:
                ends = {"0": str(value[0]), "1": str(value[1])}
    if set(ends) != {"0", "1"}:
        return None
    zone = ZoneInfo(tz)
    try:
        lo, hi = (
            datetime.fromisoformat(ends[i].replace(" ", "T")[:26]).replace(tzinfo=zone)
            for i in "01"
        )
    except ValueError:
        return None
    if hi <= lo:
        return None
    return lo.astimezone(UTC), hi.astimezone(UTC)


def density(bar_times: list[datetime], tz: str) -> Density:
    """ "daily" when the newest bars hold fewer than SPARSE_BARS_PER_SESSION per session."""
    if not bar_times:
        return "intraday"
    zone = ZoneInfo(tz)
    sessions = {t.astimezone(zone).date() for t in bar_times}
    return "daily" if len(bar_times) / len(sessions) < SPARSE_BARS_PER_SESSION else "intraday"


def min_bucket(resolution: str | None, data_density: Density) -> timedelta:
    """The smallest candle for a resolution choice; "auto" follows the data's density."""
    chosen = RESOLUTIONS.get(resolution or "auto")
    if chosen is not None:
        return chosen
    return timedelta(days=1) if data_density == "daily" else timedelta(minutes=1)
