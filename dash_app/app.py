"""The Dash app: `create_app` wires settings, data access, layouts and (thin) callbacks."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dash
from dash import Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from dash_app import auth, figures, layout
from dash_app.data import Warehouse, dagster_status, kafka_status
from dash_app.ranges import day_bounds, parse_day, parse_query, quick_range, zoom_range
from dash_app.settings import DashSettings
from stock_assets.lib.settings import DbSettings, KafkaSettings, SearchSettings
from stock_assets.lib.topics import ALL_TOPICS, topic_name

log = logging.getLogger("dash_app")
DEFAULT_SPAN = timedelta(days=7)
LIVE_WINDOW = timedelta(hours=6.5)


@dataclass
class Services:
    """What the callbacks read from; built once per app."""

    settings: DashSettings
    warehouse: Warehouse
    kafka: KafkaSettings | None
    search: Any  # elasticsearch.Elasticsearch | None
    search_prefix: str


def build_services(
    settings: DashSettings,
    db_settings: DbSettings | None = None,
    kafka: KafkaSettings | None = None,
    search: SearchSettings | None = None,
) -> Services:
    from stock_assets.lib.search.client import make_client

    db_settings = db_settings or DbSettings.load()
    search = search or SearchSettings.load()
    return Services(
        settings=settings,
        warehouse=Warehouse(db_settings, exchange_tz=settings.display_tz),
        kafka=kafka or KafkaSettings.load(),
        search=make_client(search, retries=0),
        search_prefix=search.index_prefix,
    )


def create_app(settings: DashSettings, services: Services) -> dash.Dash:
    """The Dash app behind the login; every page's callbacks are registered up front."""
    settings.validate_for_startup()
    app = dash.Dash(
        __name__,
        title="Stock dashboard",
        suppress_callback_exceptions=True,
        update_title="",
    )
    secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
    app.server.secret_key = secret or secrets.token_urlsafe(48)  # dev: sessions end on restart
    auth.install_login(app.server, settings)
    app.layout = layout.shell(settings.username)
    _register_router(app, services)
    _register_market(app, services)
    _register_signals(app, services)
    _register_portfolio(app, services)
    _register_pipeline(app, services)
    return app


def _register_router(app: dash.Dash, s: Services) -> None:
    @app.callback(Output("page", "children"), Input("url", "pathname"), State("url", "search"))
    def route(pathname: str | None, search: str | None) -> Any:
        path = (pathname or "/").rstrip("/") or "/market"
        if path in ("/", "/market"):
            return market_page(s, parse_query(search))
        if path == "/signals":
            return layout.signals()
        if path == "/portfolio":
            return layout.portfolio(s.warehouse.accounts())
        if path == "/pipeline":
            return layout.pipeline()
        return html.Div([html.H3("Not found"), html.P(f"No page at {path}")])


def market_page(s: Services, query: dict[str, str]) -> Any:
    """The market page with its initial symbol and range (from ?symbol=&start=&end=)."""
    symbols = s.warehouse.symbols()
    symbol = query.get("symbol", "").upper() or (symbols[0] if symbols else None)
    if symbol and symbol not in symbols:
        symbols = [*symbols, symbol]
    start, end = parse_day(query.get("start")), parse_day(query.get("end"))
    if symbol and (start is None or end is None):
        found = s.warehouse.bar_range(symbol)
        if found:
            last = found[1].astimezone(UTC).date()
            end = end or last
            start = start or max(found[0].date(), end - DEFAULT_SPAN)
    return layout.market(symbols, symbol, start, end, s.settings.live_refresh_s)


