"""Forecast domain: walk-forward evaluation + registered models, and daily live forecasts.

`forecast/evaluation` (unpartitioned, weekly): point-in-time features from market.bars_daily and
analytics.indicators, walk-forward out-of-sample forecasts of the LightGBM model and its baselines
per horizon, metrics (table forecast.evaluation + metadata), and a model per horizon trained on the
whole labelled history, recorded and registered in MLflow. `forecast/predictions` (daily
partitions, after new bars/indicators): each session's forecasts from the newest registered
version whose training data ended at or before that session.
"""

from datetime import date, timedelta
from typing import Any

import dagster as dg
import polars as pl

from stock_assets.defs.forecast.resources import ForecastConfigResource, MlflowResource
from stock_assets.defs.kernel import (
    BARS_DAILY,
    EVALUATION,
    INDICATORS,
    PREDICTIONS,
    session_asset,
    window,
)
from stock_assets.defs.resources import WarehouseResource
from stock_assets.lib import frames
from stock_assets.lib.forecast import evaluate, models, registry, store
from stock_assets.lib.forecast.features import FEATURE_COLUMNS, build_features, target_column

BEATS_RANDOM_WALK = "beats_random_walk"
INTERVAL_CHECK = "interval_contains_forecast"
# features need 50 sessions of history (SMA 50) plus the indicators' own warm-up
FEATURE_LOOKBACK = timedelta(days=450)


def _markdown(df: pl.DataFrame) -> str:
    if df.is_empty():
        return "_none_"
    header = "| " + " | ".join(df.columns) + " |\n|" + "---|" * df.width + "\n"
    body = "".join(
        "| "
        + " | ".join(
            f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v)) for v in row
        )
        + " |\n"
        for row in df.iter_rows()
    )
    return header + body


@dg.asset(
    key=EVALUATION,
    deps=[BARS_DAILY, INDICATORS],
    group_name="forecast",
    kinds={"lightgbm", "mlflow", "timescaledb"},
    check_specs=[dg.AssetCheckSpec(BEATS_RANDOM_WALK, asset=EVALUATION)],
)
def evaluation(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
    forecast_config: ForecastConfigResource,
) -> dg.MaterializeResult:
    """Walk-forward out-of-sample evaluation vs baselines; registers a model per horizon."""
    cfg = forecast_config.walk_forward()
    settings = mlflow.settings()
    with warehouse.connection() as conn:
        bars, ind = store.read_inputs(conn)
    features = build_features(bars, ind, cfg.horizons)
    tables, wide, versions = [], [], {}
    for h in cfg.horizons:
        preds = evaluate.walk_forward_predictions(features, h, cfg)
        if preds.is_empty():
            context.log.warning(f"horizon {h}: too little history for one walk-forward fold")
            continue
        table = evaluate.metrics(preds, bars)
        tables.append(table)
        wide.append(preds)
        versions[h] = _register(settings, features, h, cfg, table).label
    if not tables:
        raise dg.Failure("no horizon has enough history for a walk-forward evaluation")
    table = pl.concat(tables)
    with warehouse.connection() as conn, conn.transaction():
        frames.lock_table(conn, "forecast.predictions")
        written = sum(
            store.replace_walk_forward(conn, store.long_predictions(p, "walk_forward", {}))
            for p in wide
        )
        store.replace_evaluation(conn, table, versions)
    pooled = table.filter(pl.col("symbol") == evaluate.ALL_SYMBOLS)
    verdict = evaluate.beats_random_walk(table)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "horizons": list(versions),
            "registered_versions": {str(h): v for h, v in versions.items()},
            "out_of_sample": dg.MetadataValue.md(
                _markdown(
                    pooled.select(
                        "horizon", "model", "n", "rmse_vs_random_walk", "hit_rate", "p_value"
                    )
                )
            ),
            "per_symbol_lgbm": dg.MetadataValue.md(
                _markdown(
                    table.filter(
                        (pl.col("model") == models.MODEL)
                        & (pl.col("symbol") != evaluate.ALL_SYMBOLS)
                    ).select(
                        "symbol",
                        "horizon",
                        "hit_rate",
                        "p_value",
                        "strategy_return",
                        "buy_hold_return",
                    )
                )
            ),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=BEATS_RANDOM_WALK,
                passed=bool(verdict["beats"].all()),
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    f"h{h}_rmse_vs_random_walk": float(r)
                    for h, r in verdict.select("horizon", "rmse_vs_random_walk").iter_rows()
                },
                description="out-of-sample RMSE of the model below the random walk's, per horizon",
            )
        ],
    )


