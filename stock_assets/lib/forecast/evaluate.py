"""Walk-forward out-of-sample predictions of the model and its baselines, and their metrics.

Metrics per (symbol, horizon, model) over the rows every model predicted (the same rows for all):
MAE/RMSE of the log return, directional accuracy (share of rows where the predicted and realised
signs agree; rows with a zero prediction or a zero return do not count; none for the random walk,
which predicts no direction) with a one-sided binomial test against 50 %, the coverage of the
model's prediction interval, and a forecast-driven strategy through the project's backtester
(long when the forecast is positive, else flat — short too when the config allows it; same costs)
against buy-and-hold over the same sessions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from stock_assets.lib import tables
from stock_assets.lib.forecast import models, splits
from stock_assets.lib.forecast.features import FEATURE_COLUMNS, target_column
from stock_assets.lib.trading.backtest import BacktestConfig, Bars, run_backtest

ALL_SYMBOLS = "*"
BUY_AND_HOLD = "buy_and_hold"
# forecast.evaluation's columns but the registered model_version (set when the rows are stored)
METRIC_SCHEMA = tables.EVALUATION.schema(
    c for c in tables.EVALUATION.written if c != "model_version"
)


@dataclass(frozen=True)
class WalkForwardConfig:
    horizons: tuple[int, ...] = (1, 5)
    test_size: int = 63  # sessions per fold = the refit cadence (a quarter)
    min_train: int = 504  # two years before the first forecast
    embargo: int = 5
    window: Literal["expanding", "rolling"] = "expanding"
    max_train: int | None = None
    spec: models.ModelSpec = field(default_factory=models.ModelSpec)
    statsforecast_baselines: bool = True

    def params(self) -> dict[str, Any]:
        return {
            "test_size": self.test_size,
            "min_train": self.min_train,
            "embargo": self.embargo,
            "window": self.window,
            "max_train": self.max_train,
            **self.spec.params(),
        }


def _with_session_index(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    dates = df.select(pl.col("session_date").unique().sort())
    index = dates.with_row_index("session_index")
    return df.join(index, on="session_date"), dates.height


def walk_forward_predictions(
    features: pl.DataFrame, horizon: int, cfg: WalkForwardConfig
) -> pl.DataFrame:
    """Out-of-sample forecasts of `horizon`: one row per (symbol, issue session) of a test fold.

    Columns: symbol, session_date (issued at its close), target_date, horizon, fold, actual, lgbm,
    lgbm_lower, lgbm_upper and one column per baseline.
    """
    target = target_column(horizon)
    labeled = features.with_columns(
        pl.col("session_date").shift(-horizon).over("symbol").alias("target_date")
    ).filter(pl.col(target).is_not_null())
    labeled, n_sessions = _with_session_index(labeled)
    folds = splits.walk_forward(
        n_sessions,
        horizon=horizon,
        test_size=cfg.test_size,
        min_train=cfg.min_train,
        embargo=cfg.embargo,
        window=cfg.window,
        max_train=cfg.max_train,
    )
    out = []
    for fold in folds:
        train = labeled.filter(pl.col("session_index").is_in(fold.train.tolist()))
        test = labeled.filter(pl.col("session_index").is_in(fold.test.tolist()))
        if train.is_empty() or test.is_empty():
            continue
        fitted = models.fit(train, FEATURE_COLUMNS, target, cfg.spec)
        pred, lower, upper = fitted.predict(test)
        means = train.group_by("symbol").agg(pl.col(target).mean().alias(models.HIST_MEAN))
        out.append(
            test.select(
                "symbol",
                "session_date",
                "target_date",
                pl.lit(horizon, dtype=pl.Int32).alias("horizon"),
                pl.lit(fold.number, dtype=pl.Int32).alias("fold"),
                pl.col(target).alias("actual"),
                pl.Series(models.MODEL, pred),
                pl.Series(f"{models.MODEL}_lower", lower),
                pl.Series(f"{models.MODEL}_upper", upper),
                pl.lit(0.0).alias(models.RANDOM_WALK),
            )
            .join(means, on="symbol", how="left")
            .with_columns(pl.col(models.HIST_MEAN).fill_null(train[target].mean()))
        )
    if not out:
        return pl.DataFrame()
    preds = pl.concat(out).sort("symbol", "session_date")
    if cfg.statsforecast_baselines:
        preds = preds.join(
            _statsforecast(features, preds, horizon, cfg.test_size),
            on=["symbol", "session_date"],
            how="left",
        )
    return preds


def _statsforecast(
    features: pl.DataFrame, preds: pl.DataFrame, horizon: int, refit_every: int
) -> pl.DataFrame:
    frames = []
    for (symbol,), rows in features.sort("session_date").group_by("symbol", maintain_order=True):
        origins = preds.filter(pl.col("symbol") == symbol).height
        sf = models.statsforecast_baselines(
            rows.select("session_date", pl.col("ret_1").alias("ret")), horizon, origins, refit_every
        )
        frames.append(sf.with_columns(pl.lit(symbol).alias("symbol")))
    return pl.concat(frames).select("symbol", "session_date", models.AR1, models.ETS)


def model_columns(preds: pl.DataFrame) -> list[str]:
    return [c for c in (models.MODEL, *models.BASELINES) if c in preds.columns]


def _binomial_p(hits: int, n: int) -> float:
    from scipy.stats import binomtest

    return float(binomtest(hits, n, 0.5, alternative="greater").pvalue) if n else math.nan


def strategy_result(bars: pl.DataFrame, pred: np.ndarray, config: BacktestConfig) -> Any:
    """The backtest (lib.trading.backtest) of trading the sign of `pred` (one per bar of `bars`).

    The forecast issued at bar t's close is the target after t, executed at t+1's open.
    """
    target = np.where(pred > 0, 1, np.where(pred < 0, -1, 0)).astype(np.int8)
    return run_backtest(Bars.from_frame(bars), target, config)


def _strategy(
    bars: pl.DataFrame, pred: np.ndarray, config: BacktestConfig
) -> tuple[float, float, int]:
    """(total return, sharpe, trades) of trading the sign of `pred` over `bars` (same rows)."""
    m = strategy_result(bars, pred, config).metrics
    return m.total_return, m.sharpe, m.trades


def metrics(
    preds: pl.DataFrame, bars: pl.DataFrame, config: BacktestConfig | None = None
) -> pl.DataFrame:
    """METRIC_SCHEMA rows per (symbol, horizon, model) plus pooled rows with symbol '*'."""
    config = config or BacktestConfig(commission=0.0005)
    cols = model_columns(preds)
    common = preds.drop_nulls(subset=["actual", *cols])
    rows: list[dict[str, Any]] = []
    for (symbol, horizon), group in common.group_by("symbol", "horizon", maintain_order=True):
        group = group.sort("session_date")
        sym_bars = group.select("session_date").join(
            bars.filter(pl.col("symbol") == symbol), on="session_date", how="left"
        )
        bh = (
            _strategy(sym_bars, np.ones(group.height), config)
            if sym_bars["close"].null_count() == 0
            else None
        )
        rows.extend(
            _row(str(symbol), int(horizon), model, group, sym_bars, bh, config) for model in cols
        )
    for (horizon,), group in common.group_by("horizon", maintain_order=True):
        rows.extend(_row(ALL_SYMBOLS, int(horizon), m, group, None, None, config) for m in cols)
    table = pl.DataFrame(rows, schema=METRIC_SCHEMA, orient="row")
    rw = table.filter(pl.col("model") == models.RANDOM_WALK).select(
        "symbol", "horizon", pl.col("rmse").alias("rw_rmse")
    )
    return (
        table.join(rw, on=["symbol", "horizon"], how="left")
        .with_columns((pl.col("rmse") / pl.col("rw_rmse")).alias("rmse_vs_random_walk"))
        .select(list(METRIC_SCHEMA))
    )


def _row(
    symbol: str,
    horizon: int,
    model: str,
    group: pl.DataFrame,
    bars: pl.DataFrame | None,
    buy_hold: tuple[float, float, int] | None,
    config: BacktestConfig,
) -> dict[str, Any]:
    actual = group["actual"].to_numpy()
    pred = group[model].to_numpy()
    err = pred - actual
    directional = (pred != 0) & (actual != 0)
    hits = int((np.sign(pred[directional]) == np.sign(actual[directional])).sum())
    n_dir = int(directional.sum()) if model != models.RANDOM_WALK else 0
    coverage = None
    if f"{model}_lower" in group.columns:
        inside = (actual >= group[f"{model}_lower"].to_numpy()) & (
            actual <= group[f"{model}_upper"].to_numpy()
        )
        coverage = float(inside.mean())
    strategy = (
        _strategy(bars, pred, config)
        if bars is not None and bars["close"].null_count() == 0
        else None
    )
    return {
        "symbol": symbol,
        "horizon": horizon,
        "model": model,
        "n": group.height,
        "first_date": group["session_date"].min(),
        "last_date": group["session_date"].max(),
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "rmse_vs_random_walk": None,
        "hit_rate": hits / n_dir if n_dir else None,
        "hits": hits if n_dir else None,
        "directional_n": n_dir,
        "p_value": _binomial_p(hits, n_dir) if n_dir else None,
        "coverage": coverage,
        "strategy_return": strategy[0] if strategy else None,
        "strategy_sharpe": strategy[1] if strategy else None,
        "buy_hold_return": buy_hold[0] if buy_hold else None,
        "trades": strategy[2] if strategy else None,
    }


def beats_random_walk(table: pl.DataFrame) -> pl.DataFrame:
    """Pooled rows of the model: horizon, rmse_vs_random_walk, beats (RMSE below the RW's)."""
    return table.filter(
        (pl.col("symbol") == ALL_SYMBOLS) & (pl.col("model") == models.MODEL)
    ).select("horizon", "rmse_vs_random_walk", (pl.col("rmse_vs_random_walk") < 1).alias("beats"))
