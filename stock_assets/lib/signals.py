"""Signal rows: every configured (symbol, strategy, parameters) run through the strategy engine.

The rules, their parameters, strength and reason live in stock_assets/lib/trading/strategies.py;
this module turns their events into the rows of analytics.signals — one per bar where a rule
fired, keyed by (symbol, session_date, strategy, params). `params` is the canonical JSON of every
parameter (`strategies.params_key`), so a symbol traded with custom parameters (MSFT's SMA 10/30)
has its own rows, next to any other parameter set, and every reader can select exactly the rows
it trades on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import polars as pl

from stock_assets.lib import tables
from stock_assets.lib.trading import strategies

# A stored row (analytics.signals): the signal and the parameters that produced it (in the key).
SIGNAL_ROW_SCHEMA = tables.SIGNALS.schema()
# The columns the dashboard and search show for a signal (they select these by name).
SIGNAL_SCHEMA = {k: v for k, v in SIGNAL_ROW_SCHEMA.items() if k != "params"}
SIGNAL_COLUMNS = tuple(SIGNAL_ROW_SCHEMA)
SIGNAL_KEY = ("symbol", "session_date", "strategy", "params")


class Configured(Protocol):
    """One configured (symbol, strategy, parameters); trading's BookEntry is one."""

    @property
    def symbol(self) -> str: ...
    @property
    def strategy(self) -> str: ...
    @property
    def params(self) -> strategies.StrategyParams: ...


@dataclass(frozen=True)
class Instance:
    symbol: str
    strategy: str
    params: strategies.StrategyParams


def default_book(symbols: Iterable[str]) -> list[Instance]:
    """Every strategy at its default parameters for each symbol."""
    return [
        Instance(sym, name, strategies.default_params(name))
        for sym in sorted(set(symbols))
        for name in strategies.STRATEGY_NAMES
    ]


def generate_signals(bars: pl.DataFrame, book: Iterable[Configured] | None = None) -> pl.DataFrame:
    """Signal rows of `bars` (symbol, session_date, close) for each configured strategy.

    `book` defaults to every symbol of `bars` x every strategy at its default parameters. A rule
    sees each symbol's bars in time order; a bar's signal depends only on the bars up to it.
    """
    df = bars.select("symbol", "session_date", "close").sort("symbol", "session_date")
    by_symbol = {key[0]: part for key, part in df.partition_by("symbol", as_dict=True).items()}
    entries = default_book(by_symbol) if book is None else list(book)
    frames = []
    for entry in entries:
        history = by_symbol.get(entry.symbol)
        if history is None or history.height == 0:
            continue
        strategy = strategies.get(entry.strategy)
        params = strategy.check(entry.params)
        close = history["close"].to_numpy()
        ev = strategy.evaluate(close, params)
        fired = np.flatnonzero(ev.events)
        if not fired.size:
            continue
        rows = history[fired].with_columns(
            pl.Series("event", ev.events[fired]),
            pl.Series("strength", ev.strength[fired], dtype=pl.Float64),
            *(pl.Series(k, v[fired], dtype=pl.Float64) for k, v in ev.values.items()),
        )
        frames.append(
            rows.select(
                "symbol",
                "session_date",
                pl.lit(entry.strategy).alias("strategy"),
                pl.lit(strategies.params_key(params)).alias("params"),
                pl.when(pl.col("event") > 0)
                .then(pl.lit("buy"))
                .otherwise(pl.lit("sell"))
                .alias("side"),
                "strength",
                pl.col("close").alias("price"),
                strategy.reason(params).alias("reason"),
            )
        )
    if not frames:
        return pl.DataFrame(schema=SIGNAL_ROW_SCHEMA)
    return pl.concat(frames).cast(SIGNAL_ROW_SCHEMA).sort(*SIGNAL_KEY)  # type: ignore[arg-type]
