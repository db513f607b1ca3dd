"""Figure builders: data in, `go.Figure` out. Pure (no I/O, no Dash): tested without a browser."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from dash_app.data.dagster import DagsterStatus
from dash_app.data.kafka import KafkaStatus
from dash_app.data.warehouse import Bars
from stock_assets.lib import progress
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
    gl = frame.height > GL_THRESHOLD
    ind, source = chart_indicators(bars, stored_indicators, tz)
    fig = make_subplots(
        rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.02, row_heights=PANE_HEIGHTS
    )
    for row, traces in (
        (1, [candles(bars, x), *overlay_traces(x, ind, gl)]),
        (1, signal_traces(signals, bars.bucket)),
        (1, alert_traces(frame, alerts, tz, bars.bucket)),
        (2, [volume_trace(frame, x)]),
        (3, [_line(x, ind["rsi_14"].to_numpy(), "RSI 14", "#7e57c2", gl)]),
        (4, macd_traces(x, ind, gl)),
    ):
        for trace in traces:
            fig.add_trace(trace, row=row, col=1)
    for level in (30, 70):
        fig.add_hline(y=level, line={"dash": "dot", "width": 1, "color": "#999"}, row=3, col=1)
    style_market_axes(fig, x, bars.bucket, gl)
    n = frame.height
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


PANE_HEIGHTS = [0.55, 0.13, 0.14, 0.18]  # price, volume, RSI, MACD


def chart_indicators(bars: Bars, stored: pl.DataFrame | None, tz: str) -> tuple[pl.DataFrame, str]:
    """The indicator columns aligned to the candles, and where they come from."""
    if bars.bucket >= timedelta(days=1) and stored is not None and not stored.is_empty():
        return stored_indicators_on_bars(bars.frame, stored, tz), "analytics.indicators"
    return bar_indicators(bars.frame), f"computed on {bars.label} candles"


def candles(bars: Bars, x: np.ndarray) -> go.Candlestick:
    frame = bars.frame
    return go.Candlestick(
        x=x,
        open=frame["open"].to_numpy(),
        high=frame["high"].to_numpy(),
        low=frame["low"].to_numpy(),
        close=frame["close"].to_numpy(),
        name=bars.symbol,
        increasing={"line": {"color": UP, "width": 1}},
        decreasing={"line": {"color": DOWN, "width": 1}},
        showlegend=False,
    )


def overlay_traces(x: np.ndarray, ind: pl.DataFrame, gl: bool) -> list[Any]:
    """SMA/EMA lines and the Bollinger band (filled between its lines) on the price pane."""
    lines = [
        _line(x, ind[name].to_numpy(), name.upper().replace("_", " "), OVERLAY_COLORS[name], gl)
        for name in OVERLAYS
    ]
    bb = OVERLAY_COLORS["bb"]
    return [
        *lines,
        _line(x, ind["bb_upper"].to_numpy(), "BB upper", bb, gl, legendgroup="bb"),
        _line(
            x,
            ind["bb_lower"].to_numpy(),
            "BB lower",
            bb,
            gl,
            legendgroup="bb",
            fill="tonexty",
            fillcolor="rgba(150,150,150,0.08)",
        ),
    ]


def signal_traces(signals: pl.DataFrame | None, bucket: timedelta) -> list[go.Scatter]:
    """Buy/sell markers at each signal's session, hovering its strategy, strength and reason."""
    if signals is None or signals.is_empty():
        return []
    traces = []
    for side, marker, color in (("buy", "triangle-up", UP), ("sell", "triangle-down", DOWN)):
        s = signals.filter(pl.col("side") == side)
        if s.is_empty():
            continue
        hover = [
            f"<b>{side.upper()}</b> {st} (strength {sg:.2f})<br>{rs}"
            for st, sg, rs in zip(s["strategy"], s["strength"], s["reason"], strict=True)
        ]
        traces.append(
            go.Scatter(
                x=local_ms(signal_x(s["session_date"].to_list(), bucket)),
                y=s["price"].to_numpy(),
                mode="markers",
                name=f"{side} signals",
                marker={"symbol": marker, "size": 12, "color": color, "line": {"width": 1}},
                hovertext=hover,
                hoverinfo="text",
            )
        )
    return traces


def alert_traces(
    frame: pl.DataFrame, alerts: pl.DataFrame | None, tz: str, bucket: timedelta
) -> list[go.Scatter]:
    placed = alert_markers(frame, alerts, tz) if alerts is not None else None
    if placed is None or placed.is_empty():
        return []
    return [
        go.Scatter(
            x=local_ms(signal_x(placed["session_date"].to_list(), bucket)),
            y=placed["close"].to_numpy(),
            mode="markers",
            name="alerts",
            marker={"symbol": "star", "size": 14, "color": ALERT_COLOR, "line": {"width": 1}},
            hovertext=placed["message"].to_list(),
            hoverinfo="text",
        )
    ]


def volume_trace(frame: pl.DataFrame, x: np.ndarray) -> go.Bar:
    up = (frame["close"] >= frame["open"]).to_numpy()
    return go.Bar(
        x=x,
        y=frame["volume"].to_numpy(),
        name="Volume",
        marker={"color": np.where(up, UP, DOWN), "line": {"width": 0}},
        showlegend=False,
    )


