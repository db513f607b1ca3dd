"""Raw ticks → cleaned, split-adjusted 1-minute bars (polars), with a count for every rule.

Rules, in order:
1. out-of-order: a tick older than one that arrived before it (same symbol, Kafka order) is
   counted, then placed by its exchange timestamp (bars are built in ts order, not arrival order);
2. duplicates: the same (symbol, source, seq) delivered twice — the first arrival is kept;
3. unknown symbols (not in the configured universe) are dropped and counted;
4. non-positive prices are bad prints;
5. ticks outside a session (weekends, holidays, pre/post-market, after a half-day's 13:00 close)
   are counted and dropped; a print exactly at the close (closing auction) joins the last minute;
6. absurd jumps: a print more than `max_jump` away from the centred rolling median of its
   neighbours in the same symbol-session is a bad print. The reference never spans sessions, so
   overnight gaps (AAPL -47 % on 2000-09-29) and split days are not mistaken for bad prints;
7. bars are aggregated per minute and put on today's share basis with the splits table.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import polars as pl

from stock_assets.lib import splits as splits_lib
from stock_assets.lib import tables
from stock_assets.lib.calendar import TIMEZONE

TICK_SCHEMA = tables.RAW_TICKS.schema()  # what the loader writes (no ingested_at)
BAR_COLUMNS = tables.BARS_1M.names


@dataclass(frozen=True)
class CleaningRules:
    max_jump: float = 0.30  # relative distance from the reference that makes a bad print
    reference_window: int = 21  # prints in the centred rolling median


@dataclass
class CleaningResult:
    bars: pl.DataFrame  # BAR_COLUMNS + session_date
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        keys = ("duplicates", "unknown_symbol", "non_positive", "outside_session", "bad_jump")
        return sum(self.counts[k] for k in keys)


def clean_ticks(
    ticks: pl.DataFrame,
    sessions: pl.DataFrame,
    splits: pl.DataFrame,
    symbols: Collection[str] | None = None,
    rules: CleaningRules = CleaningRules(),
) -> CleaningResult:
    """Clean ticks (TICK_SCHEMA) into 1-minute bars for the given sessions (calendar.sessions)."""
    counts = {"input": ticks.height}
    # Kafka arrival order: one symbol lives in one partition, so offsets order its ticks.
    df = ticks.with_row_index("_arrival").sort("kafka_partition", "kafka_offset", "_arrival")
    counts["out_of_order"] = df.select(
        (pl.col("ts") < pl.col("ts").cum_max().shift(1).over("symbol")).sum()
    ).item()

    before = df.height
    df = df.unique(subset=["symbol", "source", "seq"], keep="first", maintain_order=True)
    counts["duplicates"] = before - df.height

    before = df.height
    if symbols is not None:
        df = df.filter(pl.col("symbol").is_in(list(symbols)))
    counts["unknown_symbol"] = before - df.height

    before = df.height
    df = df.filter(pl.col("price") > 0)
    counts["non_positive"] = before - df.height

    before = df.height
    df = (
        df.with_columns(pl.col("ts").dt.convert_time_zone(TIMEZONE).dt.date().alias("session_date"))
        .join(sessions.select("session_date", "open", "close"), on="session_date", how="inner")
        .filter((pl.col("ts") >= pl.col("open")) & (pl.col("ts") <= pl.col("close")))
    )
    counts["outside_session"] = before - df.height

    before = df.height
    reference = (
        pl.col("price")
        .rolling_median(rules.reference_window, min_samples=1, center=True)
        .over("symbol", "session_date")
    )
    df = (
        df.sort("symbol", "ts", "seq")
        .with_columns(reference.alias("_reference"))
        .filter((pl.col("price") / pl.col("_reference") - 1).abs() <= rules.max_jump)
    )
    counts["bad_jump"] = before - df.height
    counts["accepted"] = df.height

    minute = pl.col("ts").dt.truncate("1m")
    bars = (
        df.with_columns(
            # the closing print (ts == close) belongs to the session's last minute
            pl.when(minute == pl.col("close"))
            .then(minute - pl.duration(minutes=1))
            .otherwise(minute)
            .alias("_minute")
        )
        .group_by("symbol", "_minute", maintain_order=True)
        .agg(
            pl.col("session_date").first(),
            pl.col("price").first().alias("open"),
            pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"),
            pl.col("price").last().alias("close"),
            pl.col("size").sum().alias("volume"),
            (pl.col("price") * pl.col("size")).sum().alias("_notional"),
            pl.col("price").mean().alias("_mean_price"),
            pl.len().cast(pl.Int32).alias("trade_count"),
        )
        .rename({"_minute": "ts"})
    )
    factor = splits_lib.adjustment_factors(bars.select("symbol", "session_date"), splits)
    prices = ["open", "high", "low", "close"]
    bars = (
        bars.with_columns(
            pl.when(pl.col("volume") > 0)
            .then(pl.col("_notional") / pl.col("volume"))
            .otherwise(pl.col("_mean_price"))
            .alias("vwap")
        )
        .with_columns(factor.alias("_factor"))
        .with_columns(
            *[(pl.col(c) / pl.col("_factor")).alias(c) for c in [*prices, "vwap"]],
            (pl.col("volume") * pl.col("_factor")).alias("volume"),
        )
        .select(*BAR_COLUMNS, "session_date")
        .sort("symbol", "ts")
    )
    counts["bars"] = bars.height
    return CleaningResult(bars=bars, counts=counts)
