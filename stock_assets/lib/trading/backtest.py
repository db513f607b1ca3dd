"""A vectorized single-symbol backtester (numpy) with exact, documented conventions.

Conventions (the README, "Trading bot", repeats them; tests check each by hand):

- Timing: `target[t]` is the direction wanted after bar t's close (+1 long, -1 short, 0 flat). It
  is executed at bar t+1's open; the last bar's target is never executed. No position before the
  first bar.
- Commission: `commission` x traded value (quantity x fill price) on every fill, paid in cash.
- Sizing: at an entry, quantity = fraction x equity / (open x (1 + commission)), so the entry's
  cash outlay including commission is exactly `fraction` x equity (all-in: fraction = 1 and cash
  goes to 0). Equity at the entry is the cash after any exit filled at the same open. Shares are
  fractional. Shorts are sized the same way; their proceeds are credited to cash (no margin
  model). A reversal (long -> short) is an exit and an entry at the same open, each paying
  commission.
- Long-only turns short targets into flat ones.
- Stop-loss / take-profit (fractions of the entry price, optional): long stop = entry x (1 - sl),
  long target = entry x (1 + tp); short stop = entry x (1 + sl), short target = entry x (1 - tp).
  They are checked on every bar the position is held, from the entry bar itself (the entry fills
  at the open; the rest of the bar can reach the levels). On a bar:
    1. the open is beyond the stop (a gap through it): exit at the open;
    2. else the open is beyond the target: exit at the open;
    3. else the low/high reaches the stop: exit at the stop price — also when the same bar reaches
       the target too (the path inside a bar is unknown: assume the worst, stop first);
    4. else the high/low reaches the target: exit at the target price.
  After such an exit the position stays flat until the target direction changes: a repeated
  signal in the same direction does not re-enter. This keeps each holding period independent,
  which is what makes the backtest vectorizable.
- A position still open after the last bar is reported as a trade with exit reason "end", valued
  at the last close with no exit commission (it is a mark, not a fill).
- Equity is marked at every close: cash + quantity x close. If equity reaches 0 or below (only a
  short can do that) the account stops trading.

Metrics (risk-free rate 0, 252 sessions a year; returns are close-to-close equity returns, the
first measured from the initial cash):
- total_return = final equity / initial cash - 1
- cagr = (final / initial) ** (252 / bars) - 1 (bars counted, not calendar days)
- sharpe = mean(r) / std(r, ddof=1) x sqrt(252); 0 when std is 0
- sortino = mean(r) / sqrt(mean(min(r, 0)^2)) x sqrt(252) (downside deviation over all bars,
  target 0); 0 when there is no down bar
- max_drawdown = max over t of 1 - equity[t] / peak[t] (a positive fraction; the peak includes the
  initial cash); max_drawdown_duration = longest run of consecutive bars below the running peak
  (bars; a drawdown not yet recovered counts up to the last bar)
- win_rate = share of trades with pnl > 0 (0 without trades); trades = round trips incl. "end"
- exposure = share of bars during which a position was held at any time (entry bar through the
  bar before a signal exit, or through the bar of a stop/target exit)

Same inputs give the same outputs bit for bit: everything is a fixed sequence of numpy operations
with no randomness, threading or dict-order dependence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from stock_assets.lib.trading import strategies

FloatArray = NDArray[np.float64]
TRADING_DAYS = 252
EXIT_REASONS = ("signal", "stop_loss", "take_profit", "end")
_SIGNAL, _STOP, _TAKE, _END = range(4)

TRADE_SCHEMA = {
    "trade_no": pl.Int32,
    "direction": pl.String,
    "entry_index": pl.Int64,
    "entry_date": pl.Date,
    "entry_price": pl.Float64,
    "quantity": pl.Float64,
    "exit_index": pl.Int64,
    "exit_date": pl.Date,
    "exit_price": pl.Float64,
    "exit_reason": pl.String,
    "commission": pl.Float64,
    "pnl": pl.Float64,
    "trade_return": pl.Float64,
}


@dataclass(frozen=True)
class BacktestConfig:
    """Account and execution settings (see the module docstring for their exact meaning)."""

    initial_cash: float = 100_000.0
    commission: float = 0.0
    long_only: bool = True
    sizing: Literal["all_in", "fixed_fraction"] = "all_in"
    fraction: float = 1.0
    stop_loss: float | None = None
    take_profit: float | None = None

    def __post_init__(self) -> None:
        if not self.initial_cash > 0:
            raise ValueError("initial_cash must be > 0")
        if not 0 <= self.commission < 1:
            raise ValueError("commission must be in [0, 1)")
        if self.sizing not in ("all_in", "fixed_fraction"):
            raise ValueError("sizing must be 'all_in' or 'fixed_fraction'")
        if not 0 < self.fraction <= 1:
            raise ValueError("fraction must be in (0, 1]")
        if self.stop_loss is not None and not 0 < self.stop_loss < 1:
            raise ValueError("stop_loss must be in (0, 1)")
        if self.take_profit is not None and not self.take_profit > 0:
            raise ValueError("take_profit must be > 0")

    @property
    def position_fraction(self) -> float:
        return 1.0 if self.sizing == "all_in" else self.fraction


@dataclass(frozen=True)
class Bars:
    """One symbol's bars in time order (dates optional, used only to label trades)."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    dates: NDArray[Any] | None = None

    @classmethod
    def from_frame(cls, df: pl.DataFrame) -> Bars:
        """From a frame with open/high/low/close (and session_date), already in time order."""
        o, h, lo, c = (np.ascontiguousarray(df[c].to_numpy(), dtype=np.float64) for c in _OHLC)
        dates = df["session_date"].to_numpy() if "session_date" in df.columns else None
        return cls(open=o, high=h, low=lo, close=c, dates=dates)

    def __len__(self) -> int:
        return int(self.close.shape[0])


