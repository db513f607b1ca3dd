"""Figure builders and range helpers: pure functions, no browser, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import plotly.graph_objects as go
import polars as pl
import pytest

from dash_app import figures
from dash_app.data.dagster import DagsterStatus
from dash_app.data.kafka import KafkaStatus, PartitionLag
from dash_app.data.warehouse import ALERT_SCHEMA, BAR_SCHEMA, Bars, bucket_label
from dash_app.ranges import (
    RESOLUTIONS,
    day_bounds,
    density,
    min_bucket,
    parse_query,
    quick_range,
    zoom_range,
)
from stock_assets.lib import progress
from stock_assets.lib.calendar import TIMEZONE

TZ = TIMEZONE


def make_bars(n: int, bucket: timedelta, start: datetime | None = None) -> Bars:
    start = start or datetime(2024, 3, 4, 14, 30, tzinfo=UTC)  # Monday 09:30 New York
    rng = np.random.default_rng(1)
    close = 100 + np.cumsum(rng.normal(0, 0.2, n))
    open_ = np.concatenate([[100.0], close[:-1]])[:n]
    frame = pl.DataFrame(
        {
            "ts": [start + i * bucket for i in range(n)],
            "open": open_,
            "high": np.maximum(open_, close) + 0.1,
            "low": np.minimum(open_, close) - 0.1,
            "close": close,
            "volume": rng.uniform(1e3, 1e4, n),
            "vwap": close,
            "bars": np.ones(n, dtype=np.int64),
        },
        schema=BAR_SCHEMA,  # type: ignore[arg-type]
    )
    return Bars("TEST", start, start + n * bucket, bucket, frame)


def names(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data]


def test_market_figure_has_price_volume_rsi_macd_panes_and_overlays() -> None:
    signals = pl.DataFrame(
        {
            "session_date": [date(2024, 3, 4)],
            "strategy": ["rsi_reversal"],
            "side": ["buy"],
            "strength": [0.7],
            "price": [100.0],
            "reason": ["RSI crossed 30"],
        }
    )
    fig = figures.market_figure(make_bars(300, timedelta(minutes=1)), TZ, signals=signals)
    assert isinstance(fig.data[0], go.Candlestick)
    assert {"SMA 20", "SMA 50", "EMA 12", "EMA 26", "BB upper", "BB lower"} <= set(names(fig))
    assert {"RSI 14", "MACD", "MACD signal", "MACD hist", "Volume", "buy signals"} <= set(
        names(fig)
    )
    assert "sell signals" not in names(fig)
    buy = next(t for t in fig.data if t.name == "buy signals")
    assert "RSI crossed 30" in buy.hovertext[0] and "rsi_reversal" in buy.hovertext[0]
    assert {t.yaxis for t in fig.data} == {"y", "y2", "y3", "y4"}  # four panes
    assert fig.layout.meta["candles"] == 300 and fig.layout.meta["webgl"] is False
    # session-only minute candles hide nights and weekends
    bounds = [rb.bounds for rb in fig.layout.xaxis.rangebreaks]
    assert ("sat", "mon") in [tuple(b) for b in bounds]
    assert (16.0, 9.5) in [tuple(b) for b in bounds]
    # times are shown in exchange time: the first candle at 09:30
    first = datetime.fromtimestamp(fig.data[0].x[0] / 1000, UTC)
    assert first.strftime("%Y-%m-%d %H:%M") == "2024-03-04 09:30"
    assert fig.layout.xaxis.type == "date"


def test_alert_markers_sit_on_their_session_close_and_fill_the_table() -> None:
    bars = make_bars(390 * 2, timedelta(minutes=1))  # 2024-03-04 09:30 → into 03-05/06 (UTC)
    alerts = pl.DataFrame(
        {
            "session_date": [date(2024, 3, 4), date(2024, 2, 1)],  # the second is before the bars
            "symbol": ["TEST", "TEST"],
            "rule": ["daily_move_5pct", "old"],
            "kind": ["percent_move", "percent_move"],
            "direction": ["up", "up"],
            "value": [5.5, 6.0],
            "message": ["TEST rose 5.50%", "long ago"],
        },
        schema=ALERT_SCHEMA,
    )
    fig = figures.market_figure(bars, TZ, alerts=alerts)
    marker = next(t for t in fig.data if t.name == "alerts")
    local = bars.frame["ts"].dt.convert_time_zone(TZ)
    last_close = bars.frame.filter(local.dt.date() == date(2024, 3, 4))["close"][-1]
    assert list(marker.hovertext) == ["TEST rose 5.50%"]
    assert marker.y[0] == pytest.approx(last_close)
    assert datetime.fromtimestamp(marker.x[0] / 1000, UTC).strftime("%H:%M") == "15:59"
    assert figures.alert_rows(alerts)[0] == {
        "date": "2024-03-04",
        "symbol": "TEST",
        "rule": "daily_move_5pct",
        "message": "TEST rose 5.50%",
    }
    assert "alerts" not in names(figures.market_figure(bars, TZ, alerts=alerts.clear()))


def test_many_points_switch_lines_to_webgl_and_drop_rangebreaks() -> None:
    fig = figures.market_figure(make_bars(figures.GL_THRESHOLD + 1, timedelta(minutes=1)), TZ)
    lines = [t for t in fig.data if t.name in ("SMA 20", "RSI 14", "MACD")]
    assert all(isinstance(t, go.Scattergl) for t in lines)
    assert not fig.layout.xaxis.rangebreaks  # plotly's WebGL traces ignore rangebreaks
    assert fig.layout.meta["webgl"] is True


def test_daily_candles_use_stored_indicators() -> None:
    bars = make_bars(60, timedelta(days=1), datetime(2024, 3, 4, 5, tzinfo=UTC))
    days = bars.frame["ts"].dt.convert_time_zone(TZ).dt.date()
    stored = pl.DataFrame({"session_date": days, "close": bars.frame["close"]}).with_columns(
        *[pl.lit(50.0).alias(c) for c in ("sma_20", "sma_50", "ema_12", "ema_26", "rsi_14")],
        *[pl.lit(1.0).alias(c) for c in ("macd", "macd_signal", "macd_hist")],
        *[
            pl.lit(v).alias(c)
            for c, v in (("bb_upper", 110.0), ("bb_middle", 100.0), ("bb_lower", 90.0))
        ],
    )
    fig = figures.market_figure(bars, TZ, stored_indicators=stored)
    rsi = next(t for t in fig.data if t.name == "RSI 14")
    assert set(rsi.y) == {50.0}
    assert "analytics.indicators" in fig.layout.title.text


def test_empty_bars_give_a_message_not_an_error() -> None:
    fig = figures.market_figure(make_bars(0, timedelta(minutes=1)), TZ)
    assert "No bars" in fig.layout.annotations[0].text


def replay_progress() -> progress.Progress:
    """A replayed 2004 stream: raw ticks current, bars_daily 30 days behind, a 50-offset gap."""
    t = datetime(2004, 3, 9, 20, 55, tzinfo=UTC)
    times = {
        progress.PRODUCER: t,
        "raw_ticks": t,
        "bars_1m": t,
        "bars_daily": t - timedelta(days=30),
        "indicators": t - timedelta(days=30),
    }
    kind, reference, stages = progress.measure_stages(times, "replay", datetime.now(UTC))
    partitions = progress.partition_progress(
        {0: [(0, 100), (150, 200)], 1: [(0, 10)]}, {0: (0, 210), 1: (0, 10)}
    )
    return progress.Progress(kind, "replay", reference, datetime.now(UTC), stages, partitions)


def test_progress_figures_name_the_lagging_stage_and_the_gaps() -> None:
    found = replay_progress()
    fig = figures.progress_figure(found)
    bars = fig.data[0]
    assert list(bars.y) == ["producer", "raw_ticks", "bars_1m", "bars_daily", "indicators"]
    assert list(bars.x[:3]) == [0, 0, 0]  # 22 years of wall clock, no event-time lag
    assert bars.x[3] == pytest.approx(30)  # in days: the longest lag is over two days
    assert list(bars.marker.color) == [figures.UP] * 3 + [figures.DOWN] * 2
    assert "days behind the producer event time" in fig.layout.title.text
    table_rows = figures.stage_table(found)
    assert all(set(r) == set(table_rows[0]) for r in table_rows)  # columns come from row 0
    rows = {r["stage"]: r for r in table_rows}
    assert rows["bars_daily"]["status"] == "LAGGING" and rows["raw_ticks"]["status"] == "ok"
    assert rows["signals"]["event time"] is None and rows["signals"]["status"] == "LAGGING"
    offsets = figures.offsets_figure(found)
    assert [list(t.y) for t in offsets.data] == [[50, 0], [10, 0]]  # gap, tail per partition
    table = figures.partition_table(found)
    assert table[0]["gap offsets"] == 50 and table[0]["gap ranges"] == "100-150"
    assert table[0]["tail (not loaded yet)"] == 10


def test_pipeline_figures() -> None:
    down = figures.kafka_lag_figure(KafkaStatus(False, "Kafka unreachable at x"))
    assert "unreachable" in down.layout.annotations[0].text
    up = KafkaStatus(True, None, [PartitionLag("t", 0, 10, 4, "spark")])
    assert list(figures.kafka_lag_figure(up).data[0].y) == [6]
    sensors, checks = figures.dagster_tables(DagsterStatus(False, "Dagster unreachable"))
    assert sensors == [] and checks == []
    assert progress.format_lag(7200) == "2.0 h"


def test_resolution_follows_the_density_of_the_data() -> None:
    start = datetime(2004, 3, 1, 14, 30, tzinfo=UTC)
    # replayed daily bars: 18 prints a session over 30 sessions
    daily_like = [start + timedelta(days=d, minutes=20 * i) for d in range(30) for i in range(18)]
    minute = [start + timedelta(minutes=i) for i in range(400)]
    assert density(daily_like, TZ) == "daily"
    assert density(minute, TZ) == "intraday"
    assert density([], TZ) == "intraday"
    assert min_bucket("auto", "daily") == timedelta(days=1)
    assert min_bucket("auto", "intraday") == timedelta(minutes=1)
    assert min_bucket("1 h", "daily") == RESOLUTIONS["1 h"]


def test_records_make_tables_json_safe() -> None:
    rows = figures.records(
        [{"at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "d": date(2024, 1, 2), "x": 1.23456789}]
    )
    assert rows == [{"at": "2024-01-02 03:04:05 UTC", "d": "2024-01-02", "x": 1.2346}]


@pytest.mark.parametrize(
    ("minutes", "label"),
    [(1, "1 min"), (15, "15 min"), (120, "2 h"), (1440, "1 day"), (10080, "1 week")],
)
def test_bucket_label(minutes: int, label: str) -> None:
    assert bucket_label(timedelta(minutes=minutes)) == label


def test_ranges() -> None:
    assert parse_query("?symbol=AAPL&start=2024-01-02") == {"symbol": "AAPL", "start": "2024-01-02"}
    lo, hi = day_bounds(date(2024, 7, 1), date(2024, 7, 1), TZ)
    assert (lo.hour, hi - lo) == (4, timedelta(days=1))  # EDT midnight = 04:00 UTC
    first = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    last = datetime(2024, 12, 31, 20, 59, tzinfo=UTC)
    assert quick_range("1D", first, last, TZ) == (date(2024, 12, 31), date(2024, 12, 31))
    assert quick_range("All", first, last, TZ) == (date(2024, 1, 2), date(2024, 12, 31))
    zoom = zoom_range(
        {"xaxis4.range[0]": "2024-03-04 10:00", "xaxis4.range[1]": "2024-03-04 11:00:30.5"}, TZ
    )
    assert zoom == (
        datetime(2024, 3, 4, 15, tzinfo=UTC),
        datetime(2024, 3, 4, 16, 0, 30, 500000, tzinfo=UTC),
    )
    assert zoom_range({"xaxis.autorange": True}, TZ) is True
    assert zoom_range({"autosize": True}, TZ) is None
