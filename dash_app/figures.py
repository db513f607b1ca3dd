"""Figure builders: data in, `go.Figure` out. Pure (no I/O, no Dash): tested without a browser."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from dash_app.data import Bars, DagsterStatus, Freshness, KafkaStatus
from stock_assets.lib.indicators import compute_indicators

GL_THRESHOLD = 2000  # more points than this per line → WebGL (Scattergl) instead of SVG
SESSION_OPEN, SESSION_CLOSE = time(9, 30), time(16, 0)
UP, DOWN = "#26a69a", "#ef5350"
ALERT_COLOR = "#ffb300"
OVERLAYS = ("sma_20", "sma_50", "ema_12", "ema_26")
OVERLAY_COLORS = {
    "sma_20": "#1f77b4",
    "sma_50": "#ff7f0e",
    "ema_12": "#9467bd",
    "ema_26": "#8c564b",
    "bb": "rgba(120,120,120,0.8)",
}


def to_local(ts: pl.Series, tz: str) -> np.ndarray:
    """UTC timestamps as exchange-local wall-clock epoch milliseconds (float64).

    A plotly date axis reads numbers as epoch ms and shows them as UTC wall-clock time, so local
    wall-clock ms display as exchange time. Numbers ship as base64 typed arrays, 8 bytes a point,
    where datetimes would ship as ~30-byte ISO strings for every trace again.
    """
    local = ts.dt.convert_time_zone(tz).dt.replace_time_zone(None)
    return local.dt.epoch("ms").cast(pl.Float64).to_numpy()


def local_ms(values: Sequence[datetime]) -> np.ndarray:
    """Naive exchange-local datetimes as epoch milliseconds (see `to_local`)."""
    return np.array([v.replace(tzinfo=UTC).timestamp() * 1000 for v in values], dtype=np.float64)


def empty_figure(message: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        template="plotly_white",
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": message,
                "showarrow": False,
                "font": {"size": 16},
                "xref": "paper",
                "yref": "paper",
            }
        ],
        margin={"l": 20, "r": 20, "t": 20, "b": 20},
    )
    return fig


def bar_indicators(frame: pl.DataFrame) -> pl.DataFrame:
    """SMA/EMA/Bollinger/RSI/MACD over the displayed candles (same TA-Lib math as the assets)."""
    daily_like = frame.select(
        symbol=pl.lit("_"),
        session_date="ts",
        high="high",
        low="low",
        close="close",
        volume="volume",
    )
    return compute_indicators(daily_like).rename({"session_date": "ts"}).drop("symbol")


def stored_indicators_on_bars(frame: pl.DataFrame, stored: pl.DataFrame, tz: str) -> pl.DataFrame:
    """Daily analytics.indicators rows aligned to daily candles (bucket start = local midnight)."""
    days = frame.select("ts", session_date=pl.col("ts").dt.convert_time_zone(tz).dt.date())
    return days.join(stored.drop("close"), on="session_date", how="left").drop("session_date")


def _line(x: Any, y: Any, name: str, color: str, gl: bool, **kw: Any) -> go.Scatter | go.Scattergl:
    cls = go.Scattergl if gl else go.Scatter
    return cls(x=x, y=y, name=name, mode="lines", line={"color": color, "width": 1.2}, **kw)


def _session_only(local_ms_: np.ndarray, bucket: timedelta) -> bool:
    if bucket >= timedelta(days=1) or len(local_ms_) == 0:
        return False
    minutes = (local_ms_ // 60_000).astype(np.int64) % 1440
    opens = SESSION_OPEN.hour * 60 + SESSION_OPEN.minute
    closes = SESSION_CLOSE.hour * 60
    return bool(((minutes >= opens) & (minutes < closes)).all())


def signal_x(session_dates: Sequence[date], bucket: timedelta) -> list[datetime]:
    """Where a daily signal sits on the time axis: its session's last minute (intraday candles)
    or the session's daily candle."""
    if bucket >= timedelta(days=1):
        return [datetime.combine(d, time()) for d in session_dates]
    last = (datetime.combine(date.min, SESSION_CLOSE) - timedelta(minutes=1)).time()
    return [datetime.combine(d, last) for d in session_dates]