def _register_market(app: dash.Dash, s: Services) -> None:
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
    )
    def update_market(
        symbol: str | None,
        start: str | None,
        end: str | None,
        live: list[str] | None,
        _ticks: int | None,
        zoom: dict[str, Any] | None,
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
        bars = s.warehouse.bars(symbol, lo, hi, max_candles=s.settings.max_candles)
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
        return rows, layout.columns(rows)


def _status(bars: Any, live: bool = False) -> str:
    n = bars.frame.height
    kind = "live " if live else ""
    return (
        f"{bars.symbol}: {n} {kind}candles of {bars.label} "
        f"({bars.start:%Y-%m-%d %H:%M} → {bars.end:%Y-%m-%d %H:%M} UTC)"
    )


def _register_signals(app: dash.Dash, s: Services) -> None:
    from stock_assets.lib.search.client import SearchUnavailable
    from stock_assets.lib.search.queries import SignalFilter, search_signals, signal_analytics

    @app.callback(
        Output("signals-table", "data"),
        Output("signals-table", "columns"),
        Output("signals-status", "children"),
        Output("signals-over-time", "figure"),
        Output("signals-by-strategy", "figure"),
        Output("signals-by-symbol", "figure"),
        Output("signals-returns", "data"),
        Output("signals-returns", "columns"),
        Output("signals-symbols", "options"),
        Output("signals-strategies", "options"),
        Input("signals-search", "n_clicks"),
        Input("signals-text", "value"),
        Input("signals-symbols", "value"),
        Input("signals-strategies", "value"),
        Input("signals-side", "value"),
        Input("signals-dates", "start_date"),
        Input("signals-dates", "end_date"),
    )
    def search(
        _clicks: int,
        text: str | None,
        symbols: list[str] | None,
        strategies: list[str] | None,
        side: str | None,
        start: str | None,
        end: str | None,
    ) -> tuple[Any, ...]:
        flt = SignalFilter(
            text=(text or "").strip() or None,
            symbols=tuple(symbols or ()),
            strategies=tuple(strategies or ()),
            side=side if side in ("buy", "sell") else None,  # type: ignore[arg-type]
            date_from=parse_day(start),
            date_to=parse_day(end),
        )
        try:
            page = search_signals(s.search, s.search_prefix, flt, size=100)
            stats = signal_analytics(s.search, s.search_prefix, flt)
            facets = signal_analytics(s.search, s.search_prefix, SignalFilter())
        except SearchUnavailable as exc:
            empty = figures.empty_figure("search engine unavailable")
            msg = f"Search engine unavailable: {exc}"
            return [], [], msg, empty, empty, empty, [], [], no_update, no_update
        rows = figures.records(
            [
                {
                    "date": h.session_date,
                    "symbol": h.symbol,
                    "strategy": h.strategy,
                    "side": h.side,
                    "strength": h.strength,
                    "price": h.price,
                    "reason": h.highlight or h.reason,
                    "fwd return": h.forward_return,
                }
                for h in page.hits
            ]
        )
        returns = figures.records(
            [
                {
                    "strategy": r.strategy,
                    "signals": r.signals,
                    "with forward return": r.with_forward_return,
                    "avg forward return": r.avg_forward_return,
                    "avg signal return": r.avg_signal_return,
                }
                for r in stats.returns
            ]
        )
        status = f"{page.total} matching signals" + (
            f" (showing {len(page.hits)})" if page.total > len(page.hits) else ""
        )
        return (
            rows,
            layout.columns(rows, markdown=("reason",)),
            status,
            figures.counts_figure(
                "Signals over time", [(b.start, b.count) for b in stats.over_time], horizontal=False
            ),
            figures.counts_figure("By strategy", [(b.key, b.count) for b in stats.by_strategy]),
            figures.counts_figure("By symbol", [(b.key, b.count) for b in stats.by_symbol]),
            returns,
            layout.columns(returns),
            [{"label": f"{b.key} ({b.count})", "value": b.key} for b in facets.by_symbol],
            [{"label": f"{b.key} ({b.count})", "value": b.key} for b in facets.by_strategy],
        )


def _register_portfolio(app: dash.Dash, s: Services) -> None:
    @app.callback(
        Output("portfolio-equity", "figure"),
        Output("portfolio-positions", "data"),
        Output("portfolio-positions", "columns"),
        Output("portfolio-orders", "data"),
        Output("portfolio-orders", "columns"),
        Output("portfolio-backtests", "data"),
        Output("portfolio-backtests", "columns"),
        Input("portfolio-account", "value"),
    )
    def update_portfolio(account: str | None) -> tuple[Any, ...]:
        backtests = figures.records(s.warehouse.backtests())
        if not account:
            empty = figures.empty_figure("No trading account yet")
            return empty, [], [], [], [], backtests, layout.columns(backtests)
        positions = figures.records(s.warehouse.positions(account))
        orders = figures.records(s.warehouse.orders(account))
        return (
            figures.equity_figure(s.warehouse.equity(account), s.settings.display_tz, account),
            positions,
            layout.columns(positions),
            orders,
            layout.columns(orders),
            backtests,
            layout.columns(backtests),
        )


def _register_pipeline(app: dash.Dash, s: Services) -> None:
    triggers = (Input("pipeline-refresh", "n_clicks"), Input("pipeline-interval", "n_intervals"))

    @app.callback(
        Output("pipeline-freshness-chart", "figure"),
        Output("pipeline-freshness", "data"),
        Output("pipeline-freshness", "columns"),
        Output("pipeline-updated", "children"),
        *triggers,
    )
    def update_freshness(_c: int, _n: int | None) -> tuple[Any, ...]:
        rows = s.warehouse.freshness()
        table = figures.records(
            [
                {
                    "asset": r.asset,
                    "table": r.table,
                    "newest row": r.latest if r.exists else "table missing",
                    "age": figures.format_age(r.lag_s) if r.exists else "",
                }
                for r in rows
            ]
        )
        updated = f"updated {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
        return figures.freshness_figure(rows), table, layout.columns(table), updated

    @app.callback(
        Output("pipeline-kafka-chart", "figure"),
        Output("pipeline-kafka", "data"),
        Output("pipeline-kafka", "columns"),
        Output("pipeline-kafka-status", "children"),
        Output("pipeline-ledger", "data"),
        Output("pipeline-ledger", "columns"),
        *triggers,
    )
    def update_kafka(_c: int, _n: int | None) -> tuple[Any, ...]:
        ledger = s.warehouse.ledger()
        loaded = {(r["topic"], r["partition"]): int(r["loaded_offset"]) for r in ledger}
        if s.kafka is None:
            return figures.empty_figure("Kafka not configured"), [], [], "", [], []
        topics = [topic_name(t, s.kafka.topic_prefix) for t in ALL_TOPICS]
        status = kafka_status(s.kafka, topics, loaded, s.settings.kafka_timeout_s)
        table = figures.records(
            [
                {
                    "consumer": p.consumer,
                    "topic": p.topic,
                    "partition": p.partition,
                    "end offset": p.high,
                    "position": p.position,
                    "lag": p.lag,
                    "error": p.error or "",
                }
                for p in status.partitions
            ]
        )
        ledger_rows = figures.records(ledger)
        note = status.error or f"{len(status.partitions)} partition positions"
        return (
            figures.kafka_lag_figure(status),
            table,
            layout.columns(table),
            note,
            ledger_rows,
            layout.columns(ledger_rows),
        )

    @app.callback(
        Output("pipeline-sensors", "data"),
        Output("pipeline-sensors", "columns"),
        Output("pipeline-checks", "data"),
        Output("pipeline-checks", "columns"),
        Output("pipeline-dagster-status", "children"),
        *triggers,
    )
    def update_dagster(_c: int, _n: int | None) -> tuple[Any, ...]:
        status = dagster_status(s.settings.dagster_graphql_url, s.settings.dagster_timeout_s)
        sensors, checks = figures.dagster_tables(status)
        note = status.error if status.error else f"{len(sensors)} sensors, {len(checks)} checks"
        return sensors, layout.columns(sensors), checks, layout.columns(checks), note
