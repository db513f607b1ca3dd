"""The strategy engine: every signal rule, its typed parameters and the indicators it reads.

One registry (`STRATEGIES`: name -> `Strategy`) owns the rules. A strategy declares its parameter
type (a frozen dataclass whose defaults are the platform's defaults), the TA-Lib indicators it
needs for given parameters (`Strategy.inputs`), and its rule over those indicator arrays. Every
consumer runs the rules through this module with the parameters it was configured with:

- the signals asset (stock_assets/lib/signals.py) stores one row per fired bar for every
  configured (symbol, strategy, parameters), with strength and reason;
- backtests (`backtest.backtest_strategy`) turn the same events into target positions;
- the paper portfolio reads the stored rows of its (symbol, strategy, parameters);
- the indicators asset stores the inputs of every strategy's *default* parameters (so the
  dashboard's overlays are the lines the default rules compare), plus a few display indicators.

Each rule evaluates to an int8 `events` array aligned with the bars: +1 = buy on that bar's
close, -1 = sell, 0 = nothing. An event fires on the bar where its condition becomes true (a
cross), never on every bar it stays true. Strength in [0, 1] measures how decisive the move was:
- sma_crossover: SMA(fast) crosses SMA(slow); strength = bar-over-bar swing of
  (fast - slow) / slow, 1 at 1 %;
- rsi_mean_reversion: RSI(period) enters < oversold (buy) or > overbought (sell); 1 at 10 points
  past the threshold;
- macd_cross: MACD crosses its signal line; strength = |histogram| / close, 1 at 0.5 %;
- bollinger_breakout: the close breaks out of the bands (buy above the upper one, sell below the
  lower one); strength = distance past the band / (upper - middle).

`target_position` turns events into the direction held after each close: +1 from a buy until the
next sell, -1 (long/short) or 0 (long-only) from a sell until the next buy, 0 before the first
event.

TA-Lib is imported inside the functions that call it (the Dagster code location must not load it
at definition time).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray
from pydantic import ConfigDict

FloatArray = NDArray[np.float64]
Events = NDArray[np.int8]

# pydantic validates these dataclasses inside the trading config; unknown keys are typos
_STRICT = ConfigDict(extra="forbid")


# --- indicators ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Indicator:
    """One TA-Lib indicator with its arguments; `columns` name its outputs when stored.

    The stored table holds one MACD and one Bollinger set (the default strategies' inputs), so
    those keep their plain column names; single-output indicators carry their period.
    """

    function: Literal["SMA", "EMA", "RSI", "ATR", "OBV", "MACD", "BBANDS"]
    args: tuple[float, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        if self.function == "MACD":
            return ("macd", "macd_signal", "macd_hist")
        if self.function == "BBANDS":
            return ("bb_upper", "bb_middle", "bb_lower")
        if self.function == "OBV":
            return ("obv",)
        return (f"{self.function.lower()}_{int(self.args[0])}",)

    def compute(
        self, high: FloatArray, low: FloatArray, close: FloatArray, volume: FloatArray
    ) -> tuple[FloatArray, ...]:
        """TA-Lib over one symbol's bars in time order (TA-Lib's lookback rows are NaN)."""
        import talib

        f, a = self.function, self.args
        if f == "SMA":
            return (talib.SMA(close, timeperiod=int(a[0])),)
        if f == "EMA":
            return (talib.EMA(close, timeperiod=int(a[0])),)
        if f == "RSI":
            return (talib.RSI(close, timeperiod=int(a[0])),)
        if f == "ATR":
            return (talib.ATR(high, low, close, timeperiod=int(a[0])),)
        if f == "OBV":  # a running total from the first bar it is given (volume[0])
            return (talib.OBV(close, volume),)
        if f == "MACD":
            return tuple(
                talib.MACD(
                    close, fastperiod=int(a[0]), slowperiod=int(a[1]), signalperiod=int(a[2])
                )
            )
        return tuple(
            talib.BBANDS(
                close, timeperiod=int(a[0]), nbdevup=a[1], nbdevdn=a[1], matype=talib.MA_Type.SMA
            )
        )


def SMA(period: int) -> Indicator:
    return Indicator("SMA", (period,))


def EMA(period: int) -> Indicator:
    return Indicator("EMA", (period,))


def RSI(period: int) -> Indicator:
    return Indicator("RSI", (period,))


def ATR(period: int) -> Indicator:
    return Indicator("ATR", (period,))


def MACD(fast: int, slow: int, signal: int) -> Indicator:
    return Indicator("MACD", (fast, slow, signal))


def BBANDS(period: int, nbdev: float) -> Indicator:
    return Indicator("BBANDS", (period, nbdev))


OBV = Indicator("OBV")


# --- parameters ----------------------------------------------------------------------------


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


def params_key(params: StrategyParams) -> str:
    """Canonical JSON of every parameter (defaults filled in): the stored `params` column."""
    return json.dumps(asdict(params), sort_keys=True, separators=(",", ":"))


# --- rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """A rule over one symbol's bars: events, strength, and the values its reason quotes."""

    events: Events
    strength: FloatArray  # in [0, 1] where an event fired (NaN elsewhere is fine)
    values: dict[str, FloatArray]  # named series the reason expression reads


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


