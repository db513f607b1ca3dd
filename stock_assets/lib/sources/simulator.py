"""Seeded geometric-Brownian-motion trade simulator for load tests (no network, no Kafka).

Each symbol follows GBM with its own annual drift and volatility (time measured in trading time:
252 sessions x 6.5 h). Trades arrive as a Poisson stream at `rate` per simulated second across
all symbols, each trade picks a symbol uniformly; prices print on a one-cent grid; sizes are
realistic: about 45 % odd lots (1-99 shares), the rest round lots of 100 shares x a geometric
count. Generation is vectorised in chunks; the same seed gives the same stream.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from stock_assets.lib import universe
from stock_assets.lib.marketdata import Tick, ts_us
from stock_assets.lib.sources.replay import pace, ticks_from_frame

SOURCE = "simulator"
TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600
DEFAULT_START = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)  # a session open, 09:30 New York
CHUNK = 65_536


@dataclass(frozen=True)
class SymbolParams:
    """Starting price and annualised GBM drift / volatility of one symbol."""

    price: float
    drift: float
    volatility: float


KNOWN: dict[str, SymbolParams] = {
    "AAPL": SymbolParams(185.0, 0.12, 0.28),
    "MSFT": SymbolParams(370.0, 0.10, 0.25),
    "GOOG": SymbolParams(140.0, 0.10, 0.30),
    "AMZN": SymbolParams(150.0, 0.12, 0.33),
    "IBM": SymbolParams(160.0, 0.05, 0.20),
    "NVDA": SymbolParams(480.0, 0.25, 0.50),
    "TSLA": SymbolParams(250.0, 0.05, 0.60),
    "META": SymbolParams(350.0, 0.15, 0.38),
}


def params_for(symbol: str) -> SymbolParams:
    """Known parameters, or deterministic ones derived from the symbol's name."""
    if symbol in KNOWN:
        return KNOWN[symbol]
    h = zlib.crc32(symbol.encode())
    return SymbolParams(
        price=20.0 + (h % 48_000) / 100.0,
        drift=0.02 + (h >> 8) % 12 / 100.0,
        volatility=0.2 + (h >> 16) % 40 / 100.0,
    )


def lot_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Odd lots (1-99) ~45 % of prints, else 100 x geometric(0.55) round lots."""
    odd = rng.integers(1, 100, n)
    rounds = 100 * rng.geometric(0.55, n)
    return np.where(rng.random(n) < 0.45, odd, rounds).astype(np.float64)


class GbmSimulator:
    """Stateful chunked generator; `frames()` yields polars frames of consecutive trades."""

    def __init__(
        self,
        symbols: list[str] | None = None,
        seed: int = 0,
        rate: float = 1000.0,
        start: datetime | None = None,
        params: dict[str, SymbolParams] | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate (trades per simulated second) must be positive")
        self.symbols = list(symbols or universe.load_symbols())  # default: config/symbols.json
        self.rng = np.random.default_rng(seed)
        self.rate = rate
        self.now_us = ts_us(start or DEFAULT_START)
        chosen = [(params or {}).get(s) or params_for(s) for s in self.symbols]
        self.log_price = np.log([p.price for p in chosen])
        self.drift = np.array([p.drift for p in chosen])
        self.vol = np.array([p.volatility for p in chosen])
        self.last_us = np.full(len(self.symbols), self.now_us, dtype=np.int64)
        self.seq = np.zeros(len(self.symbols), dtype=np.int64)

    def chunk(self, n: int) -> pl.DataFrame:
        """The next `n` trades as a frame (symbol, ts_us, price, size, seq)."""
        rng = self.rng
        gaps = np.maximum(rng.exponential(1e6 / self.rate, n).astype(np.int64), 1)
        stamps = self.now_us + np.cumsum(gaps)
        self.now_us = int(stamps[-1])
        which = rng.integers(0, len(self.symbols), n)
        shocks = rng.standard_normal(n)
        prices = np.empty(n)
        seqs = np.empty(n, dtype=np.int64)
        for i in range(len(self.symbols)):
            mask = which == i
            count = int(mask.sum())
            if not count:
                continue
            t = stamps[mask]
            dt = np.diff(t, prepend=self.last_us[i]) / 1e6 / TRADING_SECONDS_PER_YEAR
            sigma = self.vol[i]
            steps = (self.drift[i] - 0.5 * sigma * sigma) * dt + sigma * np.sqrt(dt) * shocks[mask]
            path = self.log_price[i] + np.cumsum(steps)
            self.log_price[i] = path[-1]
            self.last_us[i] = t[-1]
            prices[mask] = np.maximum(np.round(np.exp(path), 2), 0.01)
            seqs[mask] = self.seq[i] + np.arange(1, count + 1)
            self.seq[i] += count
        return pl.DataFrame(
            {
                "symbol": np.asarray(self.symbols, dtype=object)[which].tolist(),
                "ts_us": stamps,
                "price": prices,
                "size": lot_sizes(rng, n),
                "seq": seqs,
            }
        )

    def frames(self, limit: int | None = None, chunk: int = CHUNK) -> Iterator[pl.DataFrame]:
        """Consecutive chunks, `limit` trades in total (None = forever)."""
        remaining = math.inf if limit is None else limit
        while remaining > 0:
            n = int(min(chunk, remaining))
            remaining -= n
            yield self.chunk(n)


def simulate_ticks(
    symbols: list[str] | None = None,
    seed: int = 0,
    rate: float = 1000.0,
    *,
    limit: int | None = None,
    start: datetime | None = None,
    speed: float = 0.0,
    params: dict[str, SymbolParams] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Tick]:
    """GBM trades at `rate`/simulated second; `speed`=1 paces them in real time, 0 = flat out."""
    sim = GbmSimulator(symbols, seed, rate, start, params)
    ticks = (t for frame in sim.frames(limit) for t in ticks_from_frame(frame, SOURCE))
    return pace(ticks, speed, clock=clock, sleep=sleep)
