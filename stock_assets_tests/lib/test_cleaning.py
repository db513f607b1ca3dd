"""Cleaning rules as pure, parametrized tests: duplicates, out-of-order, bad prints, sessions,
half-days and split adjustment, plus the splits derived from the bundled real history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from stock_assets.lib import calendar, cleaning, splits
from stock_assets.lib.migrations import MIGRATIONS_DIR

DAY = date(2026, 7, 29)  # a regular session: 09:30-16:00 EDT = 13:30-20:00 UTC
HALF_DAY = date(2026, 11, 27)  # day after Thanksgiving: 09:30-13:00 EST = 14:30-18:00 UTC
OPEN = datetime(2026, 7, 29, 13, 30, tzinfo=UTC)


def ticks(rows: list[tuple[datetime, str, float, int]]) -> pl.DataFrame:
    """(ts, symbol, price, seq) in Kafka arrival order (one partition, offsets 0..n-1)."""
    return pl.DataFrame(
        {
            "ts": [r[0] for r in rows],
            "symbol": [r[1] for r in rows],
            "price": [r[2] for r in rows],
            "size": [100.0] * len(rows),
            "source": ["test"] * len(rows),
            "seq": [r[3] for r in rows],
            "kafka_partition": [0] * len(rows),
            "kafka_offset": list(range(len(rows))),
        },
        schema=cleaning.TICK_SCHEMA,
    )


def clean(
    frame: pl.DataFrame, day: date = DAY, split_rows: list[splits.Split] | None = None
) -> cleaning.CleaningResult:
    return cleaning.clean_ticks(
        frame, calendar.sessions(day, day), splits.frame(split_rows or []), symbols={"AAPL"}
    )


def at(minutes: float, base: datetime = OPEN) -> datetime:
    return base + timedelta(minutes=minutes)


def test_duplicates_keep_the_first_arrival() -> None:
    result = clean(
        ticks([(at(0), "AAPL", 100.0, 1), (at(0), "AAPL", 100.0, 1), (at(1), "AAPL", 101.0, 2)])
    )
    assert result.counts["duplicates"] == 1
    assert result.bars["trade_count"].to_list() == [1, 1]


def test_out_of_order_ticks_are_counted_and_placed_by_timestamp() -> None:
    # arrival: 10:30:40, 10:30:10 (late), 10:30:50 -> open is the 10:30:10 print
    rows = [
        (at(0.67), "AAPL", 101.0, 2),
        (at(0.17), "AAPL", 100.0, 1),
        (at(0.83), "AAPL", 102.0, 3),
    ]
    result = clean(ticks(rows))
    assert result.counts["out_of_order"] == 1
    bar = result.bars.row(0, named=True)
    assert (bar["open"], bar["high"], bar["low"], bar["close"]) == (100.0, 102.0, 100.0, 102.0)


@pytest.mark.parametrize(
    ("bad_price", "rule"),
    [(0.0, "non_positive"), (-5.0, "non_positive"), (1000.0, "bad_jump"), (10.0, "bad_jump")],
)
def test_bad_prints_are_rejected_and_counted(bad_price: float, rule: str) -> None:
    rows = [(at(i), "AAPL", 100.0 + 0.1 * i, i + 1) for i in range(10)]
    rows.insert(5, (at(4.5), "AAPL", bad_price, 99))
    result = clean(ticks(rows))
    assert result.counts[rule] == 1
    assert result.rejected == 1
    assert result.bars["high"].max() < 101 and result.bars["low"].min() >= 100  # type: ignore[operator]


def test_a_big_but_real_intraday_move_is_kept() -> None:
    # AAPL 2000-09-29 opened ~47 % below the previous close: the reference is per session
    rows = [(at(i), "AAPL", p, i + 1) for i, p in enumerate([28.19, 29.0, 25.38, 25.75])]
    assert clean(ticks(rows)).rejected == 0


@pytest.mark.parametrize(
    ("ts", "inside"),
    [
        (datetime(2026, 7, 29, 13, 29, 59, tzinfo=UTC), False),  # pre-market
        (datetime(2026, 7, 29, 13, 30, tzinfo=UTC), True),  # the open
        (datetime(2026, 7, 29, 20, 0, tzinfo=UTC), True),  # the closing print, at 16:00
        (datetime(2026, 7, 29, 20, 0, 1, tzinfo=UTC), False),  # after hours
        (datetime(2026, 8, 1, 15, 0, tzinfo=UTC), False),  # a Saturday
    ],
)
def test_session_boundaries(ts: datetime, inside: bool) -> None:
    result = cleaning.clean_ticks(
        ticks([(ts, "AAPL", 100.0, 1)]),
        calendar.sessions(date(2026, 7, 29), date(2026, 8, 1)),
        splits.frame([]),
    )
    assert result.counts["outside_session"] == (0 if inside else 1)


def test_the_closing_print_joins_the_last_minute() -> None:
    close = datetime(2026, 7, 29, 20, 0, tzinfo=UTC)
    result = clean(
        ticks([(close - timedelta(seconds=30), "AAPL", 100.0, 1), (close, "AAPL", 100.5, 2)])
    )
    assert result.bars["ts"].to_list() == [close - timedelta(minutes=1)]
    assert result.bars["close"].item() == 100.5


@pytest.mark.parametrize(
    ("hour_utc", "minute", "inside"),
    [(14, 30, True), (17, 59, True), (18, 0, True), (18, 1, False), (20, 59, False)],
)
def test_half_day_closes_at_13_00(hour_utc: int, minute: int, inside: bool) -> None:
    sessions = calendar.sessions(HALF_DAY, HALF_DAY)
    assert sessions["half_day"].to_list() == [True]
    assert sessions["minutes"].to_list() == [210]
    ts = datetime(2026, 11, 27, hour_utc, minute, tzinfo=UTC)
    result = clean(ticks([(ts, "AAPL", 100.0, 1)]), day=HALF_DAY)
    assert result.counts["outside_session"] == (0 if inside else 1)


def test_unknown_symbols_are_dropped() -> None:
    result = clean(ticks([(at(0), "AAPL", 100.0, 1), (at(0), "ZZZZ", 5.0, 1)]))
    assert result.counts["unknown_symbol"] == 1
    assert result.bars["symbol"].to_list() == ["AAPL"]


@pytest.mark.parametrize(
    ("day", "factor"),
    [
        (date(2000, 3, 1), 4.0),  # before both AAPL splits
        (date(2000, 6, 20), 4.0),
        (date(2000, 6, 21), 2.0),  # ex-date of the first: trades on the new basis
        (date(2005, 2, 25), 2.0),
        (date(2005, 2, 28), 1.0),
    ],
)
def test_split_adjustment_puts_history_on_todays_basis(day: date, factor: float) -> None:
    open_ = calendar.sessions(day, day)["open"].item()
    result = clean(
        ticks([(open_, "AAPL", 120.0, 1)]), day=day, split_rows=splits.reference_splits()
    )
    bar = result.bars.row(0, named=True)
    assert bar["close"] == pytest.approx(120.0 / factor)
    assert bar["volume"] == pytest.approx(100.0 * factor)


def test_splits_derived_from_the_real_history() -> None:
    found = {(s.symbol, s.ex_date, s.ratio) for s in splits.reference_splits()}
    assert found == {
        ("AAPL", date(2000, 6, 21), 2.0),
        ("AAPL", date(2005, 2, 28), 2.0),
        ("MSFT", date(2003, 2, 18), 2.0),
    }  # not AAPL's 2000-09-29 crash, not MSFT's 2004-11-15 special dividend


def test_the_migration_seeds_exactly_the_derived_splits() -> None:
    seed = (MIGRATIONS_DIR / "0003_market_splits.sql").read_text()
    for s in splits.reference_splits():
        assert f"('{s.symbol}', '{s.ex_date}', {s.ratio}," in seed


@pytest.mark.parametrize(
    ("step", "expected"), [(2.0, 2.0), (3.0, 3.0), (1.5, 1.5), (0.5, 0.5), (1.112, None)]
)
def test_derive_splits_wants_a_nice_ratio(step: float, expected: float | None) -> None:
    found = splits.derive_splits(
        "X", [date(2020, 1, 2), date(2020, 1, 3)], [100.0, 100.0 / step], [10.0, 10.0]
    )
    assert [s.ratio for s in found] == ([expected] if expected else [])
