"""The `trading` job run incrementally gives exactly what one full recompute gives.

Two warehouses over the same real bars (bokeh_sampledata) and the platform's own signals:
- incremental: the history through 2006, then the rest, the job run after each delivery (and once
  more with nothing new), with the stream's race in the first delivery: daily bars of January
  2007 are in but their signals are not yet (a sessions run writes bars before signals);
- full: everything at once, one run.
Backtests, trades, paper orders, fills, positions and equity must be identical. The same
incremental feed without the signals bound (an instance that never materialized signals: no
bound) applies January 2007 before its signals exist and ends elsewhere: the bound matters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import dagster as dg
import polars as pl
import pytest

from stock_assets.defs.kernel import SIGNALS
from stock_assets.defs.resources import WarehouseResource
from stock_assets.defs.trading import defs as trading_defs
from stock_assets.defs.trading.resources import TradingConfigResource
from stock_assets.defs.trading.sensors import TRADING_JOB
from stock_assets.lib import db, frames, signals
from stock_assets.lib.settings import DbSettings
from stock_assets_tests.conftest import private_database
from stock_assets_tests.defs.trading.test_trading_assets import CONFIG, SYMBOLS, book
from stock_assets_tests.lib.trading.data import insert_daily_bars, real_daily_bars

FIRST_END = date(2006, 12, 29)  # signals through here in the first delivery
BARS_AHEAD_END = date(2007, 1, 31)  # bars through here in the first delivery
LAST = date(2013, 3, 1)

STATE = {
    "backtests": "SELECT to_jsonb(b) - 'backtest_id' - 'run_at' FROM trading.backtests b"
    " ORDER BY strategy, symbol, params_hash",
    "trades": "SELECT b.strategy, b.symbol, to_jsonb(t) - 'backtest_id'"
    " FROM trading.backtest_trades t JOIN trading.backtests b USING (backtest_id)"
    " ORDER BY 1, 2, t.trade_no",
    "orders": "SELECT account_id, symbol, session_date, strategy, side, quantity, status"
    " FROM trading.orders ORDER BY 1, 2, 3, 4",
    "fills": "SELECT o.account_id, o.symbol, o.session_date, f.ts, f.price, f.quantity,"
    " f.commission FROM trading.fills f JOIN trading.orders o USING (order_id) ORDER BY 1, 2, 3",
    "positions": "SELECT account_id, symbol, quantity, avg_price FROM trading.positions"
    " ORDER BY 1, 2",
    "equity": "SELECT account_id, ts, cash, positions_value, equity FROM trading.equity"
    " ORDER BY 1, 2",
}


@pytest.fixture(scope="module")
def daily() -> pl.DataFrame:
    return real_daily_bars().filter(pl.col("symbol").is_in(SYMBOLS))


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("trading_job") / "trading.json"
    path.write_text(json.dumps(CONFIG))
    return str(path)


@pytest.fixture
def warehouse(base_db_settings: DbSettings) -> Iterator[DbSettings]:
    with private_database(base_db_settings) as settings:
        yield settings


def deliver(
    settings: DbSettings,
    daily: pl.DataFrame,
    bars: tuple[date, date] | None,
    sigs: tuple[date, date],
) -> None:
    """Daily bars of the days in `bars` and the signals of the days in `sigs` (computed, as the
    signals asset does, from every bar up to their day)."""
    history = daily.filter(pl.col("session_date") <= sigs[1])
    computed = signals.generate_signals(history, book())
    with db.connect(settings) as conn, conn.transaction():
        if bars is not None:
            insert_daily_bars(conn, daily.filter(pl.col("session_date").is_between(*bars)))
        frames.copy_frame(
            conn, "analytics.signals", computed.filter(pl.col("session_date").is_between(*sigs))
        )


def run_job(settings: DbSettings, config: str, instance: dg.DagsterInstance) -> dict[str, Any]:
    job = dg.Definitions.merge(
        trading_defs,
        dg.Definitions(
            resources={
                "warehouse": WarehouseResource(dbname=settings.dbname),
                "trading_config": TradingConfigResource(path=config),
            }
        ),
    ).resolve_job_def(TRADING_JOB)
    result = job.execute_in_process(instance=instance)
    assert result.success
    return {
        k: v.value
        for k, v in result.asset_materializations_for_node("trading__paper_portfolio")[
            0
        ].metadata.items()
    }


def signals_done(instance: dg.DagsterInstance, day: date) -> None:
    """What a sessions run reports when its signals step is done (the bound's source)."""
    instance.report_runless_asset_event(dg.AssetMaterialization(SIGNALS, partition=day.isoformat()))


def state(settings: DbSettings) -> dict[str, list[tuple[Any, ...]]]:
    with db.connect(settings) as conn:
        return {name: conn.execute(query).fetchall() for name, query in STATE.items()}


def incremental(
    settings: DbSettings, daily: pl.DataFrame, config: str, *, bounded: bool
) -> dict[str, list[tuple[Any, ...]]]:
    instance = dg.DagsterInstance.ephemeral()
    start: date = daily["session_date"].min()  # type: ignore[assignment]
    deliver(settings, daily, (start, BARS_AHEAD_END), (start, FIRST_END))
    if bounded:
        signals_done(instance, FIRST_END)
    meta = run_job(settings, config, instance)
    assert meta["signals_through"] == (str(FIRST_END) if bounded else "unbounded")
    with db.connect(settings) as conn:
        (last,) = conn.execute(
            "SELECT max((ts AT TIME ZONE 'America/New_York')::date) FROM trading.equity"
        ).fetchone()  # type: ignore[misc]
    assert last == (FIRST_END if bounded else BARS_AHEAD_END)

    # the signals of January 2007 arrive, then the rest of the history
    deliver(settings, daily, None, (date(2007, 1, 1), BARS_AHEAD_END))
    deliver(settings, daily, (date(2007, 2, 1), LAST), (date(2007, 2, 1), LAST))
    if bounded:
        signals_done(instance, LAST)
    run_job(settings, config, instance)
    after = state(settings)
    run_job(settings, config, instance)  # nothing new: nothing changes
    assert state(settings) == after
    return after


def test_incremental_runs_equal_one_full_recompute(
    base_db_settings: DbSettings, daily: pl.DataFrame, config_path: str
) -> None:
    with private_database(base_db_settings) as full_db:
        instance = dg.DagsterInstance.ephemeral()
        start: date = daily["session_date"].min()  # type: ignore[assignment]
        deliver(full_db, daily, (start, LAST), (start, LAST))
        signals_done(instance, LAST)
        run_job(full_db, config_path, instance)
        full = state(full_db)
    assert all(full[name] for name in STATE), {k: len(v) for k, v in full.items()}

    with private_database(base_db_settings) as inc_db:
        assert incremental(inc_db, daily, config_path, bounded=True) == full

    # the control: without the bound, January 2007 is applied before its signals exist
    with private_database(base_db_settings) as race_db:
        raced = incremental(race_db, daily, config_path, bounded=False)
    assert raced["backtests"] == full["backtests"]  # backtests re-read the whole history
    assert raced["orders"] != full["orders"]
