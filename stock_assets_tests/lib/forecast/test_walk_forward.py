"""Walk-forward forecasts on real bars: no look-ahead, reproducible, honest metrics."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from stock_assets.lib import indicators
from stock_assets.lib.forecast import evaluate, models
from stock_assets.lib.forecast.features import FEATURE_COLUMNS, build_features
from stock_assets_tests.lib.trading.data import real_daily_bars

SYMBOLS = ["AAPL", "MSFT"]
CUT = date(2005, 6, 15)  # "t": inside a test fold
SMALL = evaluate.WalkForwardConfig(
    horizons=(1, 5),
    test_size=63,
    min_train=252,
    embargo=5,
    spec=models.ModelSpec(n_estimators=25, min_child_samples=50),
)
PRED_COLUMNS = [
    "symbol",
    "session_date",
    "target_date",
    "fold",
    "lgbm",
    "lgbm_lower",
    "lgbm_upper",
    "hist_mean",
    "ar1",
    "ets",
]


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return real_daily_bars().filter(
        pl.col("symbol").is_in(SYMBOLS)
        & pl.col("session_date").is_between(date(2002, 1, 1), date(2006, 12, 29))
    )


def perturb_after(bars: pl.DataFrame, cut: date, seed: int = 1) -> pl.DataFrame:
    """Every bar after `cut` scaled by a random factor (OHLC together) and a random volume."""
    rng = np.random.default_rng(seed)
    factor = pl.Series(rng.uniform(0.7, 1.3, bars.height))
    vol = pl.Series(rng.uniform(0.2, 5.0, bars.height))
    after = pl.col("session_date") > cut
    return bars.with_columns(
        *(
            pl.when(after).then(pl.col(c) * factor).otherwise(pl.col(c))
            for c in ("open", "high", "low", "close")
        ),
        pl.when(after).then(pl.col("volume") * vol).otherwise(pl.col("volume")),
    )


def forecasts(bars: pl.DataFrame, horizon: int, cfg: evaluate.WalkForwardConfig) -> pl.DataFrame:
    feats = build_features(bars, indicators.compute_indicators(bars), cfg.horizons)
    return evaluate.walk_forward_predictions(feats, horizon, cfg)


def test_features_are_point_in_time(bars: pl.DataFrame) -> None:
    changed = perturb_after(bars, CUT)
    a = build_features(bars, indicators.compute_indicators(bars))
    b = build_features(changed, indicators.compute_indicators(changed))
    before = pl.col("session_date") <= CUT
    assert_frame_equal(
        a.filter(before).select(FEATURE_COLUMNS), b.filter(before).select(FEATURE_COLUMNS)
    )
    # the labels of sessions just before t look into the perturbed future, the features never do
    assert not a.filter(before)["target_5"].equals(b.filter(before)["target_5"])
    assert (
        not a.filter(~before)
        .select(FEATURE_COLUMNS)
        .equals(b.filter(~before).select(FEATURE_COLUMNS))
    )


@pytest.mark.parametrize("horizon", [1, 5])
def test_forecasts_issued_up_to_t_ignore_every_later_bar(bars: pl.DataFrame, horizon: int) -> None:
    original = forecasts(bars, horizon, SMALL)
    perturbed = forecasts(perturb_after(bars, CUT), horizon, SMALL)
    issued = pl.col("session_date") <= CUT
    a = original.filter(issued).select(PRED_COLUMNS)
    b = perturbed.filter(issued).select(PRED_COLUMNS)
    assert a.height > 100 and a["session_date"].max() == b["session_date"].max()
    assert_frame_equal(a, b)
    # later forecasts do change: the perturbation reached the models
    later = ~issued
    assert not original.filter(later)["lgbm"].equals(perturbed.filter(later)["lgbm"])
    assert not original.filter(later)["ar1"].equals(perturbed.filter(later)["ar1"])


def test_same_seed_same_forecasts_other_seed_differs(bars: pl.DataFrame) -> None:
    cfg = SMALL.__class__(**{**SMALL.__dict__, "statsforecast_baselines": False})
    first = forecasts(bars, 1, cfg)
    again = forecasts(bars, 1, cfg)
    assert_frame_equal(first, again)
    other = SMALL.__class__(
        **{**cfg.__dict__, "spec": models.ModelSpec(n_estimators=25, min_child_samples=50, seed=99)}
    )
    assert not first["lgbm"].equals(forecasts(bars, 1, other)["lgbm"])


def test_metrics_compare_every_model_on_the_same_rows(bars: pl.DataFrame) -> None:
    preds = forecasts(bars, 1, SMALL)
    table = evaluate.metrics(preds, bars)
    pooled = table.filter(pl.col("symbol") == evaluate.ALL_SYMBOLS)
    assert set(pooled["model"]) == {"lgbm", "random_walk", "hist_mean", "ar1", "ets"}
    assert pooled["n"].n_unique() == 1  # the same rows for every model
    rw = pooled.filter(pl.col("model") == "random_walk").row(0, named=True)
    assert rw["rmse_vs_random_walk"] == 1.0 and rw["hit_rate"] is None
    # the random walk's RMSE is the RMS of the realised returns (recomputed here)
    common = preds.drop_nulls(subset=["actual", "lgbm", "ar1", "ets", "hist_mean"])
    assert rw["rmse"] == pytest.approx(float(np.sqrt((common["actual"].to_numpy() ** 2).mean())))
    lgbm = pooled.filter(pl.col("model") == "lgbm").row(0, named=True)
    hits = int((np.sign(common["lgbm"]) == np.sign(common["actual"])).sum())
    assert lgbm["hits"] == hits  # no zero forecasts or returns in these rows
    assert 0 < lgbm["p_value"] < 1 and 0 < lgbm["coverage"] <= 1
    per_symbol = table.filter((pl.col("symbol") == "AAPL") & (pl.col("model") == "lgbm")).row(
        0, named=True
    )
    assert per_symbol["buy_hold_return"] is not None and per_symbol["trades"] > 0
