"""Record streams for the producer: replay, simulator, or a polled provider adapter."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import msgspec

from stock_assets.lib.marketdata import Record
from stock_assets.lib.providers import (
    ProviderAuthError,
    ProviderClient,
    ProviderError,
    RateBudgetExhausted,
)
from stock_assets.lib.sources.replay import replay_bars, replay_ticks
from stock_assets.lib.sources.simulator import simulate_ticks

log = logging.getLogger("stock_assets.producer")

SOURCES = ("replay", "simulator", "alpha_vantage", "fmp", "polygon", "twelve_data")


@dataclass(frozen=True)
class SourceOptions:
    """What the CLI (or a caller) asks of a source."""

    source: str
    symbols: list[str] | None = None
    seed: int = 0
    speed: float = 0.0
    rate: float = 1000.0
    limit: int | None = None
    dataset: str = "daily"
    kind: str = "ticks"
    start: datetime | None = None
    end: datetime | None = None
    ticks_per_bar: int = 8
    poll_s: float = 0.0
    quotes: bool = True


def build_records(
    options: SourceOptions,
    *,
    sleep: Callable[[float], None] = time.sleep,
    client: ProviderClient | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> Iterator[Record]:
    """The record iterator for `options.source`; providers need `client`."""
    if options.source == "replay":
        if options.kind == "bars":
            return replay_bars(
                options.dataset,
                options.symbols,
                options.start,
                options.end,
                speed=options.speed,
                sleep=sleep,
            )
        return replay_ticks(
            options.dataset,
            options.symbols,
            options.seed,
            options.start,
            options.end,
            speed=options.speed,
            ticks_per_bar=options.ticks_per_bar,
            sleep=sleep,
        )
    if options.source == "simulator":
        return simulate_ticks(
            options.symbols,
            options.seed,
            options.rate,
            limit=options.limit,
            start=options.start,
            speed=options.speed,
            sleep=sleep,
        )
    if client is None:
        raise ValueError(f"source {options.source!r} needs a provider client")
    return provider_records(
        client,
        options.symbols or ["AAPL"],
        poll_s=options.poll_s,
        quotes=options.quotes,
        start=options.start,
        end=options.end,
        sleep=sleep,
        stopping=stopping,
    )


def provider_records(
    client: ProviderClient,
    symbols: list[str],
    *,
    poll_s: float = 0.0,
    quotes: bool = True,
    start: datetime | None = None,
    end: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
    stopping: Callable[[], bool] = lambda: False,
) -> Iterator[Record]:
    """New intraday bars (+ a quote tick) per symbol; repeats every `poll_s` (0 = one pass).

    Bars are de-duplicated by start time across polls; a quote tick's seq is its exchange
    timestamp (monotonic per symbol and stable across restarts) and repeats are skipped. Auth
    errors end the stream; other provider errors are logged and the next symbol is tried.
    """
    last_bar: dict[str, int] = {}
    last_tick: dict[str, int] = {}
    while True:
        for symbol in symbols:
            try:
                for bar in client.intraday_bars(symbol, start, end):
                    if bar.ts_us > last_bar.get(symbol, -1):
                        last_bar[symbol] = bar.ts_us
                        yield bar
                if quotes:
                    tick = client.quote(symbol)
                    if tick.ts_us > last_tick.get(symbol, -1):
                        last_tick[symbol] = tick.ts_us
                        yield msgspec.structs.replace(tick, seq=tick.ts_us)
            except ProviderAuthError:
                raise
            except (ProviderError, RateBudgetExhausted) as exc:
                log.error("%s %s: %s", client.name, symbol, exc)
        if poll_s <= 0 or stopping():
            return
        sleep(poll_s)
        if stopping():
            return