def alert_markers(frame: pl.DataFrame, alerts: pl.DataFrame, tz: str) -> pl.DataFrame:
    """Alerts (session_date, message) with the y of their marker: the last close of the candle
    holding their session (alerts before the first candle are dropped)."""
    closes = frame.group_by(
        pl.col("ts").dt.convert_time_zone(tz).dt.date().alias("session_date"), maintain_order=True
    ).agg(pl.col("close").last())
    return (
        alerts.select("session_date", "message")
        .sort("session_date")
        .join_asof(closes.sort("session_date"), on="session_date", strategy="backward")
        .drop_nulls("close")
    )


def alert_rows(alerts: pl.DataFrame) -> list[dict[str, Any]]:
    """The alerts table: one row per alert, newest first."""
    return records(
        alerts.select(
            date="session_date", symbol="symbol", rule="rule", message="message"
        ).to_dicts()
    )


def market_figure(
    bars: Bars,
    tz: str,
    *,
    stored_indicators: pl.DataFrame | None = None,
    signals: pl.DataFrame | None = None,
    alerts: pl.DataFrame | None = None,
    title: str = "",
) -> go.Figure:
    """Candles + volume, SMA/EMA/Bollinger on the price pane, RSI and MACD panes, signal and
    alert markers.

    Indicators come from analytics.indicators for daily candles when available, else they are
    computed over the displayed candles.
    """
    frame = bars.frame
    if frame.is_empty():
        return empty_figure(f"No bars for {bars.symbol} in the selected range")
    x = to_local(frame["ts"], tz)
    n = frame.height
    gl = n > GL_THRESHOLD
    if (
        bars.bucket >= timedelta(days=1)
        and stored_indicators is not None
        and not stored_indicators.is_empty()
    ):
        ind = stored_indicators_on_bars(frame, stored_indicators, tz)
        source = "analytics.indicators"
    else:
        ind = bar_indicators(frame)
        source = f"computed on {bars.label} candles"

    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.02,
        row_heights=[0.55, 0.13, 0.14, 0.18],
        subplot_titles=None,
    )
    fig.add_trace(
        go.Candlestick(
            x=x,
            open=frame["open"].to_numpy(),
            high=frame["high"].to_numpy(),
            low=frame["low"].to_numpy(),
            close=frame["close"].to_numpy(),
            name=bars.symbol,
            increasing={"line": {"color": UP, "width": 1}},
            decreasing={"line": {"color": DOWN, "width": 1}},
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    for name in OVERLAYS:
        fig.add_trace(
            _line(
                x, ind[name].to_numpy(), name.upper().replace("_", " "), OVERLAY_COLORS[name], gl
            ),
            row=1,
            col=1,
        )
    bb_color = OVERLAY_COLORS["bb"]
    fig.add_trace(
        _line(x, ind["bb_upper"].to_numpy(), "BB upper", bb_color, gl, legendgroup="bb"),
        row=1,
        col=1,
    )
    fig.add_trace(
        _line(
            x,
            ind["bb_lower"].to_numpy(),
            "BB lower",
            bb_color,
            gl,
            legendgroup="bb",
            fill="tonexty",
            fillcolor="rgba(150,150,150,0.08)",
        ),
        row=1,
        col=1,
    )
    if signals is not None and not signals.is_empty():
        for side, symbol_, color in (("buy", "triangle-up", UP), ("sell", "triangle-down", DOWN)):
            s = signals.filter(pl.col("side") == side)
            if s.is_empty():
                continue
            hover = [
                f"<b>{side.upper()}</b> {st} (strength {sg:.2f})<br>{rs}"
                for st, sg, rs in zip(s["strategy"], s["strength"], s["reason"], strict=True)
            ]
            fig.add_trace(
                go.Scatter(
                    x=local_ms(signal_x(s["session_date"].to_list(), bars.bucket)),
                    y=s["price"].to_numpy(),
                    mode="markers",
                    name=f"{side} signals",
                    marker={"symbol": symbol_, "size": 12, "color": color, "line": {"width": 1}},
                    hovertext=hover,
                    hoverinfo="text",
                ),
                row=1,
                col=1,
            )
    placed = alert_markers(frame, alerts, tz) if alerts is not None else None
    if placed is not None and not placed.is_empty():
        fig.add_trace(
            go.Scatter(
                x=local_ms(signal_x(placed["session_date"].to_list(), bars.bucket)),
                y=placed["close"].to_numpy(),
                mode="markers",
                name="alerts",
                marker={"symbol": "star", "size": 14, "color": ALERT_COLOR, "line": {"width": 1}},
                hovertext=placed["message"].to_list(),
                hoverinfo="text",
            ),
            row=1,
            col=1,
        )
    up = (frame["close"] >= frame["open"]).to_numpy()
    fig.add_trace(
        go.Bar(
            x=x,
            y=frame["volume"].to_numpy(),
            name="Volume",
            marker={"color": np.where(up, UP, DOWN), "line": {"width": 0}},
            showlegend=False,
        ),
        row=2,
        col=1,
    )
    fig.add_trace(_line(x, ind["rsi_14"].to_numpy(), "RSI 14", "#7e57c2", gl), row=3, col=1)
    for level in (30, 70):
        fig.add_hline(y=level, line={"dash": "dot", "width": 1, "color": "#999"}, row=3, col=1)
    hist = ind["macd_hist"].to_numpy()
    fig.add_trace(
        go.Bar(
            x=x,
            y=hist,
            name="MACD hist",
            marker={"color": np.where(np.nan_to_num(hist) >= 0, UP, DOWN), "line": {"width": 0}},
            showlegend=False,
        ),
        row=4,
        col=1,
    )
    fig.add_trace(_line(x, ind["macd"].to_numpy(), "MACD", "#1565c0", gl), row=4, col=1)
    fig.add_trace(
        _line(x, ind["macd_signal"].to_numpy(), "MACD signal", "#ef6c00", gl), row=4, col=1
    )

    rangebreaks: list[dict[str, Any]] = []
    if not gl:
        rangebreaks.append({"bounds": ["sat", "mon"]})
        if _session_only(x, bars.bucket):
            close_h = SESSION_CLOSE.hour + SESSION_CLOSE.minute / 60
            open_h = SESSION_OPEN.hour + SESSION_OPEN.minute / 60
            rangebreaks.append({"bounds": [close_h, open_h], "pattern": "hour"})
    fig.update_xaxes(
        type="date", rangebreaks=rangebreaks, showspikes=True, spikemode="across", spikethickness=1
    )
    fig.update_xaxes(rangeslider={"visible": False}, row=1, col=1)
    fig.update_yaxes(title_text="Price", row=1, col=1)
    fig.update_yaxes(title_text="Vol", row=2, col=1)
    fig.update_yaxes(title_text="RSI", range=[0, 100], row=3, col=1)
    fig.update_yaxes(title_text="MACD", row=4, col=1)
    fig.update_layout(
        template="plotly_white",
        title={
            "text": title or f"{bars.symbol} · {n} x {bars.label} candles · indicators {source}"
        },
        height=820,
        margin={"l": 60, "r": 20, "t": 50, "b": 30},
        legend={"orientation": "h", "y": 1.02, "x": 0, "yanchor": "bottom"},
        hovermode="x",
        dragmode="zoom",
        meta={"symbol": bars.symbol, "candles": n, "bucket": bars.label, "webgl": gl},
    )
    return fig


def equity_figure(equity: pl.DataFrame, tz: str, account: str) -> go.Figure:
    if equity.is_empty():
        return empty_figure(f"No equity history for {account or 'this account'}")
    x = to_local(equity["ts"], tz)
    gl = equity.height > GL_THRESHOLD
    fig = go.Figure()
    fig.add_trace(_line(x, equity["equity"].to_numpy(), "Equity", "#1565c0", gl))
    fig.add_trace(_line(x, equity["cash"].to_numpy(), "Cash", "#90a4ae", gl))
    fig.update_xaxes(type="date")
    fig.update_layout(
        template="plotly_white",
        title=f"Equity curve · {account}",
        height=380,
        margin={"l": 60, "r": 20, "t": 50, "b": 30},
        legend={"orientation": "h"},
    )
    return fig


def counts_figure(
    title: str, counts: Sequence[tuple[Any, int]], *, horizontal: bool = True
) -> go.Figure:
    """A bar chart of (key, count) pairs, e.g. a search aggregation."""
    if not counts:
        return empty_figure(f"{title}: no data")
    keys = [str(k) for k, _ in counts]
    values = [v for _, v in counts]
    bar = (
        go.Bar(y=keys, x=values, orientation="h", marker={"color": "#5c6bc0"})
        if horizontal
        else go.Bar(x=keys, y=values, marker={"color": "#5c6bc0"})
    )
    fig = go.Figure(bar)
    fig.update_layout(
        template="plotly_white",
        title=title,
        height=300,
        margin={"l": 110 if horizontal else 40, "r": 20, "t": 40, "b": 30},
    )
    if horizontal:
        fig.update_yaxes(autorange="reversed")
    return fig


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "no data"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def freshness_figure(rows: Sequence[Freshness]) -> go.Figure:
    present = [r for r in rows if r.lag_s is not None]
    if not present:
        return empty_figure("No pipeline table has data yet")
    hours = [max(r.lag_s or 0.0, 0.0) / 3600 for r in present]
    fig = go.Figure(
        go.Bar(
            y=[r.asset for r in present],
            x=hours,
            orientation="h",
            text=[format_age(r.lag_s) for r in present],
            textposition="auto",
            marker={"color": ["#ef5350" if h > 24 else "#26a69a" for h in hours]},
        )
    )
    fig.update_layout(
        template="plotly_white",
        title="Data age per asset (hours since newest row)",
        height=320,
        margin={"l": 150, "r": 20, "t": 40, "b": 30},
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def kafka_lag_figure(status: KafkaStatus) -> go.Figure:
    if not status.reachable:
        return empty_figure(status.error or "Kafka unreachable")
    rows = [p for p in status.partitions if p.lag is not None]
    if not rows:
        return empty_figure("No topics or consumers to report")
    fig = go.Figure()
    for consumer in sorted({p.consumer for p in rows}):
        mine = [p for p in rows if p.consumer == consumer]
        fig.add_trace(
            go.Bar(
                x=[f"{p.topic}[{p.partition}]" for p in mine],
                y=[p.lag for p in mine],
                name=consumer,
            )
        )
    fig.update_layout(
        template="plotly_white",
        title="Consumer lag (messages) per partition",
        barmode="group",
        height=320,
        margin={"l": 60, "r": 20, "t": 40, "b": 80},
    )
    return fig


def records(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """DataTable-ready rows: datetimes and dates as ISO strings, floats rounded."""
    out = []
    for row in rows:
        clean: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, datetime):
                clean[key] = value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
            elif isinstance(value, date):
                clean[key] = value.isoformat()
            elif isinstance(value, float):
                clean[key] = round(value, 4)
            elif value is None or isinstance(value, (int, str, bool)):
                clean[key] = value
            else:
                clean[key] = str(value)
        out.append(clean)
    return out


def dagster_tables(status: DagsterStatus) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sensors = [
        {
            "location": s.location,
            "sensor": s.name,
            "status": s.status,
            "last tick": s.last_tick_status or "never ticked",
            "at": s.last_tick_at,
            "message": s.error or "",
        }
        for s in status.sensors
    ]
    checks = [
        {
            "asset": c.asset,
            "check": c.check,
            "result": c.status or "not executed",
            "severity": c.severity or "",
            "at": c.executed_at,
            "description": c.description or "",
        }
        for c in status.checks
    ]
    return records(sensors), records(checks)
