"""Market page: candles with indicators, signals and alerts; a live mode on streaming bars."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import dash
from dash import Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dash_app import figures
from dash_app.components import CARD, ROW, columns, table
from dash_app.ranges import (
    DEFAULT_SESSIONS,
    QUICK_RANGES,
    RESOLUTIONS,
    Density,
    day_bounds,
    density,
    min_bucket,
    parse_day,
    quick_range,
    zoom_range,
)
from dash_app.services import Services

LIVE_WINDOW = timedelta(hours=6.5)


def layout(
    symbols: list[str],
    symbol: str | None,
    start: date | None,
    end: date | None,
    live_refresh_s: float,
    resolution: str = "auto",
) -> html.Div:
    controls = html.Div(
        [
            html.Label("Symbol"),
            dcc.Dropdown(
                id="market-symbol",
                options=symbols,
                value=symbol,
                clearable=False,
                style={"width": "140px"},
            ),
            html.Label("Range"),
            dcc.DatePickerRange(
                id="market-dates",
                start_date=start.isoformat() if start else None,
                end_date=end.isoformat() if end else None,
                display_format="YYYY-MM-DD",
                minimum_nights=0,
            ),
            dcc.RadioItems(
                id="market-quick",
                options=list(QUICK_RANGES),
                value=None,
                inline=True,
                inputStyle={"marginRight": "4px"},
                labelStyle={"marginRight": "10px"},
            ),
            html.Label("Resolution"),
            dcc.Dropdown(
                id="market-resolution",
                options=list(RESOLUTIONS),
                value=resolution,
                clearable=False,
                style={"width": "110px"},
            ),
            dcc.Checklist(
                id="market-live",
                options=[{"label": " Live (streaming bars)", "value": "live"}],
                value=[],
            ),
        ],
        style={**CARD, **ROW},
    )
    return html.Div(
        [
            controls,
            html.Div(id="market-status", style={"color": "#555", "margin": "0 0 6px 4px"}),
            html.Div(
                dcc.Graph(
                    id="market-chart",
                    config={"displaylogo": False, "scrollZoom": True},
                    style={"height": "820px"},
                ),
                style=CARD,
            ),
            html.Div([html.H4("Alerts"), table("market-alerts")], style=CARD),
            dcc.Store(id="market-zoom"),
            dcc.Interval(id="market-interval", interval=int(live_refresh_s * 1000), disabled=True),
        ]
    )


def initial_view(s: Services, query: dict[str, str]) -> html.Div:
    """The market page with its initial symbol and range (from ?symbol=&start=&end=).

    Without a range it shows data that exists: the newest sessions of the symbol's bars, as many
    as suit their density (daily candles over ~6 months for replayed daily data, ~2 weeks of
    intraday candles for minute data).
    """
    symbols = s.warehouse.symbols()
    symbol = query.get("symbol", "").upper() or (symbols[0] if symbols else None)
    if symbol and symbol not in symbols:
        symbols = [*symbols, symbol]
    start, end = parse_day(query.get("start")), parse_day(query.get("end"))
    if symbol and (start is None or end is None):
        sessions = s.warehouse.recent_sessions(symbol, DEFAULT_SESSIONS[symbol_density(s, symbol)])
        if sessions:
            end = end or sessions[0]
            start = start or min(sessions[-1], end)
    resolution = query.get("resolution", "auto")
    return layout(
        symbols,
        symbol,
        start,
        end,
        s.settings.live_refresh_s,
        resolution if resolution in RESOLUTIONS else "auto",
    )


def symbol_density(s: Services, symbol: str) -> Density:
    """Daily or intraday, from the bars per session among the symbol's newest bars."""
    return density(s.warehouse.newest_bar_times(symbol), s.settings.display_tz)


