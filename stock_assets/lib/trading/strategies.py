"""The four signal strategies as pure functions over daily closes, with typed parameters.

Each strategy computes its own indicators with TA-Lib (numpy in, numpy out) for its parameters
and returns an int8 `events` array aligned with the bars: +1 = buy on that bar's close, -1 = sell,
0 = nothing. An event fires on the bar where its condition becomes true (a cross), never on every
bar it stays true — the rules of stock_assets/lib/signals.py, whose fixed parameters are the
defaults of the dataclasses below (a test checks the events equal the signals asset's, bar for
bar, on real data).

`target_position` turns events into the direction held after each close: +1 from a buy until the
next sell, -1 (long/short) or 0 (long-only) from a sell until the next buy, 0 before the first
event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ConfigDict

FloatArray = NDArray[np.float64]
Events = NDArray[np.int8]

# pydantic validates these dataclasses inside the trading config; unknown keys are typos
_STRICT = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class SmaCrossoverParams:
    """Buy when SMA(fast) crosses above SMA(slow); sell when it crosses below."""

    __pydantic_config__ = _STRICT
    fast: int = 20
    slow: int = 50

    def __post_init__(self) -> None:
        if not 2 <= self.fast < self.slow:
            raise ValueError(f"need 2 <= fast < slow, got fast={self.fast} slow={self.slow}")


@dataclass(frozen=True)
class RsiMeanReversionParams:
    """Buy when RSI(period) falls below `oversold`; sell when it rises above `overbought`."""

    __pydantic_config__ = _STRICT
    period: int = 14
    oversold: float = 30.0
    overbought: float = 70.0

    def __post_init__(self) -> None:
        if self.period < 2 or not 0 < self.oversold < self.overbought < 100:
            raise ValueError(
                f"need period >= 2 and 0 < oversold < overbought < 100, got {asdict(self)}"
            )


@dataclass(frozen=True)
class MacdCrossParams:
    """Buy when MACD(fast, slow) crosses above its signal EMA; sell when it crosses below."""

    __pydantic_config__ = _STRICT
    fast: int = 12
    slow: int = 26
    signal: int = 9

    def __post_init__(self) -> None:
        if not 2 <= self.fast < self.slow or self.signal < 1:
            raise ValueError(f"need 2 <= fast < slow and signal >= 1, got {asdict(self)}")


@dataclass(frozen=True)
class BollingerBreakoutParams:
    """Buy when the close breaks above the upper band; sell when it breaks below the lower one."""

    __pydantic_config__ = _STRICT
    period: int = 20
    nbdev: float = 2.0

    def __post_init__(self) -> None:
        if self.period < 2 or self.nbdev <= 0:
            raise ValueError(f"need period >= 2 and nbdev > 0, got {asdict(self)}")


StrategyParams = (
    SmaCrossoverParams | RsiMeanReversionParams | MacdCrossParams | BollingerBreakoutParams
)


def _prev(x: FloatArray) -> FloatArray:
    out = np.empty_like(x)
    out[:1] = np.nan
    out[1:] = x[:-1]
    return out


def _events(buy: NDArray[np.bool_], sell: NDArray[np.bool_]) -> Events:
    events = np.zeros(buy.shape[0], dtype=np.int8)
    events[buy] = 1
    events[sell] = -1
    return events


def _zero_cross(x: FloatArray) -> Events:
    """+1 where x turns > 0 from <= 0, -1 where it turns < 0 from >= 0 (NaN never crosses)."""
    prev = _prev(x)
    return _events((x > 0) & (prev <= 0), (x < 0) & (prev >= 0))


def _as_close(close: Any) -> FloatArray:
    return np.ascontiguousarray(close, dtype=np.float64)


def sma_crossover(close: Any, params: SmaCrossoverParams = SmaCrossoverParams()) -> Events:
    import talib

    c = _as_close(close)
    spread = talib.SMA(c, timeperiod=params.fast) - talib.SMA(c, timeperiod=params.slow)
    return _zero_cross(spread)


def rsi_mean_reversion(
    close: Any, params: RsiMeanReversionParams = RsiMeanReversionParams()
) -> Events:
    import talib

    rsi = talib.RSI(_as_close(close), timeperiod=params.period)
    prev = _prev(rsi)
    return _events(
        (rsi < params.oversold) & (prev >= params.oversold),
        (rsi > params.overbought) & (prev <= params.overbought),
    )


def macd_cross(close: Any, params: MacdCrossParams = MacdCrossParams()) -> Events:
    import talib

    _, _, hist = talib.MACD(
        _as_close(close),
        fastperiod=params.fast,
        slowperiod=params.slow,
        signalperiod=params.signal,
    )
    return _zero_cross(hist)


def bollinger_breakout(
    close: Any, params: BollingerBreakoutParams = BollingerBreakoutParams()
) -> Events:
    import talib

    c = _as_close(close)
    upper, _, lower = talib.BBANDS(
        c,
        timeperiod=params.period,
        nbdevup=params.nbdev,
        nbdevdn=params.nbdev,
        matype=talib.MA_Type.SMA,
    )
    prev_c = _prev(c)
    return _events(
        (c > upper) & (prev_c <= _prev(upper)),
        (c < lower) & (prev_c >= _prev(lower)),
    )


STRATEGIES: dict[str, tuple[type[Any], Callable[[Any, Any], Events]]] = {
    "sma_crossover": (SmaCrossoverParams, sma_crossover),
    "rsi_mean_reversion": (RsiMeanReversionParams, rsi_mean_reversion),
    "macd_cross": (MacdCrossParams, macd_cross),
    "bollinger_breakout": (BollingerBreakoutParams, bollinger_breakout),
}
STRATEGY_NAMES = tuple(STRATEGIES)


def default_params(strategy: str) -> StrategyParams:
    params_type, _ = _lookup(strategy)
    return params_type()


def strategy_events(strategy: str, close: Any, params: StrategyParams | None = None) -> Events:
    """Events of the named strategy (its default parameters when `params` is None)."""
    params_type, fn = _lookup(strategy)
    if params is None:
        params = params_type()
    elif not isinstance(params, params_type):
        raise TypeError(f"{strategy} takes {params_type.__name__}, got {type(params).__name__}")
    return fn(close, params)


def _lookup(strategy: str) -> tuple[type[Any], Callable[[Any, Any], Events]]:
    try:
        return STRATEGIES[strategy]
    except KeyError:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}") from None


def target_position(events: Events, *, long_only: bool) -> Events:
    """Direction held after each bar's close: the last event so far (sells → 0 when long-only)."""
    n = events.shape[0]
    last = np.where(events != 0, np.arange(n), -1)
    np.maximum.accumulate(last, out=last)
    target = np.where(last >= 0, events[np.maximum(last, 0)], 0).astype(np.int8)
    if long_only:
        np.maximum(target, 0, out=target)
    return target
