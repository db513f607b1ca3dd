"""Forecast assets end to end on the real services: warehouse (TimescaleDB) + MLflow server,
over real bokeh_sampledata bars, with small model settings."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
import polars as pl
import pytest

from stock_assets.defs.forecast.assets import (
    BEATS_RANDOM_WALK,
    evaluation,
    predictions,
)
from stock_assets.defs.forecast.resources import ForecastConfigResource, MlflowResource
from stock_assets.defs.resources import WarehouseResource
from stock_assets.lib import db, frames, indicators
from stock_assets.lib.forecast import registry
from stock_assets.lib.settings import DbSettings
from stock_assets_tests.lib.trading.data import insert_daily_bars, real_daily_bars

SYMBOLS = ["AAPL", "MSFT"]
FIRST_END = date(2007, 12, 31)
SECOND_END = date(2008, 1, 31)
MODELS = {"lgbm", "random_walk", "hist_mean", "ar1", "ets"}


@pytest.fixture(scope="module")
def daily() -> pl.DataFrame:
    return real_daily_bars().filter(
        pl.col("symbol").is_in(SYMBOLS)
        & pl.col("session_date").is_between(date(2004, 1, 1), SECOND_END)
    )


def load(settings: DbSettings, daily: pl.DataFrame, first: date, last: date) -> None:
    """bars_daily + analytics.indicators of sessions in [first, last] (indicators: all prior)."""
    history = daily.filter(pl.col("session_date") <= last)
    window = pl.col("session_date").is_between(first, last)
    with db.connect(settings) as conn, conn.transaction():
        insert_daily_bars(conn, history.filter(window))
        frames.copy_frame(
            conn, "analytics.indicators", indicators.compute_indicators(history).filter(window)
        )


@pytest.fixture(scope="module")
def resources(module_db: DbSettings, mlflow_server: str, daily: pl.DataFrame) -> dict[str, object]:
    load(module_db, daily, date(2004, 1, 1), FIRST_END)
    tag = uuid.uuid4().hex[:8]
    return {
        "warehouse": WarehouseResource(dbname=module_db.dbname),
        "mlflow": MlflowResource(
            tracking_uri=mlflow_server, experiment=f"test-{tag}", registered_model_prefix=f"t{tag}"
        ),
        "forecast_config": ForecastConfigResource(
            horizons=[1, 5], min_train=252, test_size=126, embargo=5, n_estimators=30
        ),
    }


def query(settings: DbSettings, sql: str, *params: object) -> list[tuple]:
    with db.connect(settings) as conn:
        return conn.execute(sql.encode(), params).fetchall()


def mlflow_settings(resources: dict[str, object]):
    resource = resources["mlflow"]
    assert isinstance(resource, MlflowResource)
    return resource.settings()


def test_evaluation_stores_metrics_and_registers_models(
    module_db: DbSettings, resources: dict[str, object]
) -> None:
    result = dg.materialize([evaluation], resources=resources)
    assert result.success
    meta = result.asset_materializations_for_node("forecast__evaluation")[0].metadata
    evals = result.get_asset_check_evaluations()
    assert [e.check_name for e in evals] == [BEATS_RANDOM_WALK]
    assert evals[0].severity == dg.AssetCheckSeverity.WARN
    # the check's verdict is the table's: RMSE ratio below 1 for every horizon
    ratios = dict(
        query(
            module_db,
            "SELECT horizon, rmse_vs_random_walk FROM forecast.evaluation"
            " WHERE symbol = '*' AND model = 'lgbm' ORDER BY horizon",
        )
    )
    assert set(ratios) == {1, 5}
    assert evals[0].passed == all(r < 1 for r in ratios.values())

    rows = query(module_db, "SELECT symbol, horizon, model FROM forecast.evaluation")
    assert {(s, h, m) for s, h, m in rows} == {
        (s, h, m) for s in [*SYMBOLS, "*"] for h in (1, 5) for m in MODELS
    }
    # every walk-forward forecast is issued before its target and after its fold's training data
    stored = query(
        module_db,
        "SELECT count(*), bool_and(target_at > issued_at), bool_and(target_date > session_date),"
        " min(session_date) FROM forecast.predictions WHERE kind = 'walk_forward'",
    )[0]
    row_count: Any = meta["dagster/row_count"].value
    assert stored[0] == row_count > 0 and stored[1] and stored[2]
    assert stored[3] > date(2005, 1, 1)  # 252 training sessions + purge/embargo first

    settings = mlflow_settings(resources)
    for h in (1, 5):
        [version] = registry.versions(settings, "lgbm", h)
        assert version.data_end_date == FIRST_END
        registered: Any = meta["registered_versions"].value
        assert registered[str(h)] == version.label
        run = _run(settings, version.run_id)
        assert run.data.tags["train_first_date"] >= "2004-01-01"
        assert len(run.data.tags["data_version"]) == 16
        assert run.data.params["n_estimators"] == "30" and run.data.params["embargo"] == "5"
        assert run.data.metrics["rmse_vs_random_walk"] == pytest.approx(ratios[h])
    stored_version = query(
        module_db,
        "SELECT DISTINCT model_version FROM forecast.evaluation"
        " WHERE model = 'lgbm' AND horizon = 1",
    )
    assert stored_version == [(registry.versions(settings, "lgbm", 1)[0].label,)]


def _run(settings, run_id: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.tracking_uri).get_run(run_id)


def test_predictions_use_only_a_version_trained_before_them(
    module_db: DbSettings, resources: dict[str, object], daily: pl.DataFrame
) -> None:
    load(module_db, daily, date(2008, 1, 1), SECOND_END)
    settings = mlflow_settings(resources)
    v1 = registry.versions(settings, "lgbm", 1)[0]

    result = dg.materialize([predictions], resources=resources, partition_key="2008-01-15")
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    rows = query(
        module_db,
        "SELECT symbol, horizon, model_version, target_date, issued_at, lower_return <= pred_return"
        " AND pred_return <= upper_return FROM forecast.predictions WHERE kind = 'live'"
        " ORDER BY horizon, symbol",
    )
    assert [(r[0], r[1]) for r in rows] == [(s, h) for h in (1, 5) for s in SYMBOLS]
    assert {r[2] for r in rows if r[1] == 1} == {v1.label}
    assert {r[3] for r in rows} == {date(2008, 1, 16), date(2008, 1, 23)}
    assert {r[4] for r in rows} == {datetime(2008, 1, 15, 21, 0, tzinfo=UTC)}
    assert all(r[5] for r in rows)

    # a session before the only version's training data ended gets no forecast at all
    early = dg.materialize([predictions], resources=resources, partition_key="2007-06-01")
    assert early.success
    meta = early.asset_materializations_for_node("forecast__predictions")[0].metadata
    assert (
        meta["dagster/row_count"].value == 0 and meta["unserved"].value == 2
    )  # one session x two horizons

    # a newer version (trained through January) is registered, yet 2008-01-15 stays on v1
    assert dg.materialize([evaluation], resources=resources).success
    v2 = registry.versions(settings, "lgbm", 1)[-1]
    assert v2.data_end_date == SECOND_END and v2.version != v1.version
    assert dg.materialize([predictions], resources=resources, partition_key="2008-01-15").success
    again = query(
        module_db,
        "SELECT DISTINCT model_version FROM forecast.predictions"
        " WHERE kind = 'live' AND horizon = 1 AND session_date = '2008-01-15'",
    )
    assert again == [(v1.label,)]
