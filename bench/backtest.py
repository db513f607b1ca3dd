"""Vectorized backtester vs a plain per-bar loop doing the same accounting.

1000 symbols x 2500 sessions of synthetic GBM bars (seeded), SMA crossover 20/50 long/short with
commission 0.05 %, 5 % stop-loss and 10 % take-profit — every code path of the backtester. Both
sides get the same precomputed targets (the TA-Lib signal pass is timed separately) and must
agree on every symbol's final equity, trade count and Sharpe. The baseline loop walks Python
floats (faster than indexing numpy arrays element by element, so the stronger baseline: `ratio`
uses it); the numpy-indexing loop is timed once and reported too. Rounds alternate (loop, ours) and
medians are compared. Prints the ratio loop time / ours; writes bench/results/backtest.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from stock_assets.lib.trading import strategies
from stock_assets.lib.trading.backtest import BacktestConfig, Bars, run_backtest

RESULTS = Path(__file__).resolve().parent / "results" / "backtest.json"
CONFIG = BacktestConfig(
    initial_cash=100_000.0, commission=0.0005, long_only=False, stop_loss=0.05, take_profit=0.10
)


def gbm_bars(symbols: int, days: int, seed: int) -> list[Bars]:
    """Seeded GBM closes; opens gap from the previous close; highs/lows straddle both."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(symbols):
        sigma = rng.uniform(0.15, 0.45) / np.sqrt(252)
        gap = rng.normal(0, 0.3 * sigma, days)
        body = rng.normal(0.06 / 252 - sigma**2 / 2, sigma, days)
        log_close = np.log(rng.uniform(20, 200)) + np.cumsum(gap + body)
        close = np.exp(log_close)
        open_ = np.exp(log_close - body)
        top, bottom = np.maximum(open_, close), np.minimum(open_, close)
        high = top * np.exp(np.abs(rng.normal(0, 0.5 * sigma, days)))
        low = bottom * np.exp(-np.abs(rng.normal(0, 0.5 * sigma, days)))
        out.append(Bars(open_, high, low, close))
    return out


def loop_backtest(
    b: Bars, target: np.ndarray, cfg: BacktestConfig, *, as_floats: bool = True
) -> tuple[float, int, float]:
    """The same conventions one bar at a time; returns (final equity, trades, sharpe).

    as_floats=False indexes the numpy arrays element by element (numpy scalars), the literal
    "plain numpy loop"; the default walks Python floats, which is faster.
    """
    arrays = (b.open, b.high, b.low, b.close, target)
    o, h, lo, c, tgt = (a.tolist() for a in arrays) if as_floats else arrays
    fee, frac, sl, tp = cfg.commission, cfg.position_fraction, cfg.stop_loss, cfg.take_profit
    cash, qty, side, entry, trades, prev_want = cfg.initial_cash, 0.0, 0, 0.0, 0, 0
    equity = []
    for t in range(len(c)):
        want = tgt[t - 1] if t else 0
        if cfg.long_only and want < 0:
            want = 0
        if want != prev_want:
            if side:
                cash += side * qty * o[t] - qty * o[t] * fee
                side = 0
            if want and cash > 0:
                side, entry = want, o[t]
                qty = frac * cash / (entry * (1 + fee))
                cash -= side * qty * entry + qty * entry * fee
                trades += 1
        prev_want = want
        if side:
            stop = entry * (1 - side * sl) if sl else None
            take = entry * (1 + side * tp) if tp else None
            px = None
            if side > 0:
                if (stop is not None and o[t] <= stop) or (take is not None and o[t] >= take):
                    px = o[t]
                elif stop is not None and lo[t] <= stop:
                    px = stop
                elif take is not None and h[t] >= take:
                    px = take
            elif (stop is not None and o[t] >= stop) or (take is not None and o[t] <= take):
                px = o[t]
            elif stop is not None and h[t] >= stop:
                px = stop
            elif take is not None and lo[t] <= take:
                px = take
            if px is not None:
                cash += side * qty * px - qty * px * fee
                side = 0
        equity.append(cash + side * qty * c[t])
    eq = np.asarray(equity)
    r = np.diff(eq, prepend=cfg.initial_cash) / np.concatenate(([cfg.initial_cash], eq[:-1]))
    sharpe = float(r.mean() / r.std(ddof=1) * np.sqrt(252)) if r.std(ddof=1) > 0 else 0.0
    return float(eq[-1]), trades, sharpe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--days", type=int, default=2500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()

    universe = gbm_bars(args.symbols, args.days, args.seed)
    started = time.perf_counter()
    targets = [
        strategies.target_position(strategies.sma_crossover(b.close), long_only=False)
        for b in universe
    ]
    signals_s = time.perf_counter() - started

    loop_times: list[float] = []
    ours_times: list[float] = []
    loop_out: list[tuple[float, int, float]] = []
    ours_out: list[Any] = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        loop_out = [loop_backtest(b, t, CONFIG) for b, t in zip(universe, targets, strict=True)]
        loop_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        ours_out = [
            run_backtest(b, t, CONFIG).metrics for b, t in zip(universe, targets, strict=True)
        ]
        ours_times.append(time.perf_counter() - started)

    started = time.perf_counter()
    numpy_loop_out = [
        loop_backtest(b, t, CONFIG, as_floats=False) for b, t in zip(universe, targets, strict=True)
    ]
    numpy_loop_s = time.perf_counter() - started
    assert [x[1] for x in numpy_loop_out] == [x[1] for x in loop_out]

    finals = np.array([m.final_equity for m in ours_out])
    np.testing.assert_allclose(finals, [x[0] for x in loop_out], rtol=1e-9)
    assert [m.trades for m in ours_out] == [x[1] for x in loop_out]
    np.testing.assert_allclose([m.sharpe for m in ours_out], [x[2] for x in loop_out], rtol=1e-6)

    bars = args.symbols * args.days
    loop_s, ours_s = statistics.median(loop_times), statistics.median(ours_times)
    result = {
        "benchmark": "backtest",
        "symbols": args.symbols,
        "days": args.days,
        "bars": bars,
        "strategy": "sma_crossover 20/50, long/short, commission 0.0005, stop 5 %, target 10 %",
        "rounds": args.rounds,
        "seed": args.seed,
        "trades": int(sum(m.trades for m in ours_out)),
        "signals_seconds": round(signals_s, 4),
        "baseline_loop_seconds": round(loop_s, 4),
        "vectorized_seconds": round(ours_s, 4),
        "ratio": round(loop_s / ours_s, 2),
        "baseline_bars_per_s": round(bars / loop_s),
        "vectorized_bars_per_s": round(bars / ours_s),
        "numpy_indexing_loop_seconds": round(numpy_loop_s, 4),
        "ratio_vs_numpy_indexing_loop": round(numpy_loop_s / ours_s, 2),
        "results_agree": True,
        "runs": {"baseline_loop": loop_times, "vectorized": ours_times},
        "machine": {"python": platform.python_version(), "numpy": np.__version__},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{args.symbols} symbols x {args.days} days ({bars:,} bars, {result['trades']:,} trades): "
        f"loop {loop_s:.2f} s, vectorized {ours_s:.3f} s, signals (TA-Lib) {signals_s:.3f} s"
    )
    print(f"ratio (baseline time / ours) = {result['ratio']}")
    print(
        f"vs a loop indexing numpy arrays element by element ({numpy_loop_s:.2f} s, one round): "
        f"{result['ratio_vs_numpy_indexing_loop']}"
    )


if __name__ == "__main__":
    main()
