"""The forecasting model (LightGBM, one global model over all symbols per horizon) and baselines.

Baselines are fitted on exactly what the model may see at each fold: the random walk predicts a
zero log return; the historical mean predicts the symbol's mean label over the fold's (purged)
training rows; AR(1) and simple exponential smoothing (ETS A,N,N) come from statsforecast on each
symbol's daily log returns, refitted every `refit_every` sessions on the history up to the
forecast origin and applied between refits without refitting (statsforecast cross-validation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

MODEL = "lgbm"
RANDOM_WALK = "random_walk"
HIST_MEAN = "hist_mean"
AR1 = "ar1"
ETS = "ets"
BASELINES = (RANDOM_WALK, HIST_MEAN, AR1, ETS)
INTERVAL = 0.8  # central coverage of the prediction interval


@dataclass(frozen=True)
class ModelSpec:
    """LightGBM settings; small trees and strong regularisation (daily returns are mostly noise)."""

    n_estimators: int = 200
    learning_rate: float = 0.03
    num_leaves: int = 15
    min_child_samples: int = 200
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    seed: int = 7
    n_jobs: int = 1

    def params(self) -> dict[str, Any]:
        return asdict(self)


def make_model(spec: ModelSpec) -> Any:
    """An unfitted, deterministic LightGBM regressor (same seed and data give the same model)."""
    from lightgbm import LGBMRegressor

    return LGBMRegressor(
        n_estimators=spec.n_estimators,
        learning_rate=spec.learning_rate,
        num_leaves=spec.num_leaves,
        min_child_samples=spec.min_child_samples,
        subsample=spec.subsample,
        subsample_freq=1,
        colsample_bytree=spec.colsample_bytree,
        reg_lambda=spec.reg_lambda,
        random_state=spec.seed,
        n_jobs=spec.n_jobs,
        deterministic=True,
        force_col_wise=True,
        verbose=-1,
    )


@dataclass
class FittedModel:
    """A fitted regressor with the residual quantiles of its training fit (interval half-widths)."""

    estimator: Any
    feature_columns: tuple[str, ...]
    lower_offset: float
    upper_offset: float

    def predict(self, features: pl.DataFrame) -> tuple[NDArray[np.float64], ...]:
        """(prediction, lower, upper) for each row."""
        x = features.select(self.feature_columns).to_numpy()
        pred = np.asarray(self.estimator.predict(x), dtype=np.float64)
        return pred, pred + self.lower_offset, pred + self.upper_offset


def fit(
    train: pl.DataFrame, feature_columns: tuple[str, ...], target: str, spec: ModelSpec
) -> FittedModel:
    x = train.select(feature_columns).to_numpy()
    y = train[target].to_numpy()
    estimator = make_model(spec).fit(x, y)
    residuals = y - estimator.predict(x)
    tail = (1 - INTERVAL) / 2
    lo, hi = np.quantile(residuals, [tail, 1 - tail])
    return FittedModel(estimator, feature_columns, float(lo), float(hi))


def statsforecast_baselines(
    returns: pl.DataFrame, horizon: int, origins: int, refit_every: int
) -> pl.DataFrame:
    """AR(1) and ETS(A,N,N) forecasts of the `horizon`-session log return for one symbol.

    `returns`: session_date, ret (daily log return), in time order. Forecasts are issued at each of
    the last `origins` sessions that have `horizon` sessions after them, using returns up to the
    origin; returns session_date (the origin), ar1, ets (sums of the h one-day forecasts).
    """
    from statsforecast import StatsForecast
    from statsforecast.models import ARIMA, AutoETS

    n = returns.height
    origins = min(origins, n - horizon - 60)  # at least 60 returns for the first fit
    if origins < 1:
        return pl.DataFrame(schema={"session_date": pl.Date, AR1: pl.Float64, ETS: pl.Float64})
    frame = pl.DataFrame(
        {"unique_id": "s", "ds": np.arange(n, dtype=np.int64), "y": returns["ret"].to_numpy()}
    ).to_pandas()
    sf = StatsForecast(
        models=[
            ARIMA(order=(1, 0, 0), include_mean=True, alias=AR1),
            AutoETS(model="ANN", alias=ETS),
        ],
        freq=1,
        n_jobs=1,
    )
    cv = sf.cross_validation(df=frame, h=horizon, n_windows=origins, step_size=1, refit=refit_every)
    summed = (
        pl.from_pandas(cv[["cutoff", AR1, ETS]])
        .group_by("cutoff")
        .agg(pl.col(AR1).sum(), pl.col(ETS).sum())
        .sort("cutoff")
    )
    index = pl.DataFrame(
        {"cutoff": np.arange(n, dtype=np.int64), "session_date": returns["session_date"]}
    )
    return (
        summed.with_columns(pl.col("cutoff").cast(pl.Int64))
        .join(index, on="cutoff")
        .select("session_date", AR1, ETS)
    )
