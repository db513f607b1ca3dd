"""Forecast model (LightGBM) train + predict vs one statsforecast baseline, and the out-of-sample
figures of the bundled real symbols.

Part 1 (speed): 1000 synthetic symbols x 2500 NYSE sessions of GBM bars whose drift and volatility
are drawn around those fitted on the bundled real data (bokeh_sampledata, 5 symbols). Measured path:
point-in-time features (TA-Lib indicators + lib/forecast/features.py), one LightGBM fit on the first
2000 sessions of all symbols (one global model) and its forecasts for the last 500 sessions.
Baseline: statsforecast AR(1) fitted per symbol on the same 2000 sessions of daily log returns
plus its one-step forecast. LightGBM uses 1 thread (OpenMP with 2 threads on the loaded
2-core host was 2.7x slower), statsforecast 1 process. ratio = ours / baseline (>1: ours slower).

Part 2 (quality): the walk-forward evaluation the `forecast/evaluation` asset runs (defaults:
expanding window, quarterly refits after two years, embargo 5, horizons 1 and 5) on the 5 bundled
symbols: RMSE vs the random walk, directional accuracy with its binomial p-value, and the forecast
strategy (project backtester, commission 0.05 %, long-only) vs buy-and-hold. Reported as they are.
Writes bench/results/forecast.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from stock_assets.lib import calendar, indicators
from stock_assets.lib.forecast import evaluate, models
from stock_assets.lib.forecast.features import FEATURE_COLUMNS, build_features, target_column
from stock_assets_tests.lib.trading.data import real_daily_bars

RESULTS = Path(__file__).resolve().parent / "results" / "forecast.json"


def fitted_params(real: pl.DataFrame) -> pl.DataFrame:
    """Daily log-return drift and volatility per bundled symbol."""
    return (
        real.sort("symbol", "session_date")
        .with_columns(pl.col("close").log().diff().over("symbol").alias("r"))
        .group_by("symbol")
        .agg(pl.col("r").mean().alias("mu"), pl.col("r").std().alias("sigma"))
        .sort("symbol")
    )


def synthetic_bars(params: pl.DataFrame, symbols: int, days: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    sessions = calendar.sessions(date(2010, 1, 4), date(2022, 12, 30))["session_date"][:days]
    mu, sigma = params["mu"].to_numpy(), params["sigma"].to_numpy()
    pick = rng.integers(0, len(mu), symbols)
    m = mu[pick] * rng.uniform(0.5, 1.5, symbols)
    s = sigma[pick] * rng.uniform(0.7, 1.3, symbols)
    body = rng.normal(m[:, None], s[:, None], (symbols, days))
    log_close = np.log(rng.uniform(20, 200, symbols))[:, None] + np.cumsum(body, axis=1)
    close = np.exp(log_close)
    open_ = np.exp(log_close - body * rng.uniform(0.3, 1.0, (symbols, days)))
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    high = top * np.exp(np.abs(rng.normal(0, 0.4 * s[:, None], (symbols, days))))
    low = bottom * np.exp(-np.abs(rng.normal(0, 0.4 * s[:, None], (symbols, days))))
    volume = rng.lognormal(14, 0.5, (symbols, days))
    return pl.DataFrame(
        {
            "symbol": np.repeat([f"S{i:04d}" for i in range(symbols)], days),
            "session_date": np.tile(sessions.to_numpy(), symbols),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel(),
        }
    )


def speed(bars: pl.DataFrame, train_days: int) -> dict[str, Any]:
    from statsforecast import StatsForecast
    from statsforecast.models import ARIMA

    dates = bars["session_date"].unique().sort()
    split = dates[train_days - 1]
    spec = models.ModelSpec(n_jobs=1)  # 2 threads measured 2.7x slower on the shared 2-core host
    target = target_column(1)

    t0 = time.perf_counter()
    feats = build_features(bars, indicators.compute_indicators(bars), (1,))
    t1 = time.perf_counter()
    # purge: a training label must be known at the split (label of t uses the close of t+1)
    train = feats.filter((pl.col("session_date") < split) & pl.col(target).is_not_null())
    fitted = models.fit(train, FEATURE_COLUMNS, target, spec)
    t2 = time.perf_counter()
    test = feats.filter(pl.col("session_date") > split)
    pred, _, _ = fitted.predict(test)
    t3 = time.perf_counter()

    returns = (
        bars.filter(pl.col("session_date") <= split)
        .sort("symbol", "session_date")
        .with_columns(pl.col("close").log().diff().over("symbol").alias("y"))
        .drop_nulls("y")
        .with_columns(pl.int_range(pl.len()).over("symbol").alias("ds"))
        .select(pl.col("symbol").alias("unique_id"), "ds", "y")
        .to_pandas()
    )
    sf = StatsForecast(models=[ARIMA(order=(1, 0, 0), include_mean=True)], freq=1, n_jobs=1)
    s0 = time.perf_counter()
    forecast = sf.forecast(df=returns, h=1)
    s1 = time.perf_counter()
    ours = t3 - t0
    baseline = s1 - s0
    return {
        "rows": bars.height,
        "train_rows": train.height,
        "predict_rows": test.height,
        "features_s": round(t1 - t0, 3),
        "lgbm_train_s": round(t2 - t1, 3),
        "lgbm_predict_s": round(t3 - t2, 3),
        "ours_total_s": round(ours, 3),
        "statsforecast_ar1_fit_forecast_s": round(baseline, 3),
        "statsforecast_series": int(forecast.shape[0]),
        "ratio": round(ours / baseline, 3),
        "predictions": int(pred.shape[0]),
    }


def quality(real: pl.DataFrame) -> dict[str, Any]:
    cfg = evaluate.WalkForwardConfig()
    feats = build_features(real, indicators.compute_indicators(real), cfg.horizons)
    out: dict[str, Any] = {"config": cfg.params(), "horizons": {}}
    t0 = time.perf_counter()
    for h in cfg.horizons:
        table = evaluate.metrics(evaluate.walk_forward_predictions(feats, h, cfg), real)
        pooled = table.filter(pl.col("symbol") == evaluate.ALL_SYMBOLS)
        per_symbol = table.filter(
            (pl.col("symbol") != evaluate.ALL_SYMBOLS) & (pl.col("model") == models.MODEL)
        )
        cols = ["n", "rmse", "rmse_vs_random_walk", "hit_rate", "p_value", "coverage"]
        out["horizons"][str(h)] = {
            "pooled": {r["model"]: {c: r[c] for c in cols} for r in pooled.iter_rows(named=True)},
            "lgbm_per_symbol": {
                r["symbol"]: {
                    c: r[c]
                    for c in (
                        "first_date",
                        "hit_rate",
                        "p_value",
                        "rmse_vs_random_walk",
                        "strategy_return",
                        "buy_hold_return",
                        "trades",
                    )
                }
                for r in per_symbol.iter_rows(named=True)
            },
            "strategy_return_by_model": {
                s: {
                    r["model"]: r["strategy_return"]
                    for r in table.filter(pl.col("symbol") == s).iter_rows(named=True)
                }
                for s in sorted(per_symbol["symbol"].to_list())
            },
        }
    out["walk_forward_s"] = round(time.perf_counter() - t0, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--days", type=int, default=2500)
    parser.add_argument("--train-days", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()

    real = real_daily_bars()
    params = fitted_params(real)
    bars = synthetic_bars(params, args.symbols, args.days, args.seed)
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "fitted_real_params": params.to_dicts(),
        **speed(bars, args.train_days),
    }
    print(
        f"{args.symbols} symbols x {args.days} sessions: ours (features + LightGBM train + predict)"
        f" {result['ours_total_s']:.1f} s vs statsforecast AR(1) fit+forecast"
        f" {result['statsforecast_ar1_fit_forecast_s']:.1f} s -> ratio {result['ratio']:.2f}"
    )
    if not args.skip_quality:
        result["out_of_sample"] = quality(real)
        for h, block in result["out_of_sample"]["horizons"].items():
            lg = block["pooled"]["lgbm"]
            print(
                f"h={h}: lgbm RMSE/RW {lg['rmse_vs_random_walk']:.4f}, hit rate"
                f" {lg['hit_rate']:.4f} (p={lg['p_value']:.3g}, n={lg['n']})"
            )
            for sym, r in block["lgbm_per_symbol"].items():
                print(
                    f"   {sym}: hit {r['hit_rate']:.3f} p={r['p_value']:.3g} strategy"
                    f" {r['strategy_return']:+.2%} vs buy&hold {r['buy_hold_return']:+.2%}"
                )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
