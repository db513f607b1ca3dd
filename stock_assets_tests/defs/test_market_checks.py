"""The market checks pass on a consistent day and fail on each kind of bad data they are for.

Raw ticks of one AAPL session are written to a private warehouse, bars_1m and bars_daily are
materialized with their checks (all pass), then the data is damaged one way at a time and only
the checks are run again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl
import pytest

from stock_assets.defs.kernel import session_partitions
from stock_assets.defs.market.assets import bars_1m, bars_daily
from stock_assets.defs.market.checks import (
    bars_1m_reconcile_raw_ticks,
    bars_daily_consistent,
    market_checks,
)
from stock_assets.defs.resources import WarehouseResource
from stock_assets.lib import cleaning, db, frames
from stock_assets.lib.settings import DbSettings
from stock_assets_tests.conftest import private_database

DAY = "2026-07-29"  # a Wednesday session
OPEN = datetime(2026, 7, 29, 13, 30, tzinfo=UTC)  # 09:30 New York
CHECKED = (bars_1m_reconcile_raw_ticks, bars_daily_consistent)
RECONCILE, DAILY = "bars_1m_reconcile_raw_ticks", "bars_daily_consistent"
FIRST_MINUTE = "ts = (SELECT min(ts) FROM market.bars_1m)"
LAST_MINUTE = "ts = (SELECT max(ts) FROM market.bars_1m)"


def ticks() -> pl.DataFrame:
    """60 prints over the first 20 minutes (3 a minute), then one duplicate delivery."""
    rows = [
        (OPEN + timedelta(seconds=20 * i), "AAPL", 200 + (i % 7) * 0.1, 100.0 + i, "t", i, 0, i)
        for i in range(60)
    ]
    rows.append((rows[5][0], "AAPL", rows[5][2], rows[5][3], "t", 5, 0, 60))  # redelivered
    return pl.DataFrame(rows, schema=list(cleaning.TICK_SCHEMA), orient="row").cast(
        cleaning.TICK_SCHEMA  # type: ignore[arg-type]
    )


@pytest.fixture
def warehouse() -> Iterator[DbSettings]:
    with private_database(DbSettings.load()) as settings:
        with db.connect(settings) as conn, conn.transaction():
            frames.copy_frame(conn, "market.raw_ticks", ticks())
        yield settings


@dg.asset(partitions_def=session_partitions)
def anchor() -> None:
    """Nothing: it gives a checks-only run its partitions (Dagster finds none in checks alone)."""


def run_checks(resources: dict[str, object], only_checks: bool) -> dict[str, bool]:
    """Materialize the day (or run just the two checks) and return each check's verdict."""
    result = dg.materialize(
        [bars_1m, bars_daily, *market_checks, anchor],
        resources=resources,
        partition_key=DAY,
        selection=(
            dg.AssetSelection.checks(*CHECKED) | dg.AssetSelection.assets(anchor)
            if only_checks
            else dg.AssetSelection.assets(bars_1m, bars_daily)
        ),
        raise_on_error=False,
    )
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


@pytest.fixture
def resources(warehouse: DbSettings) -> dict[str, object]:
    res: dict[str, object] = {"warehouse": WarehouseResource(dbname=warehouse.dbname)}
    passed = run_checks(res, only_checks=False)
    assert passed[RECONCILE] and passed[DAILY]
    return res


def execute(settings: DbSettings, statement: str) -> int:
    with db.connect(settings) as conn, conn.transaction():
        return conn.execute(statement.encode()).rowcount


def test_consistent_data_passes(resources: dict[str, object], warehouse: DbSettings) -> None:
    assert run_checks(resources, only_checks=True) == {RECONCILE: True, DAILY: True}
    with db.connect(warehouse) as conn:
        (trades,) = conn.execute("SELECT sum(trade_count) FROM market.bars_1m").fetchone() or (0,)
    assert trades == 60  # the redelivered print was counted once


@pytest.mark.parametrize(
    ("damage", "failing"),
    [
        # ticks removed after the bars were built: the bars are stale
        (["DELETE FROM market.raw_ticks WHERE seq >= 30"], {RECONCILE}),
        # a minute counted twice (the day built from it, so only the reconciliation sees it)
        (
            [
                "UPDATE market.bars_daily SET trade_count = trade_count"
                f" + (SELECT trade_count FROM market.bars_1m WHERE {FIRST_MINUTE})",
                f"UPDATE market.bars_1m SET trade_count = trade_count * 2 WHERE {FIRST_MINUTE}",
            ],
            {RECONCILE},
        ),
        # more volume than was traded, trade counts intact (the day agrees with its minutes)
        (
            [
                f"UPDATE market.bars_1m SET volume = volume + 1 WHERE {LAST_MINUTE}",
                "UPDATE market.bars_daily SET volume = volume + 1",
            ],
            {RECONCILE},
        ),
        # the daily bar no longer matches its minutes (a minute rebuilt, the day not)
        ([f"UPDATE market.bars_1m SET high = high + 5 WHERE {FIRST_MINUTE}"], {DAILY}),
        ([f"DELETE FROM market.bars_1m WHERE {LAST_MINUTE}"], {DAILY}),
        (["UPDATE market.bars_daily SET open = open - 0.01"], {DAILY}),
        (["DELETE FROM market.bars_daily"], {DAILY}),
    ],
    ids=[
        "ticks-removed",
        "minute-counted-twice",
        "volume-inflated",
        "minute-high-changed",
        "minute-lost",
        "daily-open-changed",
        "daily-missing",
    ],
)
def test_each_kind_of_bad_data_fails_its_check(
    resources: dict[str, object], warehouse: DbSettings, damage: list[str], failing: set[str]
) -> None:
    for statement in damage:
        assert execute(warehouse, statement) > 0
    passed = run_checks(resources, only_checks=True)
    assert {name for name, ok in passed.items() if not ok} == failing
    assert set(passed) == {RECONCILE, DAILY}