def _register(
    settings: Any,
    features: pl.DataFrame,
    horizon: int,
    cfg: evaluate.WalkForwardConfig,
    table: pl.DataFrame,
) -> registry.RegisteredModel:
    """Fit on every labelled row and register it (tags: training window, data version)."""
    labeled = features.with_columns(
        pl.col("session_date").shift(-horizon).over("symbol").alias("target_date")
    ).filter(pl.col(target_column(horizon)).is_not_null())
    fitted = models.fit(labeled, FEATURE_COLUMNS, target_column(horizon), cfg.spec)
    pooled = table.filter(
        (pl.col("symbol") == evaluate.ALL_SYMBOLS) & (pl.col("model") == models.MODEL)
    ).row(0, named=True)
    metrics = {
        k: float(pooled[k])
        for k in ("mae", "rmse", "rmse_vs_random_walk", "hit_rate", "p_value", "coverage")
        if pooled[k] is not None
    }
    data_end: date = labeled["target_date"].max()  # type: ignore[assignment]
    return registry.log_model(
        settings,
        fitted,
        model=models.MODEL,
        horizon=horizon,
        params={**cfg.params(), "features": ",".join(FEATURE_COLUMNS)},
        metrics=metrics,
        tags={
            "train_first_date": str(labeled["session_date"].min()),
            "train_last_date": str(labeled["session_date"].max()),
            "data_version": registry.data_version(labeled.drop("target_date")),
            "symbols": ",".join(sorted(labeled["symbol"].unique().to_list())),
        },
        data_end_date=data_end,
    )


@session_asset(
    key=PREDICTIONS,
    deps=[BARS_DAILY, INDICATORS, EVALUATION],
    group_name="forecast",
    kinds={"lightgbm", "mlflow", "timescaledb"},
    check_specs=[dg.AssetCheckSpec(INTERVAL_CHECK, asset=PREDICTIONS)],
)
def predictions(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
    forecast_config: ForecastConfigResource,
) -> dg.MaterializeResult:
    """Live forecasts of each session in the window from the registered model valid at it."""
    w = window(context)
    cfg = forecast_config.walk_forward()
    settings = mlflow.settings()
    with warehouse.connection() as conn:
        bars, ind = store.read_inputs(conn, w.first_date - FEATURE_LOOKBACK, w.last_date)
    features = build_features(bars, ind, cfg.horizons).filter(
        pl.col("session_date").is_between(w.first_date, w.last_date)
    )
    out, used, unserved = [], set(), []
    for h in cfg.horizons:
        candidates = registry.versions(settings, models.MODEL, h)
        loaded: dict[str, models.FittedModel] = {}
        for (day,), rows in features.group_by("session_date", maintain_order=True):
            version = registry.serving_version(candidates, day)
            if version is None:
                unserved.append(f"{day} h{h}")
                continue
            if version.label not in loaded:
                loaded[version.label] = registry.load(settings, version)
            used.add(version.label)
            pred, lower, upper = loaded[version.label].predict(rows)
            target = store.next_sessions(day, h)
            out.append(
                rows.select(
                    "symbol",
                    "session_date",
                    pl.lit(target).alias("target_date"),
                    pl.lit(h, dtype=pl.Int32).alias("horizon"),
                    pl.Series(models.MODEL, pred),
                    pl.Series(f"{models.MODEL}_lower", lower),
                    pl.Series(f"{models.MODEL}_upper", upper),
                ).with_columns(pl.lit(version.label).alias("version"))
            )
    rows_out = (
        pl.concat(
            [
                store.long_predictions(p.drop("version"), "live", {models.MODEL: p["version"][0]})
                for p in out
            ]
        )
        if out
        else pl.DataFrame(schema={c: pl.Null for c in store.PREDICTION_COLUMNS})
    )
    with warehouse.connection() as conn, conn.transaction():
        frames.lock_table(conn, "forecast.predictions")
        written = store.replace_live(conn, rows_out, w.first_date, w.last_date) if out else 0
    if unserved:
        context.log.warning(
            f"no registered model predates {len(unserved)} session/horizon(s), e.g. {unserved[0]}"
        )
    bad = (
        rows_out.filter(
            (pl.col("lower_return") > pl.col("pred_return"))
            | (pl.col("upper_return") < pl.col("pred_return"))
        ).height
        if out
        else 0
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "window": w.label(),
            "model_versions": sorted(used),
            "unserved": len(unserved),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=INTERVAL_CHECK, passed=bad == 0, metadata={"violations": bad}
            )
        ],
    )
