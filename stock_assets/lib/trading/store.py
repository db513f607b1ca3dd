"""Warehouse reads and writes of the trading bot (psycopg 3, bound parameters).

Callers own the connection; every write function runs inside the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import polars as pl
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from stock_assets.lib import calendar, frames, tables
from stock_assets.lib.trading import paper, strategies
from stock_assets.lib.trading.alerts import ALERT_COLUMNS
from stock_assets.lib.trading.backtest import BacktestResult
from stock_assets.lib.trading.config import BookEntry

NEW_YORK = calendar.ZONE
BARS_COLUMNS = ("symbol", "session_date", "open", "high", "low", "close")
SIGNAL_SCHEMA = tables.SIGNALS.schema(["symbol", "session_date", "strategy", "side"])


def read_bars(
    conn: psycopg.Connection,
    symbols: Sequence[str],
    since: date | None = None,
    through: date | None = None,
) -> pl.DataFrame:
    """Daily OHLC of `symbols` (from `since` on, up to `through` included), sorted by symbol and
    session."""
    end = through + timedelta(days=1) if through else None
    bars = frames.read_window(conn, tables.BARS_DAILY, since, end, symbols, columns=BARS_COLUMNS)
    return bars.sort("symbol", "session_date")


def read_signals(
    conn: psycopg.Connection, strategy: str, after: date | None, entries: Sequence[BookEntry]
) -> pl.DataFrame:
    """Stored signals of `strategy` after `after`, each symbol's at its configured parameters."""
    mine = [e for e in entries if e.strategy == strategy]
    return frames.read_frame(
        conn,
        "SELECT s.symbol, s.session_date, s.strategy, s.side FROM analytics.signals s"
        " JOIN unnest(%s::text[], %s::text[]) AS b(symbol, params) USING (symbol, params)"
        " WHERE s.strategy = %s AND s.session_date > %s ORDER BY s.session_date, s.symbol",
        (
            [e.symbol for e in mine],
            [strategies.params_key(e.params) for e in mine],
            strategy,
            after or date(1900, 1, 1),
        ),
        SIGNAL_SCHEMA,
    )


# --- backtests ------------------------------------------------------------------------------


def save_backtest(
    conn: psycopg.Connection, entry: BookEntry, result: BacktestResult, sessions: pl.Series
) -> int:
    """Upsert one backtest on (strategy, symbol, params_hash) and replace its trades."""
    m = result.metrics
    row = conn.execute(
        "INSERT INTO trading.backtests (strategy, symbol, params_hash, params, first_session,"
        " last_session, sessions, initial_cash, final_equity, total_return, cagr, sharpe, sortino,"
        " max_drawdown, max_drawdown_duration, win_rate, trades, exposure)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (strategy, symbol, params_hash) DO UPDATE SET"
        " params = EXCLUDED.params, first_session = EXCLUDED.first_session,"
        " last_session = EXCLUDED.last_session, sessions = EXCLUDED.sessions,"
        " initial_cash = EXCLUDED.initial_cash, final_equity = EXCLUDED.final_equity,"
        " total_return = EXCLUDED.total_return, cagr = EXCLUDED.cagr, sharpe = EXCLUDED.sharpe,"
        " sortino = EXCLUDED.sortino, max_drawdown = EXCLUDED.max_drawdown,"
        " max_drawdown_duration = EXCLUDED.max_drawdown_duration, win_rate = EXCLUDED.win_rate,"
        " trades = EXCLUDED.trades, exposure = EXCLUDED.exposure, run_at = now()"
        " RETURNING backtest_id",
        (
            entry.strategy,
            entry.symbol,
            entry.params_hash(),
            json.dumps(entry.params_json(), sort_keys=True),
            sessions.min(),
            sessions.max(),
            m.bars,
            m.initial_cash,
            m.final_equity,
            m.total_return,
            m.cagr,
            m.sharpe,
            m.sortino,
            m.max_drawdown,
            m.max_drawdown_duration,
            m.win_rate,
            m.trades,
            m.exposure,
        ),
    ).fetchone()
    assert row is not None
    backtest_id = int(row[0])
    conn.execute("DELETE FROM trading.backtest_trades WHERE backtest_id = %s", (backtest_id,))
    trades = result.trades.drop("entry_index", "exit_index").with_columns(
        pl.lit(backtest_id, dtype=pl.Int64).alias("backtest_id")
    )
    spec = tables.BACKTEST_TRADES
    frames.copy_frame(conn, spec.name, spec.conform(trades))
    return backtest_id


# --- paper trading --------------------------------------------------------------------------


def _instant(day: date, which: str, sessions: dict[date, tuple[datetime, datetime]]) -> datetime:
    """The session's open or close instant (XNYS calendar; 09:30/16:00 New York otherwise)."""
    if day in sessions:
        return sessions[day][0 if which == "open" else 1]
    clock = time(9, 30) if which == "open" else time(16, 0)
    return datetime.combine(day, clock, NEW_YORK)


def _session_instants(days: Iterable[date]) -> dict[date, tuple[datetime, datetime]]:
    days = sorted(set(days))
    if not days:
        return {}
    table = calendar.sessions(days[0], days[-1])
    return {d: (o, c) for d, o, c in table.select("session_date", "open", "close").iter_rows()}


