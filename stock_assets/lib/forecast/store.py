"""Warehouse reads and writes of the forecasts (psycopg 3, bound parameters).

Callers own the connection; every write runs inside the caller's transaction and is idempotent
(delete the rows it replaces, then COPY).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl
import psycopg

from stock_assets.lib import calendar, frames, tables
from stock_assets.lib.forecast import models
from stock_assets.lib.forecast.evaluate import METRIC_SCHEMA, model_columns
from stock_assets.lib.forecast.features import INDICATOR_INPUTS

BARS_COLUMNS = ("symbol", "session_date", "open", "high", "low", "close", "volume")
PREDICTION_COLUMNS = tables.PREDICTIONS.written


def read_inputs(
    conn: psycopg.Connection, since: date | None = None, until: date | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(bars, indicators) of every symbol for sessions in [since, until]."""
    end = None if until is None else until + timedelta(days=1)
    bars = frames.read_window(conn, tables.BARS_DAILY, since, end, columns=BARS_COLUMNS)
    ind = frames.read_window(
        conn, tables.INDICATORS, since, end, columns=["symbol", "session_date", *INDICATOR_INPUTS]
    )
    return bars.sort("symbol", "session_date"), ind


def close_instants(days: Sequence[date]) -> pl.DataFrame:
    """session_date -> close instant (UTC) from the XNYS calendar; 16:00 New York otherwise."""
    frame = pl.DataFrame({"session_date": sorted(set(days))}, schema={"session_date": pl.Date})
    if frame.is_empty():
        return frame.with_columns(pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("close_at"))
    table = calendar.sessions(frame["session_date"].min(), frame["session_date"].max())  # type: ignore[arg-type]
    fallback = (
        (pl.col("session_date").cast(pl.Datetime("us")).dt.offset_by("16h"))
        .dt.replace_time_zone(calendar.TIMEZONE)
        .dt.convert_time_zone("UTC")
    )
    return frame.join(
        table.select("session_date", pl.col("close").alias("close_at")),
        on="session_date",
        how="left",
    ).with_columns(pl.col("close_at").fill_null(fallback))


def next_sessions(day: date, horizon: int) -> date:
    """The exchange session `horizon` sessions after `day` (for forecasts whose target is ahead)."""
    ahead = calendar.sessions(day + timedelta(days=1), day + timedelta(days=horizon * 2 + 14))
    if ahead.height < horizon:
        raise ValueError(f"the calendar has no session {horizon} after {day}")
    return ahead["session_date"][horizon - 1]


def long_predictions(wide: pl.DataFrame, kind: str, versions: dict[str, str]) -> pl.DataFrame:
    """Wide walk-forward/live frame (one column per model) -> PREDICTION_COLUMNS rows."""
    parts = []
    for model in model_columns(wide):
        lower, upper = f"{model}_lower", f"{model}_upper"
        version = (
            pl.format("fold {}", pl.col("fold"))
            if "fold" in wide.columns
            else pl.lit(versions[model])
        )
        parts.append(
            wide.filter(pl.col(model).is_not_null()).select(
                "symbol",
                pl.col("horizon").cast(pl.Int32),
                pl.lit(model).alias("model"),
                pl.lit(kind).alias("kind"),
                "session_date",
                "target_date",
                version.alias("model_version"),
                pl.col(model).alias("pred_return"),
                (pl.col(lower) if lower in wide.columns else pl.lit(None, pl.Float64)).alias(
                    "lower_return"
                ),
                (pl.col(upper) if upper in wide.columns else pl.lit(None, pl.Float64)).alias(
                    "upper_return"
                ),
                (pl.col("actual") if "actual" in wide.columns else pl.lit(None, pl.Float64)).alias(
                    "actual_return"
                ),
            )
        )
    out = pl.concat(parts)
    issued = close_instants(out["session_date"].to_list())
    target = close_instants(out["target_date"].to_list()).rename(
        {"session_date": "target_date", "close_at": "target_at"}
    )
    return (
        out.join(issued.rename({"close_at": "issued_at"}), on="session_date", how="left")
        .join(target, on="target_date", how="left")
        .select(PREDICTION_COLUMNS)
    )


def replace_walk_forward(conn: psycopg.Connection, rows: pl.DataFrame) -> int:
    """Replace every walk-forward forecast of the horizons in `rows`."""
    horizons = rows["horizon"].unique().to_list()
    where = {"kind": "walk_forward", "horizon": horizons}
    return frames.replace_window(conn, tables.PREDICTIONS, rows, None, None, where)


def replace_live(conn: psycopg.Connection, rows: pl.DataFrame, first: date, last: date) -> int:
    """Replace the live forecasts issued in sessions first..last."""
    end = last + timedelta(days=1)
    return frames.replace_window(conn, tables.PREDICTIONS, rows, first, end, {"kind": "live"})


def replace_evaluation(
    conn: psycopg.Connection, table: pl.DataFrame, versions: dict[int, str]
) -> int:
    """Replace the evaluation rows of the horizons in `table` (model_version per horizon)."""
    rows = table.select(list(METRIC_SCHEMA)).with_columns(
        pl.when(pl.col("model") == models.MODEL)
        .then(pl.col("horizon").replace_strict(versions, default=None, return_dtype=pl.String))
        .otherwise(None)
        .alias("model_version")
    )
    horizons = table["horizon"].unique().to_list()
    return frames.replace_window(conn, tables.EVALUATION, rows, None, None, {"horizon": horizons})
