"""lib/progress: gaps vs tail per partition, and lag per stage in event time (pure functions)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from stock_assets.lib import progress
from stock_assets.lib.calendar import TIMEZONE

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
T = datetime(2004, 3, 9, 20, 55, tzinfo=UTC)  # a replayed tick near a 2004 session's close


def test_gap_below_the_last_loaded_offset_is_counted_apart_from_the_tail() -> None:
    # loaded [0,100) and [150,200): 50 offsets left behind, 30 not loaded yet
    found = progress.partition_progress(
        {0: [(0, 100), (150, 200)], 1: [(0, 40)]}, {0: (0, 230), 1: (0, 40), 2: (5, 9)}
    )
    p0, p1, p2 = found
    assert (p0.gaps, p0.gap_offsets, p0.tail, p0.covered_end) == (((100, 150),), 50, 30, 200)
    assert p0.pending == 80
    assert (p1.gap_offsets, p1.tail) == (0, 0)
    # nothing loaded at all: everything retained is tail, not a gap
    assert (p2.covered_end, p2.gap_offsets, p2.tail) == (None, 0, 4)


def test_offsets_expired_by_retention_are_not_gaps() -> None:
    (p,) = progress.partition_progress({0: [(500, 600)]}, {0: (550, 700)})
    assert (p.gap_offsets, p.tail) == (0, 100)


@pytest.mark.parametrize("source", ["replay", "simulator", None])
def test_replayed_2000_era_data_keeping_pace_has_no_lag(source: str | None) -> None:
    times = {
        progress.PRODUCER: T,
        "raw_ticks": T - timedelta(seconds=20),
        "bars_1m": T - timedelta(minutes=1),
        "bars_daily": progress.session_end(date(2004, 3, 8), TIMEZONE),
        "indicators": progress.session_end(date(2004, 3, 8), TIMEZONE),
        "signals": progress.session_end(date(2004, 3, 8), TIMEZONE),
    }
    kind, reference, stages = progress.measure_stages(times, source, NOW)
    assert kind == "replay" and reference == T
    lag = {s.stage: s.lag_s for s in stages}
    assert lag[progress.PRODUCER] == 0 and lag["raw_ticks"] == 20
    assert lag["bars_daily"] == pytest.approx(24 * 3600 - 5 * 60)  # one session, not 22 years
    snapshot = progress.Progress(kind, source, reference, NOW, stages)
    for stage in ("raw_ticks", "bars_1m", "bars_daily", "indicators", "signals"):
        assert progress.freshness_verdict(snapshot, stage).passed, stage


def test_the_stage_that_lags_is_named_with_its_event_time_lag() -> None:
    times = {
        progress.PRODUCER: T,
        "raw_ticks": T,
        "bars_1m": T,
        "bars_daily": T - timedelta(days=30),
        "indicators": T - timedelta(days=30),
        "signals": T - timedelta(days=31),
    }
    kind, reference, stages = progress.measure_stages(times, "replay", NOW)
    snapshot = progress.Progress(kind, "replay", reference, NOW, stages)
    worst = snapshot.lagging_stage()
    assert worst is not None and worst.stage == "bars_daily"
    assert worst.behind_upstream_s == 30 * 86400
    verdict = progress.freshness_verdict(snapshot, "bars_daily")
    assert not verdict.passed and "30.0 d behind the producer" in verdict.description
    assert progress.freshness_verdict(snapshot, "raw_ticks").passed
    assert "bars_daily lags 30.0 d" in progress.summary(snapshot)


def test_a_live_stream_is_measured_against_the_wall_clock() -> None:
    live_tick = NOW - timedelta(minutes=3)
    times = {progress.PRODUCER: live_tick, "raw_ticks": live_tick - timedelta(minutes=2)}
    kind, reference, stages = progress.measure_stages(times, "polygon", NOW)
    assert kind == "live" and reference == NOW
    by = {s.stage: s for s in stages}
    assert by[progress.PRODUCER].lag_s == 180 and by["raw_ticks"].lag_s == 300
    assert by["bars_1m"].event_time is None and by["bars_1m"].lag_s is None
    snapshot = progress.Progress(kind, "polygon", reference, NOW, stages)
    assert progress.freshness_verdict(snapshot, "raw_ticks").passed  # 2 min behind the stream
    assert not progress.freshness_verdict(snapshot, "bars_1m").passed  # holds nothing


def test_nothing_produced_is_not_a_failure() -> None:
    kind, reference, stages = progress.measure_stages({}, None, NOW)
    snapshot = progress.Progress(kind, None, reference, NOW, stages)
    assert progress.freshness_verdict(snapshot, "signals").passed
    assert snapshot.lagging_stage() is None


def test_stage_times_of_daily_and_minute_rows() -> None:
    tz = TIMEZONE
    assert progress.stage_time(date(2004, 3, 9), "session", tz) == datetime(
        2004, 3, 9, 21, tzinfo=UTC
    )
    assert progress.stage_time(T, "minute", tz) == T + timedelta(minutes=1)
    assert progress.stage_time(None, "instant", tz) is None


def test_an_empty_stage_is_named_and_skipped_as_upstream() -> None:
    times = {"bars_1m": T, "signals": T - timedelta(days=3)}  # no ticks, no daily stages
    kind, reference, stages = progress.measure_stages(times, None, NOW)
    snapshot = progress.Progress(kind, None, reference, NOW, stages)
    assert reference == T  # the newest loaded event time stands in for the producer
    assert snapshot.stage("signals").behind_upstream_s == 3 * 86400  # behind bars_1m
    text = progress.summary(snapshot)
    assert "signals lags 3.0 d" in text
    assert "no data yet in raw_ticks, bars_daily, indicators" in text