def load_account(
    conn: psycopg.Connection, account_id: str, strategy: str, initial_cash: float
) -> paper.PaperAccount:
    """The account's state after its last processed session (created with `initial_cash`)."""
    conn.execute(
        "INSERT INTO trading.accounts (account_id, initial_cash) VALUES (%s, %s)"
        " ON CONFLICT (account_id) DO NOTHING",
        (account_id, initial_cash),
    )
    start = conn.execute(
        "SELECT initial_cash FROM trading.accounts WHERE account_id = %s", (account_id,)
    ).fetchone()
    assert start is not None
    last = conn.execute(
        "SELECT (ts AT TIME ZONE %s)::date, cash FROM trading.equity WHERE account_id = %s"
        " ORDER BY ts DESC LIMIT 1",
        (calendar.TIMEZONE, account_id),
    ).fetchone()
    account = paper.PaperAccount(
        account_id=account_id,
        strategy=strategy,
        cash=float(last[1]) if last else float(start[0]),
        last_session=last[0] if last else None,
    )
    for sym, qty, avg in conn.execute(
        "SELECT symbol, quantity, avg_price FROM trading.positions WHERE account_id = %s",
        (account_id,),
    ):
        account.positions[sym] = paper.Position(float(qty), float(avg))
    for sym, day, strat, side, qty in conn.execute(
        "SELECT symbol, session_date, strategy, side, quantity FROM trading.orders"
        " WHERE account_id = %s AND status = 'new' ORDER BY session_date, symbol",
        (account_id,),
    ):
        account.pending.append(paper.PaperOrder(sym, day, strat, side, float(qty)))
    return account


def save_run(conn: psycopg.Connection, account: paper.PaperAccount, run: paper.PaperRun) -> None:
    """Write the run's orders (upsert on the natural key), fills, positions and equity."""
    aid = account.account_id
    instants = _session_instants(
        [f.session_date for f in run.fills] + [p.session_date for p in run.equity]
    )
    ids: dict[tuple[str, date, str], int] = {}
    with conn.cursor() as cur:
        for key, order in run.orders.items():
            cur.execute(
                "INSERT INTO trading.orders (account_id, symbol, session_date, strategy, side,"
                " quantity, status) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (account_id, symbol, session_date, strategy)"
                " DO UPDATE SET status = EXCLUDED.status RETURNING order_id",
                (
                    aid,
                    order.symbol,
                    order.session_date,
                    order.strategy,
                    order.side,
                    order.quantity,
                    order.status,
                ),
            )
            found = cur.fetchone()
            assert found is not None
            ids[key] = int(found[0])
        cur.executemany(
            "INSERT INTO trading.fills (order_id, ts, price, quantity, commission)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (order_id) DO NOTHING",
            [
                (
                    ids[(f.symbol, f.signal_date, f.strategy)],
                    _instant(f.session_date, "open", instants),
                    f.price,
                    f.quantity,
                    f.commission,
                )
                for f in run.fills
            ],
        )
        cur.executemany(
            "INSERT INTO trading.positions (account_id, symbol, quantity, avg_price)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (account_id, symbol) DO UPDATE SET"
            " quantity = EXCLUDED.quantity, avg_price = EXCLUDED.avg_price, updated_at = now()",
            [
                (aid, sym, account.positions[sym].quantity, account.positions[sym].avg_price)
                for sym in sorted(run.touched)
            ],
        )
    equity = pl.DataFrame(
        [
            (aid, _instant(p.session_date, "close", instants), p.cash, p.positions_value, p.equity)
            for p in run.equity
        ],
        schema=tables.EQUITY.schema(),
        orient="row",
    )
    frames.copy_frame(conn, tables.EQUITY.name, equity)


# --- alerts ---------------------------------------------------------------------------------


_ALERT_COLS = sql.SQL(", ").join(map(sql.Identifier, ALERT_COLUMNS))


def insert_alerts(conn: psycopg.Connection, events: pl.DataFrame) -> list[str]:
    """Insert alert events, keeping existing ids untouched; returns the ids that were new.

    Run it inside a transaction (the staging table lives until the commit).
    """
    if events.is_empty():
        return []
    conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE alerts_in ON COMMIT DROP AS"
            " SELECT {cols} FROM analytics.alerts WITH NO DATA"
        ).format(cols=_ALERT_COLS)
    )
    frames.copy_frame(conn, "alerts_in", events.select(ALERT_COLUMNS))
    rows = conn.execute(
        sql.SQL(
            "INSERT INTO analytics.alerts ({cols}) SELECT {cols} FROM alerts_in"
            " ORDER BY session_date, alert_id ON CONFLICT (alert_id) DO NOTHING RETURNING alert_id"
        ).format(cols=_ALERT_COLS)
    ).fetchall()
    return [r[0] for r in rows]


def undelivered_alerts(
    conn: psycopg.Connection, new_ids: Sequence[str], retry_hours: float
) -> list[dict[str, Any]]:
    """This run's new alerts plus earlier undelivered ones created within `retry_hours`."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {cols} FROM analytics.alerts WHERE delivered_at IS NULL"
                " AND (alert_id = ANY(%s) OR created_at > now() - make_interval(secs => %s))"
                " ORDER BY session_date, symbol, rule, direction"
            ).format(cols=_ALERT_COLS),
            (list(new_ids), retry_hours * 3600),
        )
        return cur.fetchall()


def mark_delivered(conn: psycopg.Connection, ids: Sequence[str]) -> None:
    conn.execute(
        "UPDATE analytics.alerts SET delivered_at = now() WHERE alert_id = ANY(%s)", (list(ids),)
    )
