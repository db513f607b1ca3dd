"""How far each warehouse stage has come: rows and newest event time, per table (pure SQL reads).

Used by `stockctl progress` (what `make dev` prints while the history lands) and bench/e2e.py.
Date-keyed tables count a session as reached at its close (16:00 New York), so every stage's
progress is an instant comparable with the producer's event time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import psycopg

NY = ZoneInfo("America/New_York")
SESSION_CLOSE = time(16, 0)

# stage -> query returning (rows, newest event time as timestamptz or date). Fixed strings: no
# identifier is ever built from input.
STAGES: dict[str, str] = {
    "raw_ticks": "SELECT count(*), max(ts) FROM market.raw_ticks",
    "bars_1m": "SELECT count(*), max(ts) FROM market.bars_1m",
    "bars_daily": "SELECT count(*), max(session_date) FROM market.bars_daily",
    "indicators": "SELECT count(*), max(session_date) FROM analytics.indicators",
    "signals": "SELECT count(*), max(session_date) FROM analytics.signals",
    "backtests": "SELECT count(*), max(last_session) FROM trading.backtests",
    "equity": "SELECT count(*), max(ts) FROM trading.equity",
    "alerts": "SELECT count(*), max(session_date) FROM analytics.alerts",
    "live_bars_1m": "SELECT count(*), max(ts) FROM market.live_bars_1m",
}


@dataclass(frozen=True)
class StageProgress:
    rows: int
    event_time: datetime | None

    def label(self) -> str:
        reached = self.event_time.date().isoformat() if self.event_time else "-"
        return f"{self.rows:,} (→{reached})"


def as_instant(value: datetime | date | None) -> datetime | None:
    """A timestamptz as is; a session date as its close in New York."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.combine(value, SESSION_CLOSE, NY).astimezone(UTC)


def read(conn: psycopg.Connection) -> dict[str, StageProgress]:
    out = {}
    for stage, query in STAGES.items():
        rows, newest = conn.execute(query).fetchone() or (0, None)
        out[stage] = StageProgress(int(rows), as_instant(newest))
    return out


def history_done(conn: psycopg.Connection, last_sessions: dict[str, date]) -> bool:
    """Every history symbol has indicators up to its last history session, signals, and a
    backtest over its whole history; the paper portfolio has an equity curve."""
    symbols = list(last_sessions)
    reached = conn.execute(
        "SELECT s.symbol,"
        " (SELECT max(session_date) FROM analytics.indicators i WHERE i.symbol = s.symbol),"
        " (SELECT max(last_session) FROM trading.backtests b WHERE b.symbol = s.symbol),"
        " EXISTS (SELECT 1 FROM analytics.signals g WHERE g.symbol = s.symbol)"
        " FROM unnest(%s::text[]) AS s(symbol)",
        (symbols,),
    ).fetchall()
    equity = conn.execute("SELECT EXISTS (SELECT 1 FROM trading.equity)").fetchone()
    return bool(equity and equity[0]) and all(
        ind is not None and bt is not None and has_signals and min(ind, bt) >= last_sessions[s]
        for s, ind, bt, has_signals in reached
    )


def summary(progress: dict[str, StageProgress], stages: tuple[str, ...] | None = None) -> str:
    return " ".join(f"{s}={progress[s].label()}" for s in stages or tuple(progress))