def _per(unit: float) -> float:
    """1 / unit: a scale applied as a product (bit-identical to polars' division by a literal)."""
    return 1.0 / unit


def _strength(x: FloatArray) -> FloatArray:
    return np.nan_to_num(np.clip(np.abs(x), 0.0, 1.0), nan=0.0)


def _sma_rule(close: FloatArray, ind: list[tuple[FloatArray, ...]], p: Any) -> Evaluation:
    (fast,), (slow,) = ind
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = fast - slow
        swing = (spread - _prev(spread)) / slow * _per(0.01)
    return Evaluation(_zero_cross(spread), _strength(swing), {"fast": fast, "slow": slow})


def _rsi_rule(close: FloatArray, ind: list[tuple[FloatArray, ...]], p: Any) -> Evaluation:
    ((rsi,),) = ind
    prev = _prev(rsi)
    with np.errstate(invalid="ignore"):
        events = _events(
            (rsi < p.oversold) & (prev >= p.oversold),
            (rsi > p.overbought) & (prev <= p.overbought),
        )
    past = np.where(events > 0, p.oversold - rsi, rsi - p.overbought) * _per(10)
    return Evaluation(events, _strength(past), {"rsi": rsi})


def _macd_rule(close: FloatArray, ind: list[tuple[FloatArray, ...]], p: Any) -> Evaluation:
    ((macd, signal, hist),) = ind
    with np.errstate(invalid="ignore", divide="ignore"):
        strength = hist / close * _per(0.005)
    return Evaluation(_zero_cross(hist), _strength(strength), {"macd": macd, "signal": signal})


def _bollinger_rule(close: FloatArray, ind: list[tuple[FloatArray, ...]], p: Any) -> Evaluation:
    ((upper, middle, lower),) = ind
    prev_c = _prev(close)
    with np.errstate(invalid="ignore", divide="ignore"):
        events = _events(
            (close > upper) & (prev_c <= _prev(upper)),
            (close < lower) & (prev_c >= _prev(lower)),
        )
        half_band = upper - middle
        past = np.where(events > 0, (close - upper) / half_band, (lower - close) / half_band)
    return Evaluation(events, _strength(past), {"upper": upper, "lower": lower})


# --- reasons (polars, over the fired rows: column `event` and the evaluation's values) -------


def _num(name: str) -> pl.Expr:
    return pl.col(name).round(2).cast(pl.String)


def _pick(up: Any, down: Any) -> pl.Expr:
    up = pl.lit(up) if isinstance(up, str) else up
    down = pl.lit(down) if isinstance(down, str) else down
    return pl.when(pl.col("event") > 0).then(up).otherwise(down)


def _sma_reason(p: Any) -> pl.Expr:
    return pl.format(
        f"SMA{p.fast} crossed {{}} SMA{p.slow} ({{}} {{}} {{}})",
        _pick("above", "below"),
        _num("fast"),
        _pick(">", "<"),
        _num("slow"),
    )


def _rsi_reason(p: Any) -> pl.Expr:
    return pl.format(
        f"RSI{p.period} {{}} ({{}} {{}} {{}})",
        _pick("fell into oversold", "rose into overbought"),
        _num("rsi"),
        _pick("<", ">"),
        _pick(f"{p.oversold:g}", f"{p.overbought:g}"),
    )


def _macd_reason(p: Any) -> pl.Expr:
    name = "MACD" if p == MacdCrossParams() else f"MACD({p.fast},{p.slow},{p.signal})"
    return pl.format(
        f"{name} crossed {{}} its signal line ({{}} {{}} {{}})",
        _pick("above", "below"),
        _num("macd"),
        _pick(">", "<"),
        _num("signal"),
    )


def _bollinger_reason(p: Any) -> pl.Expr:
    name = "Bollinger" if p == BollingerBreakoutParams() else f"Bollinger({p.period},{p.nbdev:g})"
    return pl.format(
        f"close broke {{}} the {{}} {name} band ({{}} {{}} {{}})",
        _pick("above", "below"),
        _pick("upper", "lower"),
        _num("close"),
        _pick(">", "<"),
        _pick(_num("upper"), _num("lower")),
    )


