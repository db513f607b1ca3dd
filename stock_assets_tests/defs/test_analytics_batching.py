"""Stored indicators and signals do not depend on how runs were batched (issue 14.3).

Real daily bars (bokeh_sampledata, 5 symbols, 2000-03-01..2013-03-01) are loaded into a private
warehouse; the indicators and signals assets are then materialized three ways, each starting
from empty analytics tables: every sample day alone, the sample days inside ranged runs, and one
full backfill. Every column of every stored row of the sample days must be identical (not
approximately: each value is computed from the symbol's whole history up to its day).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
import talib

from stock_assets.defs.analytics.assets import indicators_asset, signals_asset
from stock_assets.defs.resources import WarehouseResource
from stock_assets.defs.trading.resources import TradingConfigResource
from stock_assets.lib import db, signals
from stock_assets.lib.settings import DbSettings
from stock_assets.lib.trading.config import TradingSettings
from stock_assets_tests.conftest import private_database
from stock_assets_tests.lib.trading.data import insert_daily_bars, real_daily_bars

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
CONFIG = {
    "symbols": {
        "AAPL": {},
        "GOOG": {"strategies": {"rsi_mean_reversion": {"period": 9, "oversold": 25}}},
        "IBM": {},
        "MSFT": {"strategies": {"sma_crossover": {"fast": 10, "slow": 30}, "macd_cross": {}}},
    }
}
FIXED_DAYS = (
    date(2000, 3, 1),  # the first bar: OBV = its volume, everything else in warm-up
    date(2000, 4, 28),
    date(2005, 2, 28),  # AAPL's split day
    date(2008, 10, 10),
    date(2012, 2, 2),  # the AAPL OBV day
    date(2013, 3, 1),  # the last bar
)
RANGES = (
    ("2000-03-01", "2000-06-30"),
    ("2004-11-01", "2005-03-31"),
    ("2008-09-01", "2008-12-31"),
    ("2011-10-03", "2013-03-01"),
)
FULL = ("2000-03-01", "2013-03-01")


@pytest.fixture(scope="module")
def warehouse() -> Iterator[DbSettings]:
    with private_database(DbSettings.load()) as settings:
        with db.connect(settings) as conn, conn.transaction():
            insert_daily_bars(conn, real_daily_bars(), trade_count=1)
        yield settings


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("batching") / "trading.json"
    path.write_text(json.dumps(CONFIG))
    return path


def sample_days(config_path: Path) -> list[date]:
    """The fixed days plus days where configured signals fire (inside the ranges)."""
    book = TradingSettings.from_file(config_path).book()
    fired = signals.generate_signals(real_daily_bars(), book)
    in_ranges = pl.any_horizontal(
        pl.col("session_date").is_between(date.fromisoformat(a), date.fromisoformat(b))
        for a, b in RANGES
    )
    days = set(FIXED_DAYS)
    for part in fired.filter(in_ranges).partition_by("strategy", "params"):
        days.update(part["session_date"].head(2).to_list())
    return sorted(days)


def clear(settings: DbSettings) -> None:
    with db.connect(settings) as conn, conn.transaction():
        conn.execute("DELETE FROM analytics.indicators")
        conn.execute("DELETE FROM analytics.signals")


def snapshot(settings: DbSettings, days: list[date]) -> dict[str, pl.DataFrame]:
    out = {}
    with db.connect(settings) as conn:
        for table, key in (
            ("analytics.indicators", "symbol, session_date"),
            ("analytics.signals", "symbol, session_date, strategy, params"),
        ):
            cur = conn.execute(
                f"SELECT * FROM {table} WHERE session_date = ANY(%s) ORDER BY {key}".encode(),
                (days,),
            )
            names = [c.name for c in cur.description or []]
            out[table] = pl.DataFrame(cur.fetchall(), schema=names, orient="row")
    return out


def materialize(resources: dict[str, object], **kwargs: object) -> None:
    result = dg.materialize([indicators_asset, signals_asset], resources=resources, **kwargs)
    assert result.success


@pytest.fixture(scope="module")
def three_ways(warehouse: DbSettings, config_path: Path) -> dict[str, dict[str, pl.DataFrame]]:
    resources = {
        "warehouse": WarehouseResource(dbname=warehouse.dbname),
        "trading_config": TradingConfigResource(path=str(config_path)),
    }
    days = sample_days(config_path)
    ways = {}
    clear(warehouse)
    for day in days:
        materialize(resources, partition_key=day.isoformat())
    ways["alone"] = snapshot(warehouse, days)
    clear(warehouse)
    for first, last in RANGES:
        materialize(resources, tags={RANGE_START: first, RANGE_END: last})
    ways["ranges"] = snapshot(warehouse, days)
    clear(warehouse)
    materialize(resources, tags={RANGE_START: FULL[0], RANGE_END: FULL[1]})
    ways["full"] = snapshot(warehouse, days)
    return ways


def test_every_stored_column_is_the_same_three_ways(
    three_ways: dict[str, dict[str, pl.DataFrame]],
) -> None:
    full = three_ways["full"]
    indicators = full["analytics.indicators"]
    assert indicators.height >= 4 * 15  # 4 symbols (GOOG from 2004) x the sample days
    assert full["analytics.signals"]["params"].n_unique() >= 5  # defaults and custom sets
    for way in ("alone", "ranges"):
        for table, frame in three_ways[way].items():
            assert frame.equals(full[table]), f"{table}: {way} differs from the full backfill"


def test_obv_is_anchored_at_the_first_bar(
    three_ways: dict[str, dict[str, pl.DataFrame]],
) -> None:
    aapl = real_daily_bars().filter(pl.col("symbol") == "AAPL")
    obv = talib.OBV(aapl["close"].to_numpy(), aapl["volume"].to_numpy())
    expected = dict(zip(aapl["session_date"].to_list(), obv.tolist(), strict=True))
    stored = three_ways["alone"]["analytics.indicators"].filter(pl.col("symbol") == "AAPL")
    for day, value in stored.select("session_date", "obv").iter_rows():
        assert value == expected[day], day
    first = stored.filter(pl.col("session_date") == date(2000, 3, 1))
    assert first["obv"].item() == aapl["volume"][0]
    assert np.isfinite(stored.filter(pl.col("session_date") == date(2012, 2, 2))["obv"].item())