def macd_traces(x: np.ndarray, ind: pl.DataFrame, gl: bool) -> list[Any]:
    hist = ind["macd_hist"].to_numpy()
    return [
        go.Bar(
            x=x,
            y=hist,
            name="MACD hist",
            marker={"color": np.where(np.nan_to_num(hist) >= 0, UP, DOWN), "line": {"width": 0}},
            showlegend=False,
        ),
        _line(x, ind["macd"].to_numpy(), "MACD", "#1565c0", gl),
        _line(x, ind["macd_signal"].to_numpy(), "MACD signal", "#ef6c00", gl),
    ]


def style_market_axes(fig: go.Figure, x: np.ndarray, bucket: timedelta, gl: bool) -> None:
    """Date axes without weekends (and nights, for session-only intraday candles); pane titles.

    WebGL traces do not support rangebreaks: above GL_THRESHOLD points the axis keeps the gaps.
    """
    rangebreaks: list[dict[str, Any]] = []
    if not gl:
        rangebreaks.append({"bounds": ["sat", "mon"]})
        if _session_only(x, bucket):
            close_h = SESSION_CLOSE.hour + SESSION_CLOSE.minute / 60
            open_h = SESSION_OPEN.hour + SESSION_OPEN.minute / 60
            rangebreaks.append({"bounds": [close_h, open_h], "pattern": "hour"})
    fig.update_xaxes(
        type="date", rangebreaks=rangebreaks, showspikes=True, spikemode="across", spikethickness=1
    )
    fig.update_xaxes(rangeslider={"visible": False}, row=1, col=1)
    for row, title in enumerate(("Price", "Vol", "RSI", "MACD"), start=1):
        fig.update_yaxes(title_text=title, row=row, col=1)
    fig.update_yaxes(range=[0, 100], row=3, col=1)


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


def progress_figure(found: progress.Progress) -> go.Figure:
    """Lag per stage behind the reference (producer event time for replay, wall clock for live),
    red where a stage is over its freshness budget."""
    measured = [st for st in found.stages if st.lag_s is not None]
    if not measured:
        return empty_figure("No stage has data yet")
    budgets = progress.LAG_BUDGET_S[found.kind]
    red = [
        not progress.freshness_verdict(found, st.stage).passed if st.stage in budgets else False
        for st in measured
    ]
    longest = max(st.lag_s or 0.0 for st in measured)
    unit, size = ("days", 86400.0) if longest > 2 * 86400 else ("hours", 3600.0)
    fig = go.Figure(
        go.Bar(
            y=[st.stage for st in measured],
            x=[(st.lag_s or 0.0) / size for st in measured],
            orientation="h",
            text=[progress.format_lag(st.lag_s) for st in measured],
            textposition="auto",
            marker={"color": [DOWN if r else UP for r in red]},
        )
    )
    fig.update_layout(
        template="plotly_white",
        title=f"Lag per stage, {unit} behind the {found.reference_label}",
        height=300,
        margin={"l": 110, "r": 20, "t": 40, "b": 30},
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def offsets_figure(found: progress.Progress) -> go.Figure:
    """Per partition: offsets in ledger gaps (left behind) and in the tail (not loaded yet)."""
    if found.kafka_error:
        return empty_figure(f"Kafka unreachable: {found.kafka_error}")
    if not found.partitions:
        return empty_figure("No ticks topic partitions")
    x = [f"p{p.partition}" for p in found.partitions]
    fig = go.Figure(
        [
            go.Bar(x=x, y=[p.gap_offsets for p in found.partitions], name="gap", marker_color=DOWN),
            go.Bar(
                x=x, y=[p.tail for p in found.partitions], name="tail", marker_color=ALERT_COLOR
            ),
        ]
    )
    fig.update_layout(
        template="plotly_white",
        title="Ticks topic vs ingest ledger: offsets neither loaded nor dead-lettered",
        barmode="stack",
        height=300,
        margin={"l": 60, "r": 20, "t": 40, "b": 40},
    )
    return fig


def stage_table(found: progress.Progress) -> list[dict[str, Any]]:
    budgets = progress.LAG_BUDGET_S[found.kind]
    rows = []
    for row, st in zip(progress.stage_rows(found), found.stages, strict=True):
        row["budget"], row["status"] = "", ""
        if st.stage in budgets:
            verdict = progress.freshness_verdict(found, st.stage)
            row["budget"] = progress.format_lag(verdict.budget_s)
            row["status"] = "ok" if verdict.passed else "LAGGING"
        rows.append(row)
    return records(rows)


def partition_table(found: progress.Progress) -> list[dict[str, Any]]:
    return records(
        [
            {
                "partition": p.partition,
                "first retained": p.low,
                "end offset": p.high,
                "loaded through": p.covered_end,
                "gap offsets": p.gap_offsets,
                "gap ranges": ", ".join(f"{a}-{b}" for a, b in p.gaps[:10])
                + (" …" if len(p.gaps) > 10 else ""),
                "tail (not loaded yet)": p.tail,
            }
            for p in found.partitions
        ]
    )


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
