"""Trading assets materialized against the real warehouse, over real bokeh_sampledata bars.

The upstream rows (market.bars_daily, analytics.signals) are written here from real prices with the
platform's own signal code for the configured (symbol, strategy, parameters); the paper portfolio
is fed in two deliveries to check that it advances incrementally and that re-runs add nothing,
and that it trades MSFT's custom SMA 10/30 from the stored rows.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from stock_assets.defs.kernel import ALERTS, BACKTESTS, PAPER_PORTFOLIO
from stock_assets.defs.resources import WarehouseResource
from stock_assets.defs.trading.assets import EQUITY_CHECK, alerts, backtests, paper_portfolio
from stock_assets.defs.trading.resources import TradingConfigResource
from stock_assets.lib import db, frames, signals
from stock_assets.lib.settings import DbSettings
from stock_assets.lib.trading import alerts as alerts_lib
from stock_assets.lib.trading.backtest import Bars, backtest_strategy
from stock_assets.lib.trading.config import BookEntry, TradingSettings
from stock_assets.lib.trading.paper import PaperAccount
from stock_assets_tests.lib.trading.data import insert_daily_bars, real_daily_bars
from stock_assets_tests.lib.trading.webhook import WebhookServer, webhook_server

SYMBOLS = ["AAPL", "IBM", "MSFT"]
FIRST_DELIVERY_END = date(2006, 12, 29)
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
CONFIG = {
    "initial_cash": 100_000,
    "commission": 0.0005,
    "symbols": {
        "AAPL": {"stop_loss": 0.08, "take_profit": 0.25},
        "IBM": {"strategies": {"macd_cross": {}, "rsi_mean_reversion": {}}},
        "MSFT": {
            "strategies": {"sma_crossover": {"fast": 10, "slow": 30}, "macd_cross": {}},
            "long_only": False,
        },
    },
    "paper_position_fraction": 0.3,
    "alert_rules": [
        {"name": "move8", "kind": "percent_move", "window": 1, "threshold_pct": 8},
        {"name": "aapl20", "kind": "level_cross", "symbols": ["AAPL"], "level": 20},
    ],
    "webhook_retries": 0,
}


@pytest.fixture(scope="module")
def daily() -> pl.DataFrame:
    return real_daily_bars().filter(pl.col("symbol").is_in(SYMBOLS))


def book() -> list[BookEntry]:
    """The book of CONFIG alone (not merged with the repository's config/trading.json)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trading.json"
        path.write_text(json.dumps(CONFIG))
        return TradingSettings.from_file(path).book()


def load_upstream(settings: DbSettings, daily: pl.DataFrame, first: date, last: date) -> None:
    """bars_daily and the configured signals for sessions in [first, last] (from all prior bars)."""
    history = daily.filter(pl.col("session_date") <= last)
    sigs = signals.generate_signals(history, book())
    window = pl.col("session_date").is_between(first, last)
    with db.connect(settings) as conn, conn.transaction():
        insert_daily_bars(conn, history.filter(window))
        frames.copy_frame(conn, "analytics.signals", sigs.filter(window))


_delivered: set[str] = set()


def second_delivery(settings: DbSettings, daily: pl.DataFrame) -> None:
    """The rest of the history, once per database (the paper test feeds it between runs)."""
    if settings.dbname not in _delivered:
        load_upstream(settings, daily, FIRST_DELIVERY_END + timedelta(days=1), date(2013, 12, 31))
        _delivered.add(settings.dbname)


@pytest.fixture(scope="module")
def server() -> Iterator[WebhookServer]:
    with webhook_server() as state:
        yield state


@pytest.fixture(scope="module")
def resources(
    module_db: DbSettings,
    daily: pl.DataFrame,
    server: WebhookServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, object]:
    path = tmp_path_factory.mktemp("trading") / "trading.json"
    path.write_text(json.dumps({**CONFIG, "webhook_url": f"{server.url}/hook/s3cr3t"}))
    load_upstream(module_db, daily, date(2000, 1, 1), FIRST_DELIVERY_END)
    return {
        "warehouse": WarehouseResource(dbname=module_db.dbname),
        "trading_config": TradingConfigResource(path=str(path)),
    }


def settings_of(resources: dict[str, object]) -> TradingSettings:
    config = resources["trading_config"]
    assert isinstance(config, TradingConfigResource)
    return config.settings()


def query(settings: DbSettings, sql: str, *params: object) -> list[tuple]:
    with db.connect(settings) as conn:
        return conn.execute(sql.encode(), params).fetchall()


def test_backtests_match_the_library_and_upsert(
    module_db: DbSettings, resources: dict[str, object], daily: pl.DataFrame
) -> None:
    result = dg.materialize([backtests], resources=resources)
    assert result.success
    book = settings_of(resources).book()
    meta = result.asset_materializations_for_node("trading__backtests")[0].metadata
    assert meta["dagster/row_count"].value == len(book) == 8
    rows = query(
        module_db, "SELECT backtest_id, strategy, symbol, params_hash FROM trading.backtests"
    )
    assert len(rows) == len(book)

    entry = next(e for e in book if (e.symbol, e.strategy) == ("AAPL", "sma_crossover"))
    history = daily.filter(
        (pl.col("symbol") == "AAPL") & (pl.col("session_date") <= FIRST_DELIVERY_END)
    )
    expected = backtest_strategy(
        Bars.from_frame(history), entry.strategy, entry.params, entry.config
    )
    (stored,) = query(
        module_db,
        "SELECT total_return, sharpe, max_drawdown, trades, sessions, params->'backtest'"
        " FROM trading.backtests WHERE symbol = 'AAPL' AND strategy = 'sma_crossover'",
    )
    m = expected.metrics
    assert stored[:5] == (m.total_return, m.sharpe, m.max_drawdown, m.trades, m.bars)
    assert stored[5]["stop_loss"] == 0.08
    trades = query(
        module_db,
        "SELECT t.exit_reason, t.pnl FROM trading.backtest_trades t JOIN trading.backtests b"
        " USING (backtest_id) WHERE b.symbol = 'AAPL' AND b.strategy = 'sma_crossover'"
        " ORDER BY trade_no",
    )
    assert [r[0] for r in trades] == expected.trades["exit_reason"].to_list()
    assert [r[1] for r in trades] == expected.trades["pnl"].to_list()

    assert dg.materialize([backtests], resources=resources).success  # re-run: same keys
    again = query(
        module_db, "SELECT backtest_id, strategy, symbol, params_hash FROM trading.backtests"
    )
    assert sorted(again) == sorted(rows)

    # MSFT's custom SMA 10/30: the backtest's params are the stored signal rows' params, and
    # every entry fills at the open after a stored 10/30 signal of the entry's direction
    (params,) = query(
        module_db,
        "SELECT params->'params' FROM trading.backtests"
        " WHERE symbol = 'MSFT' AND strategy = 'sma_crossover'",
    )[0]
    assert params == {"fast": 10, "slow": 30}
    sessions = sorted(
        r[0] for r in query(module_db, "SELECT DISTINCT session_date FROM market.bars_daily")
    )
    next_session = dict(itertools.pairwise(sessions))
    stored = query(
        module_db,
        "SELECT session_date, side FROM analytics.signals WHERE symbol = 'MSFT'"
        " AND strategy = 'sma_crossover' AND params = %s",
        '{"fast":10,"slow":30}',
    )
    assert stored
    fills = {(next_session.get(day), "long" if side == "buy" else "short") for day, side in stored}
    entries = query(
        module_db,
        "SELECT t.entry_date, t.direction FROM trading.backtest_trades t"
        " JOIN trading.backtests b USING (backtest_id)"
        " WHERE b.symbol = 'MSFT' AND b.strategy = 'sma_crossover'",
    )
    assert entries and set(entries) <= fills


def paper_state(settings: DbSettings) -> dict[str, object]:
    return {
        "orders": query(
            settings,
            "SELECT account_id, symbol, session_date, strategy, side, quantity, status"
            " FROM trading.orders ORDER BY 1, 2, 3",
        ),
        "fills": query(settings, "SELECT count(*), sum(quantity * price) FROM trading.fills"),
        "equity": query(
            settings, "SELECT account_id, ts, equity FROM trading.equity ORDER BY 1, 2"
        ),
    }


def test_paper_portfolio_advances_incrementally_and_reruns_add_nothing(
    module_db: DbSettings, resources: dict[str, object], daily: pl.DataFrame
) -> None:
    first = dg.materialize([paper_portfolio], resources=resources)
    assert first.success
    (check,) = first.get_asset_check_evaluations()
    assert check.check_name == EQUITY_CHECK and check.passed
    (n_first,) = query(module_db, "SELECT count(*) FROM trading.equity")[0]
    assert n_first > 4 * 1500

    second_delivery(module_db, daily)
    assert dg.materialize([paper_portfolio], resources=resources).success
    state = paper_state(module_db)
    assert dg.materialize([paper_portfolio], resources=resources).success  # nothing new
    assert paper_state(module_db) == state

    # the same result as one pass over everything with the pure account, fed the rows the
    # signals asset stores for the configured parameters (MSFT trades SMA 10/30, not 20/50)
    settings = settings_of(resources)
    sigs = signals.generate_signals(daily, settings.book())
    msft_sma = sigs.filter((pl.col("symbol") == "MSFT") & (pl.col("strategy") == "sma_crossover"))
    assert set(msft_sma["params"]) == {'{"fast":10,"slow":30}'}
    assert msft_sma["reason"][0].startswith("SMA10 crossed")
    for strategy in ("macd_cross", "sma_crossover"):
        entries = [e for e in settings.book() if e.strategy == strategy]
        account = PaperAccount(settings.paper_account_id(strategy), strategy, settings.initial_cash)
        run = account.apply(
            daily.filter(pl.col("symbol").is_in([e.symbol for e in entries])),
            sigs.filter(pl.col("strategy") == strategy),
            commission={e.symbol: e.config.commission for e in entries},
            fraction=settings.paper_position_fraction,
            long_only={e.symbol: e.config.long_only for e in entries},
        )
        stored = [r for r in state["equity"] if r[0] == account.account_id]  # type: ignore[union-attr]
        assert [r[2] for r in stored] == pytest.approx([p.equity for p in run.equity], rel=1e-9)
    # every MSFT sma_crossover order is a stored SMA 10/30 signal (and some were placed)
    msft_orders = {
        r[2]
        for r in state["orders"]  # type: ignore[union-attr]
        if r[1] == "MSFT" and r[3] == "sma_crossover"
    }
    assert msft_orders and msft_orders <= set(msft_sma["session_date"])

    bad = query(
        module_db,
        "SELECT count(*) FROM trading.equity WHERE abs(cash + positions_value - equity) > 1e-6",
    )
    assert bad == [(0,)]
    dupes = query(
        module_db,
        "SELECT count(*) FROM (SELECT 1 FROM trading.orders GROUP BY account_id, symbol,"
        " session_date, strategy HAVING count(*) > 1) d",
    )
    assert dupes == [(0,)]
    positions = query(
        module_db,
        "SELECT p.account_id, p.symbol, p.quantity, coalesce(sum(CASE o.side WHEN 'buy'"
        " THEN f.quantity ELSE -f.quantity END), 0) FROM trading.positions p"
        " LEFT JOIN trading.orders o USING (account_id, symbol)"
        " LEFT JOIN trading.fills f USING (order_id) GROUP BY 1, 2, 3",
    )
    assert positions and all(abs(q - from_fills) < 1e-6 for _, _, q, from_fills in positions)


def test_alerts_fire_once_per_event_and_reach_the_webhook(
    module_db: DbSettings,
    resources: dict[str, object],
    daily: pl.DataFrame,
    server: WebhookServer,
) -> None:
    def run(start: str, end: str) -> dg.ExecuteInProcessResult:
        result = dg.materialize(
            [alerts], resources=resources, tags={RANGE_START: start, RANGE_END: end}
        )
        assert result.success
        return result

    second_delivery(module_db, daily)
    first = run("2000-03-01", "2006-12-31")
    second = run("2006-06-01", "2013-03-01")  # overlaps the first
    run("2008-09-01", "2008-10-31")  # a refresh of a stormy window
    stored = query(module_db, "SELECT alert_id, delivered_at IS NOT NULL FROM analytics.alerts")
    expected = alerts_lib.evaluate(daily, settings_of(resources).alert_rules)
    assert sorted(r[0] for r in stored) == sorted(expected["alert_id"].to_list())
    assert all(delivered for _, delivered in stored)
    posted = [body["alert_id"] for _, body in server.received]
    assert sorted(posted) == sorted(r[0] for r in stored)  # each event posted exactly once
    assert {path for path, _ in server.received} == {"/hook/s3cr3t"}
    meta = second.asset_materializations_for_node("analytics__alerts")[0].metadata
    assert meta["already_stored"].value > 0
    assert "s3cr3t" not in json.dumps({k: str(v.value) for k, v in meta.items()})
    assert (
        first.asset_materializations_for_node("analytics__alerts")[0]
        .metadata["dagster/row_count"]
        .value
    )


def test_keys_and_groups() -> None:
    assert {a.key for a in (backtests, paper_portfolio, alerts)} == {
        BACKTESTS,
        PAPER_PORTFOLIO,
        ALERTS,
    }
    from stock_assets.definitions import defs

    keys = set(defs.resolve_all_asset_keys())
    assert {BACKTESTS, PAPER_PORTFOLIO, ALERTS} <= keys
    assert {"trading_config", "warehouse"} <= set(
        defs.get_repository_def().get_top_level_resources()
    )
