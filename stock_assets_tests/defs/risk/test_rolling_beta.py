"""analytics/rolling_beta materialized through Dagster on the standalone Spark cluster.

market.bars_daily is seeded with real daily closes (bokeh_sampledata, split-adjusted,
2011-2012, five symbols with FB listing mid-2012); the asset's rows are compared with numpy.
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import numpy as np
import polars as pl
import pytest
from bokeh_sampledata import stocks
from pyspark.sql import SparkSession

from stock_assets.definitions import RESOURCES
from stock_assets.defs.kernel import RANGE_END_TAG, RANGE_START_TAG, ROLLING_BETA
from stock_assets.defs.resources import WarehouseResource
from stock_assets.defs.risk import defs as risk_defs
from stock_assets.defs.risk.assets import rolling_beta
from stock_assets.defs.risk.resources import SparkClusterResource
from stock_assets.lib import db
from stock_assets.lib.settings import DbSettings
from stock_assets_tests.lib.trading.data import insert_daily_bars

SYMBOLS = ("AAPL", "FB", "GOOG", "IBM", "MSFT")
WINDOW_DAYS = 40
FIRST, LAST = date(2012, 1, 1), date(2012, 12, 31)


def seed_bars_daily(settings: DbSettings) -> pl.DataFrame:
    frames_ = []
    for symbol in SYMBOLS:
        raw = pl.DataFrame(getattr(stocks, symbol))
        factor = pl.col("adj_close") / pl.col("close")
        frames_.append(
            raw.select(
                symbol=pl.lit(symbol),
                session_date=pl.col("date").str.to_date(),
                open=pl.col("open") * factor,
                high=pl.col("high") * factor,
                low=pl.col("low") * factor,
                close=pl.col("adj_close"),
                volume=pl.col("volume").cast(pl.Float64),
                trade_count=pl.lit(1, dtype=pl.Int32),
            ).filter(pl.col("session_date").is_between(date(2011, 1, 1), LAST))
        )
    daily = pl.concat(frames_)
    with db.connect(settings) as conn, conn.transaction():
        conn.execute("DELETE FROM market.bars_daily")
        insert_daily_bars(conn, daily)
    return daily


def numpy_betas(daily: pl.DataFrame, window_days: int) -> dict[tuple[str, date], tuple[float, ...]]:
    """(symbol, date) → (beta, correlation, volatility, market_return), computed with numpy."""
    returns = (
        daily.sort("symbol", "session_date")
        .with_columns(ret=pl.col("close") / pl.col("close").shift(1).over("symbol") - 1)
        .drop_nulls("ret")
    )
    market = returns.group_by("session_date").agg(m=pl.col("ret").mean())
    joined = returns.join(market, on="session_date").sort("symbol", "session_date")
    out: dict[tuple[str, date], tuple[float, ...]] = {}
    for (symbol,), group in joined.group_by(["symbol"]):
        r, m = group["ret"].to_numpy(), group["m"].to_numpy()
        days = group["session_date"].to_list()
        for i in range(window_days - 1, len(days)):
            rw, mw = r[i - window_days + 1 : i + 1], m[i - window_days + 1 : i + 1]
            cov = np.cov(rw, mw, ddof=1)
            out[(str(symbol), days[i])] = (
                cov[0, 1] / cov[1, 1],
                np.corrcoef(rw, mw)[0, 1],
                rw.std(ddof=1) * np.sqrt(252),
                m[i],
            )
    return out


@pytest.fixture(scope="module")
def no_local_session() -> None:
    """The cluster resource refuses to share a process with another master's session."""
    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()


def materialize(settings: DbSettings, first: date, last: date) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [rolling_beta],
        resources={
            "pyspark": SparkClusterResource(app_name="stock-tests-risk"),
            "warehouse": WarehouseResource(dbname=settings.dbname),
        },
        run_config={"ops": {"analytics__rolling_beta": {"config": {"window_days": WINDOW_DAYS}}}},
        tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()},
    )


def table(settings: DbSettings) -> dict[tuple[str, date], tuple[float, ...]]:
    with db.connect(settings) as conn:
        rows = conn.execute(
            "SELECT symbol, session_date, beta, correlation, volatility, market_return, n_obs"
            " FROM analytics.rolling_beta WHERE window_days = %s",
            (WINDOW_DAYS,),
        ).fetchall()
    assert all(row[6] == WINDOW_DAYS for row in rows)
    return {(row[0], row[1]): tuple(row[2:6]) for row in rows}


def test_rolling_beta_on_the_cluster(
    module_db: DbSettings, spark_cluster: str, no_local_session: None
) -> None:
    daily = seed_bars_daily(module_db)
    expected = {k: v for k, v in numpy_betas(daily, WINDOW_DAYS).items() if FIRST <= k[1] <= LAST}
    result = materialize(module_db, FIRST, LAST)
    assert result.success
    # a single-run backfill reports one materialization per partition, with the run's metadata
    mats = result.asset_materializations_for_node("analytics__rolling_beta")
    assert len(mats) == (LAST - FIRST).days + 1
    meta = {k: v.value for k, v in mats[0].metadata.items()}
    assert meta["dagster/row_count"] == len(expected)
    assert meta["spark_master"] == spark_cluster
    assert meta["symbols"] == list(SYMBOLS)
    got = table(module_db)
    assert got.keys() == expected.keys()
    for key, values in expected.items():
        np.testing.assert_allclose(got[key], values, rtol=1e-9, err_msg=str(key))
    fb_first = min(d for s, d in expected if s == "FB")
    assert fb_first > date(2012, 7, 1)  # listed 2012-05-18: a full window only weeks later

    # a re-run of part of the window rewrites those rows and leaves the others alone
    with db.connect(module_db) as conn, conn.transaction():
        conn.execute("UPDATE analytics.rolling_beta SET beta = -99")
    again = materialize(module_db, date(2012, 6, 1), LAST)
    assert again.success
    after = table(module_db)
    assert after.keys() == expected.keys()
    assert all((after[k][0] == -99) == (k[1] < date(2012, 6, 1)) for k in after)


def test_risk_definitions_load() -> None:
    merged = dg.Definitions.merge(risk_defs, dg.Definitions(resources=RESOURCES))
    merged.get_repository_def()  # resolves: every required resource is bound
    specs = {
        key
        for key in merged.resolve_all_asset_keys()
        if merged.resolve_assets_def(key).is_materializable
    }
    assert specs == {ROLLING_BETA}
    assert isinstance(RESOURCES["pyspark"], SparkClusterResource)
