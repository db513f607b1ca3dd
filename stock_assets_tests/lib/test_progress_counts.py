from datetime import UTC, date, datetime

import psycopg

from stock_assets.lib import progress as stage_progress
from stock_assets.lib.calendar import TIMEZONE

LAST = {"AAPL": date(2026, 8, 6), "MSFT": date(2013, 3, 1)}


def add_symbol(conn: psycopg.Connection, symbol: str, day: date, backtest_to: date) -> None:
    conn.execute(
        "INSERT INTO analytics.indicators (symbol, session_date, close) VALUES (%s, %s, 1)",
        (symbol, day),
    )
    conn.execute(
        "INSERT INTO analytics.signals (symbol, session_date, strategy, params, side, strength,"
        " price, reason) VALUES (%s, %s, 'sma_crossover', '{}', 'buy', 1, 1, 'test')",
        (symbol, day),
    )
    conn.execute(
        "INSERT INTO trading.backtests (strategy, symbol, params_hash, params, first_session,"
        " last_session, sessions, initial_cash, final_equity, total_return, cagr, sharpe, sortino,"
        " max_drawdown, max_drawdown_duration, win_rate, trades, exposure)"
        " VALUES ('sma_cross', %s, 'h', '{}', '2000-03-01', %s,"
        " 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)",
        (symbol, backtest_to),
    )


def test_history_done_needs_every_stage_of_every_symbol(conn: psycopg.Connection) -> None:
    with conn.transaction(force_rollback=True):
        assert not stage_progress.history_done(conn, LAST)
        add_symbol(conn, "AAPL", LAST["AAPL"], LAST["AAPL"])
        add_symbol(conn, "MSFT", LAST["MSFT"], date(2013, 2, 28))  # backtest one day short
        conn.execute("INSERT INTO trading.accounts (account_id, initial_cash) VALUES ('p', 1)")
        conn.execute(
            "INSERT INTO trading.equity (account_id, ts, cash, positions_value, equity)"
            " VALUES ('p', now(), 1, 0, 1)"
        )
        assert not stage_progress.history_done(conn, LAST)
        conn.execute("UPDATE trading.backtests SET last_session = %s", (LAST["AAPL"],))
        assert stage_progress.history_done(conn, LAST)
        progress = stage_progress.read_counts(conn, TIMEZONE)
        assert progress["signals"].rows == 2
        # a session date counts as reached at its close in New York (20:00 UTC in summer)
        assert progress["indicators"].event_time == datetime(2026, 8, 6, 20, 0, tzinfo=UTC)
        assert progress["raw_ticks"].event_time is None