_OHLC = ("open", "high", "low", "close")


@dataclass(frozen=True)
class Metrics:
    bars: int
    initial_cash: float
    final_equity: float
    total_return: float
    cagr: float
    sharpe: float
    sortino: float
    max_drawdown: float
    max_drawdown_duration: int
    win_rate: float
    trades: int
    exposure: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BacktestResult:
    """Per-bar account state at each close, the metrics and the trade list."""

    cash: FloatArray
    quantity: FloatArray  # signed shares held at the close
    equity: FloatArray
    metrics: Metrics
    trade_columns: dict[str, NDArray[Any]]
    dates: NDArray[Any] | None = None

    @cached_property
    def trades(self) -> pl.DataFrame:
        """One row per trade (TRADE_SCHEMA), built on first use."""
        t = self.trade_columns
        entry, exit_ = t["entry_index"], t["exit_index"]
        dates = self.dates if self.dates is not None else np.full(len(self.equity), None, object)
        return pl.DataFrame(
            {
                "trade_no": np.arange(1, entry.shape[0] + 1, dtype=np.int32),
                "direction": np.where(t["direction"] > 0, "long", "short"),
                "entry_index": entry.astype(np.int64),
                "entry_date": dates[entry],
                "entry_price": t["entry_price"],
                "quantity": t["quantity"],
                "exit_index": exit_.astype(np.int64),
                "exit_date": dates[exit_],
                "exit_price": t["exit_price"],
                "exit_reason": np.asarray(EXIT_REASONS)[t["reason"]],
                "commission": t["commission"],
                "pnl": t["pnl"],
                "trade_return": t["pnl"] / (t["quantity"] * t["entry_price"]),
            },
            schema=TRADE_SCHEMA,
        )