# --- the registry --------------------------------------------------------------------------


Rule = Callable[[FloatArray, list[tuple[FloatArray, ...]], Any], Evaluation]


@dataclass(frozen=True)
class Strategy:
    """A named rule: its parameter type, the indicators it reads, the rule and its reason."""

    name: str
    params_type: type[Any]
    inputs: Callable[[Any], tuple[Indicator, ...]]
    rule: Rule
    reason: Callable[[Any], pl.Expr]
    description: str

    def default_params(self) -> StrategyParams:
        return self.params_type()

    def check(self, params: StrategyParams | None) -> StrategyParams:
        if params is None:
            return self.default_params()
        if not isinstance(params, self.params_type):
            raise TypeError(
                f"{self.name} takes {self.params_type.__name__}, got {type(params).__name__}"
            )
        return params

    def evaluate(
        self,
        close: Any,
        params: StrategyParams | None = None,
        *,
        high: Any = None,
        low: Any = None,
        volume: Any = None,
    ) -> Evaluation:
        """The rule over one symbol's bars in time order (close only for today's strategies)."""
        p = self.check(params)
        c = _as_float(close)
        h, lo, v = (c if x is None else _as_float(x) for x in (high, low, volume))
        values = [ind.compute(h, lo, c, v) for ind in self.inputs(p)]
        return self.rule(c, values, p)


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy(
            "sma_crossover",
            SmaCrossoverParams,
            lambda p: (SMA(p.fast), SMA(p.slow)),
            _sma_rule,
            _sma_reason,
            "SMA(fast) crosses SMA(slow)",
        ),
        Strategy(
            "rsi_mean_reversion",
            RsiMeanReversionParams,
            lambda p: (RSI(p.period),),
            _rsi_rule,
            _rsi_reason,
            "RSI(period) enters the oversold / overbought zone",
        ),
        Strategy(
            "macd_cross",
            MacdCrossParams,
            lambda p: (MACD(p.fast, p.slow, p.signal),),
            _macd_rule,
            _macd_reason,
            "MACD crosses its signal line",
        ),
        Strategy(
            "bollinger_breakout",
            BollingerBreakoutParams,
            lambda p: (BBANDS(p.period, p.nbdev),),
            _bollinger_rule,
            _bollinger_reason,
            "the close breaks out of the Bollinger bands",
        ),
    )
}
STRATEGY_NAMES = tuple(STRATEGIES)


def get(strategy: str) -> Strategy:
    try:
        return STRATEGIES[strategy]
    except KeyError:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}") from None


def default_params(strategy: str) -> StrategyParams:
    return get(strategy).default_params()


def default_inputs() -> tuple[Indicator, ...]:
    """The indicators every strategy reads at its default parameters (deduplicated, in order)."""
    return tuple(
        dict.fromkeys(i for s in STRATEGIES.values() for i in s.inputs(s.default_params()))
    )


def _as_float(x: Any) -> FloatArray:
    return np.ascontiguousarray(x, dtype=np.float64)


def strategy_events(strategy: str, close: Any, params: StrategyParams | None = None) -> Events:
    """Events of the named strategy (its default parameters when `params` is None)."""
    return get(strategy).evaluate(close, params).events


def sma_crossover(close: Any, params: SmaCrossoverParams = SmaCrossoverParams()) -> Events:
    return strategy_events("sma_crossover", close, params)


def rsi_mean_reversion(
    close: Any, params: RsiMeanReversionParams = RsiMeanReversionParams()
) -> Events:
    return strategy_events("rsi_mean_reversion", close, params)


def macd_cross(close: Any, params: MacdCrossParams = MacdCrossParams()) -> Events:
    return strategy_events("macd_cross", close, params)


def bollinger_breakout(
    close: Any, params: BollingerBreakoutParams = BollingerBreakoutParams()
) -> Events:
    return strategy_events("bollinger_breakout", close, params)


def parse_params(strategy: str, raw: Mapping[str, Any] | str) -> StrategyParams:
    """Parameters from their stored JSON (or a mapping); unknown keys are an error."""
    values = json.loads(raw) if isinstance(raw, str) else dict(raw)
    return get(strategy).params_type(**values)


def target_position(events: Events, *, long_only: bool) -> Events:
    """Direction held after each bar's close: the last event so far (sells → 0 when long-only)."""
    n = events.shape[0]
    last = np.where(events != 0, np.arange(n), -1)
    np.maximum.accumulate(last, out=last)
    target = np.where(last >= 0, events[np.maximum(last, 0)], 0).astype(np.int8)
    if long_only:
        np.maximum(target, 0, out=target)
    return target
