"""Trading signals from indicators: crossovers and band/zone entries, each with a readable reason.

A signal fires on the session where a condition becomes true (a cross), never on every session
it stays true. Strength in [0, 1] measures how decisive the move was:
- sma_crossover: SMA20 crosses SMA50; strength = day-over-day swing of (SMA20-SMA50)/SMA50,
  1 at 1 %;
- rsi_mean_reversion: RSI14 enters < 30 (buy) or > 70 (sell); 1 at 10 points past the threshold;
- macd_cross: MACD crosses its signal line; strength = |histogram| / close, 1 at 0.5 %;
- bollinger_breakout: close breaks out of the 20/2 bands (buy above upper, sell below lower);
  strength = distance past the band / (upper - middle).
"""

from __future__ import annotations

import polars as pl

from stock_assets.lib.trading.strategies import RsiMeanReversionParams

SIGNAL_COLUMNS = ("symbol", "session_date", "strategy", "side", "strength", "price", "reason")
SIGNAL_SCHEMA = {
    "symbol": pl.String,
    "session_date": pl.Date,
    "strategy": pl.String,
    "side": pl.String,
    "strength": pl.Float64,
    "price": pl.Float64,
    "reason": pl.String,
}
# The stored indicators use the strategies' default parameters; the thresholds come from there too.
RSI_OVERSOLD = RsiMeanReversionParams().oversold
RSI_OVERBOUGHT = RsiMeanReversionParams().overbought


def _prev(name: str) -> pl.Expr:
    return pl.col(f"prev_{name}")


def _num(name: str) -> pl.Expr:
    return pl.col(name).round(2).cast(pl.String)


def _strength(expr: pl.Expr) -> pl.Expr:
    return expr.abs().clip(0.0, 1.0).fill_nan(0.0)


def _signal(strategy: str, side: pl.Expr, strength: pl.Expr, reason: pl.Expr) -> list[pl.Expr]:
    return [
        pl.lit(strategy).alias("strategy"),
        side.alias("side"),
        _strength(strength).alias("strength"),
        pl.col("close").alias("price"),
        reason.alias("reason"),
    ]


def generate_signals(indicators: pl.DataFrame) -> pl.DataFrame:
    """Signals for every (symbol, session_date) of `indicators` whose previous row is present."""
    df = indicators.sort("symbol", "session_date")
    # previous-session values first: the per-strategy filters below must not shift filtered rows
    df = df.with_columns(
        pl.col(c).shift(1).over("symbol").alias(f"prev_{c}")
        for c in ("sma_20", "sma_50", "rsi_14", "macd_hist", "close", "bb_upper", "bb_lower")
    )
    spread = pl.col("sma_20") - pl.col("sma_50")
    prev_spread = _prev("sma_20") - _prev("sma_50")
    up = (spread > 0) & (prev_spread <= 0)
    down = (spread < 0) & (prev_spread >= 0)
    sma = df.filter(up | down).select(
        "symbol",
        "session_date",
        *_signal(
            "sma_crossover",
            pl.when(up).then(pl.lit("buy")).otherwise(pl.lit("sell")),
            (spread - prev_spread) / pl.col("sma_50") / 0.01,
            pl.format(
                "SMA20 crossed {} SMA50 ({} {} {})",
                pl.when(up).then(pl.lit("above")).otherwise(pl.lit("below")),
                _num("sma_20"),
                pl.when(up).then(pl.lit(">")).otherwise(pl.lit("<")),
                _num("sma_50"),
            ),
        ),
    )

    enter_low = (pl.col("rsi_14") < RSI_OVERSOLD) & (_prev("rsi_14") >= RSI_OVERSOLD)
    enter_high = (pl.col("rsi_14") > RSI_OVERBOUGHT) & (_prev("rsi_14") <= RSI_OVERBOUGHT)
    rsi = df.filter(enter_low | enter_high).select(
        "symbol",
        "session_date",
        *_signal(
            "rsi_mean_reversion",
            pl.when(enter_low).then(pl.lit("buy")).otherwise(pl.lit("sell")),
            pl.when(enter_low)
            .then((RSI_OVERSOLD - pl.col("rsi_14")) / 10)
            .otherwise((pl.col("rsi_14") - RSI_OVERBOUGHT) / 10),
            pl.format(
                "RSI14 {} ({} {} {})",
                pl.when(enter_low)
                .then(pl.lit("fell into oversold"))
                .otherwise(pl.lit("rose into overbought")),
                _num("rsi_14"),
                pl.when(enter_low).then(pl.lit("<")).otherwise(pl.lit(">")),
                pl.when(enter_low)
                .then(pl.lit(f"{RSI_OVERSOLD:g}"))
                .otherwise(pl.lit(f"{RSI_OVERBOUGHT:g}")),
            ),
        ),
    )

    hist, prev_hist = pl.col("macd_hist"), _prev("macd_hist")
    macd_up = (hist > 0) & (prev_hist <= 0)
    macd_down = (hist < 0) & (prev_hist >= 0)
    macd = df.filter(macd_up | macd_down).select(
        "symbol",
        "session_date",
        *_signal(
            "macd_cross",
            pl.when(macd_up).then(pl.lit("buy")).otherwise(pl.lit("sell")),
            hist / pl.col("close") / 0.005,
            pl.format(
                "MACD crossed {} its signal line ({} {} {})",
                pl.when(macd_up).then(pl.lit("above")).otherwise(pl.lit("below")),
                _num("macd"),
                pl.when(macd_up).then(pl.lit(">")).otherwise(pl.lit("<")),
                _num("macd_signal"),
            ),
        ),
    )

    close, prev_close = pl.col("close"), _prev("close")
    half_band = pl.col("bb_upper") - pl.col("bb_middle")
    above = (close > pl.col("bb_upper")) & (prev_close <= _prev("bb_upper"))
    below = (close < pl.col("bb_lower")) & (prev_close >= _prev("bb_lower"))
    bands = df.filter(above | below).select(
        "symbol",
        "session_date",
        *_signal(
            "bollinger_breakout",
            pl.when(above).then(pl.lit("buy")).otherwise(pl.lit("sell")),
            pl.when(above)
            .then((close - pl.col("bb_upper")) / half_band)
            .otherwise((pl.col("bb_lower") - close) / half_band),
            pl.format(
                "close broke {} the {} Bollinger band ({} {} {})",
                pl.when(above).then(pl.lit("above")).otherwise(pl.lit("below")),
                pl.when(above).then(pl.lit("upper")).otherwise(pl.lit("lower")),
                _num("close"),
                pl.when(above).then(pl.lit(">")).otherwise(pl.lit("<")),
                pl.when(above).then(_num("bb_upper")).otherwise(_num("bb_lower")),
            ),
        ),
    )
    frames = [f.cast(SIGNAL_SCHEMA) for f in (sma, rsi, macd, bands)]  # type: ignore[arg-type]
    return pl.concat(frames).select(SIGNAL_COLUMNS).sort("symbol", "session_date", "strategy")