def register(app: dash.Dash, s: Services) -> None:
    tz = s.settings.display_tz

    @app.callback(
        Output("market-dates", "start_date"),
        Output("market-dates", "end_date"),
        Input("market-quick", "value"),
        State("market-symbol", "value"),
        prevent_initial_call=True,
    )
    def apply_quick_range(key: str | None, symbol: str | None) -> tuple[str, str]:
        found = s.warehouse.bar_range(symbol) if key and symbol else None
        if not found:
            raise PreventUpdate
        first, last = quick_range(key or "", found[0], found[1], tz)
        return first.isoformat(), last.isoformat()

    # Zoom events go through a store: relayoutData also fires for autosize on the first render,
    # and as a direct input of the chart callback that event would supersede (and so discard)
    # the still-running first chart request.
    @app.callback(
        Output("market-zoom", "data"),
        Input("market-chart", "relayoutData"),
        prevent_initial_call=True,
    )
    def remember_zoom(relayout: dict[str, Any] | None) -> dict[str, Any]:
        zoom = zoom_range(relayout, tz)
        if zoom is None:
            raise PreventUpdate
        if zoom is True:
            return {"reset": True}
        return {"lo": zoom[0].isoformat(), "hi": zoom[1].isoformat()}  # type: ignore[index]

    @app.callback(
        Output("market-chart", "figure"),
        Output("market-status", "children"),
        Output("market-interval", "disabled"),
        Input("market-symbol", "value"),
        Input("market-dates", "start_date"),
        Input("market-dates", "end_date"),
        Input("market-live", "value"),
        Input("market-interval", "n_intervals"),
        Input("market-zoom", "data"),
        Input("market-resolution", "value"),
    )
    def update_market(
        symbol: str | None,
        start: str | None,
        end: str | None,
        live: list[str] | None,
        _ticks: int | None,
        zoom: dict[str, Any] | None,
        resolution: str | None,
    ) -> tuple[Any, str, bool]:
        is_live = bool(live)
        if not symbol:
            return figures.empty_figure("No symbol has bars yet"), "no data", not is_live
        if is_live:
            bars = s.warehouse.live_bars(symbol, LIVE_WINDOW)
            fig = figures.market_figure(bars, tz, title=f"{symbol} · live 1-minute bars")
            fig.update_layout(uirevision=f"live|{symbol}")
            return fig, _status(bars, live=True), False
        start_day, end_day = parse_day(start), parse_day(end)
        if start_day is None or end_day is None:
            return figures.empty_figure("Pick a date range"), "no range", True
        lo, hi = day_bounds(start_day, end_day, tz)
        if ctx.triggered_id == "market-zoom" and zoom and "lo" in zoom:
            lo = max(datetime.fromisoformat(zoom["lo"]), lo)
            hi = min(datetime.fromisoformat(zoom["hi"]), hi)
        smallest = min_bucket(resolution, symbol_density(s, symbol))
        bars = s.warehouse.bars(
            symbol, lo, hi, max_candles=s.settings.max_candles, min_bucket=smallest
        )
        stored = (
            s.warehouse.indicators(symbol, start_day, end_day)
            if bars.bucket >= timedelta(days=1)
            else None
        )
        sigs = s.warehouse.signals(symbol, start_day, end_day)
        alerts = s.warehouse.alerts(symbol, start_day, end_day)
        fig = figures.market_figure(bars, tz, stored_indicators=stored, signals=sigs, alerts=alerts)
        fig.update_layout(uirevision=f"{symbol}|{start_day}|{end_day}")
        return fig, _status(bars), True

    @app.callback(
        Output("market-alerts", "data"),
        Output("market-alerts", "columns"),
        Input("market-symbol", "value"),
        Input("market-dates", "start_date"),
        Input("market-dates", "end_date"),
    )
    def update_alerts(symbol: str | None, start: str | None, end: str | None) -> tuple[Any, Any]:
        start_day, end_day = parse_day(start), parse_day(end)
        if not symbol or start_day is None or end_day is None:
            return [], []
        rows = figures.alert_rows(s.warehouse.alerts(symbol, start_day, end_day))
        return rows, columns(rows)


def _status(bars: Any, live: bool = False) -> str:
    n = bars.frame.height
    kind = "live " if live else ""
    return (
        f"{bars.symbol}: {n} {kind}candles of {bars.label} "
        f"({bars.start:%Y-%m-%d %H:%M} → {bars.end:%Y-%m-%d %H:%M} UTC)"
    )