def _runs(direction: NDArray[np.int8]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """[start, end) of every run of equal, non-zero direction."""
    n = direction.shape[0]
    starts = np.flatnonzero(np.concatenate(([True], direction[1:] != direction[:-1])))
    ends = np.append(starts[1:], n)
    keep = direction[starts] != 0
    return starts[keep], ends[keep]


def run_backtest(bars: Bars, target: NDArray[Any], config: BacktestConfig) -> BacktestResult:
    """Backtest the direction series `target` (one value per bar) over `bars`."""
    n = len(bars)
    if target.shape[0] != n:
        raise ValueError(f"target has {target.shape[0]} values for {n} bars")
    o, h, lo, c = bars.open, bars.high, bars.low, bars.close
    fee, frac = config.commission, config.position_fraction

    held = np.zeros(n, dtype=np.int8)  # direction held from bar t's open
    if n > 1:
        held[1:] = np.sign(target[:-1]).astype(np.int8)
    if config.long_only:
        np.maximum(held, 0, out=held)
    starts, ends = _runs(held)
    direction = held[starts].astype(np.float64)
    entry = o[starts]
    long = direction > 0

    # stop/target levels per holding period, tested on every held bar
    lengths = ends - starts
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.intp)
    total = int(lengths.sum())
    seg = np.repeat(np.arange(starts.shape[0]), lengths)
    idx = np.arange(total) - offsets[seg] + starts[seg]
    hit_bar = ends.copy()  # "no hit" sentinel
    reason = np.where(ends < n, _SIGNAL, _END)
    exit_px = np.where(ends < n, o[np.minimum(ends, n - 1)], c[n - 1] if n else 0.0)
    if total and (config.stop_loss is not None or config.take_profit is not None):
        d, bo, bh, bl = direction[seg], o[idx], h[idx], lo[idx]
        adverse, favourable = np.where(d > 0, bl, bh), np.where(d > 0, bh, bl)
        no = np.zeros(total, dtype=bool)
        stop_open = stop_intra = take_open = take_intra = no
        stop_px = take_px = np.zeros(starts.shape[0])
        if config.stop_loss is not None:
            stop_px = entry * (1 - direction * config.stop_loss)
            lvl = stop_px[seg]
            stop_open = np.where(d > 0, bo <= lvl, bo >= lvl)
            stop_intra = np.where(d > 0, adverse <= lvl, adverse >= lvl)
        if config.take_profit is not None:
            take_px = entry * (1 + direction * config.take_profit)
            lvl = take_px[seg]
            take_open = np.where(d > 0, bo >= lvl, bo <= lvl)
            take_intra = np.where(d > 0, favourable >= lvl, favourable <= lvl)
        any_hit = stop_open | take_open | stop_intra | take_intra
        first = np.minimum.reduceat(np.where(any_hit, np.arange(total), total), offsets)
        has = first < offsets + lengths
        k, f = np.flatnonzero(has), first[has]
        hit_bar[k] = idx[f]
        # precedence: gap through stop, gap through target, stop intrabar (also when both), target
        choice = np.select(
            [stop_open[f], take_open[f], stop_intra[f]], [0, 1, 2], default=3
        ).astype(np.intp)
        exit_px[k] = np.choose(choice, [bo[f], bo[f], stop_px[k], take_px[k]])
        reason[k] = np.where(choice % 2 == 0, _STOP, _TAKE)

    # equity multiplies by a price-only factor per trade, so every entry's equity is a cumprod
    exit_fee = np.where(reason == _END, 0.0, fee)
    scale = frac / (entry * (1 + fee))
    factor = np.where(
        long,
        1 - frac + scale * exit_px * (1 - exit_fee),
        1 + scale * (entry * (1 - fee) - exit_px * (1 + exit_fee)),
    )
    after = config.initial_cash * np.cumprod(factor)
    before = np.concatenate(([config.initial_cash], after[:-1]))
    ruined = np.flatnonzero(before <= 0)
    if ruined.size:  # the account is wiped out: no trade after that
        cut = int(ruined[0])
        starts, ends, direction, entry, long = (
            starts[:cut],
            ends[:cut],
            direction[:cut],
            entry[:cut],
            long[:cut],
        )
        hit_bar, reason, exit_px = hit_bar[:cut], reason[:cut], exit_px[:cut]
        exit_fee, after, before = exit_fee[:cut], after[:cut], before[:cut]
    qty = before * frac / (entry * (1 + fee))
    cash_held = np.where(long, before * (1 - frac), before + qty * entry * (1 - fee))

    # paint the account: flat bars carry the cash after the last exit, held bars the position
    closes_flat = np.minimum(hit_bar, ends)  # first bar that closes without this position
    level = np.zeros(n, dtype=np.intp)
    inside = closes_flat < n
    np.maximum.at(level, closes_flat[inside], np.flatnonzero(inside) + 1)
    np.maximum.accumulate(level, out=level)
    cash = np.concatenate(([config.initial_cash], after))[level]
    quantity = np.zeros(n)
    marked = closes_flat - starts
    if marked.sum():
        rows = np.repeat(np.arange(starts.shape[0]), marked)
        bar = np.arange(rows.shape[0]) - np.repeat(np.cumsum(marked) - marked, marked)
        bar += starts[rows]
        cash[bar] = cash_held[rows]
        quantity[bar] = (direction * qty)[rows]
    equity = cash + quantity * c

    exit_index = np.where(reason == _END, n - 1, np.minimum(hit_bar, ends))
    commission = qty * (entry * fee + exit_px * exit_fee)
    pnl = after - before
    held_bars = marked + (hit_bar < ends)
    trade_columns = {
        "direction": direction,
        "entry_index": starts,
        "entry_price": entry,
        "quantity": qty,
        "exit_index": exit_index,
        "exit_price": exit_px,
        "reason": reason,
        "commission": commission,
        "pnl": pnl,
    }
    metrics = compute_metrics(equity, config.initial_cash, pnl, int(held_bars.sum()))
    return BacktestResult(
        cash=cash,
        quantity=quantity,
        equity=equity,
        metrics=metrics,
        trade_columns=trade_columns,
        dates=bars.dates,
    )


def compute_metrics(
    equity: FloatArray, initial_cash: float, trade_pnl: FloatArray, held_bars: int
) -> Metrics:
    """Performance metrics of an equity curve marked at each close (module docstring)."""
    n = equity.shape[0]
    final = float(equity[-1]) if n else initial_cash
    growth = final / initial_cash
    returns = np.diff(equity, prepend=initial_cash) / np.concatenate(([initial_cash], equity[:-1]))
    mean = float(returns.mean()) if n else 0.0
    std = float(returns.std(ddof=1)) if n > 1 else 0.0
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))) if n else 0.0
    peak = np.maximum.accumulate(np.concatenate(([initial_cash], equity)))[1:]
    under = equity < peak
    # longest run of consecutive True in `under`
    breaks = np.flatnonzero(np.diff(np.concatenate(([0], under.view(np.int8), [0]))))
    longest = int((breaks[1::2] - breaks[::2]).max()) if breaks.size else 0
    trades = int(trade_pnl.shape[0])
    return Metrics(
        bars=n,
        initial_cash=initial_cash,
        final_equity=final,
        total_return=growth - 1,
        cagr=(growth ** (TRADING_DAYS / n) - 1) if n and growth > 0 else (-1.0 if n else 0.0),
        sharpe=mean / std * math.sqrt(TRADING_DAYS) if std > 0 else 0.0,
        sortino=mean / downside * math.sqrt(TRADING_DAYS) if downside > 0 else 0.0,
        max_drawdown=float((1 - equity / peak).max()) if n else 0.0,
        max_drawdown_duration=longest,
        win_rate=float((trade_pnl > 0).mean()) if trades else 0.0,
        trades=trades,
        exposure=held_bars / n if n else 0.0,
    )


def backtest_strategy(
    bars: Bars,
    strategy: str,
    params: strategies.StrategyParams | None,
    config: BacktestConfig,
) -> BacktestResult:
    """Run a named strategy (TA-Lib on the closes) through the backtester."""
    events = strategies.strategy_events(strategy, bars.close, params)
    return run_backtest(
        bars, strategies.target_position(events, long_only=config.long_only), config
    )
