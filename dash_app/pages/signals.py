"""Signals page: full-text search over the signals index with facets and analytics."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, dcc, html, no_update

from dash_app import figures
from dash_app.components import CARD, ROW, columns, table
from dash_app.ranges import parse_day
from dash_app.services import Services


def layout() -> html.Div:
    controls = html.Div(
        [
            dcc.Input(
                id="signals-text",
                type="search",
                placeholder='Search reasons: words, "phrases", -exclude',
                debounce=True,
                style={"width": "320px", "padding": "6px"},
            ),
            dcc.Dropdown(
                id="signals-symbols", multi=True, placeholder="Symbols", style={"minWidth": "180px"}
            ),
            dcc.Dropdown(
                id="signals-strategies",
                multi=True,
                placeholder="Strategies",
                style={"minWidth": "220px"},
            ),
            dcc.RadioItems(
                id="signals-side",
                options=[{"label": "all", "value": ""}, "buy", "sell"],
                value="",
                inline=True,
                labelStyle={"marginRight": "10px"},
            ),
            dcc.DatePickerRange(id="signals-dates", display_format="YYYY-MM-DD", clearable=True),
            html.Button("Search", id="signals-search", n_clicks=0),
        ],
        style={**CARD, **ROW},
    )
    charts = html.Div(
        [
            dcc.Graph(id="signals-over-time", style={"flex": "2", "minWidth": "420px"}),
            dcc.Graph(id="signals-by-strategy", style={"flex": "1", "minWidth": "300px"}),
            dcc.Graph(id="signals-by-symbol", style={"flex": "1", "minWidth": "300px"}),
        ],
        style={**CARD, **ROW},
    )
    return html.Div(
        [
            controls,
            html.Div(id="signals-status", style={"margin": "0 0 6px 4px", "color": "#555"}),
            html.Div(
                table(
                    "signals-table",
                    markdown_options={"html": True},
                    style_data={"whiteSpace": "normal", "height": "auto"},
                ),
                style=CARD,
            ),
            charts,
            html.Div(
                [html.H4("Forward returns per strategy"), table("signals-returns")], style=CARD
            ),
        ]
    )


def register(app: dash.Dash, s: Services) -> None:
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
            columns(rows, markdown=("reason",)),
            status,
            figures.counts_figure(
                "Signals over time", [(b.start, b.count) for b in stats.over_time], horizontal=False
            ),
            figures.counts_figure("By strategy", [(b.key, b.count) for b in stats.by_strategy]),
            figures.counts_figure("By symbol", [(b.key, b.count) for b in stats.by_symbol]),
            returns,
            columns(returns),
            [{"label": f"{b.key} ({b.count})", "value": b.key} for b in facets.by_symbol],
            [{"label": f"{b.key} ({b.count})", "value": b.key} for b in facets.by_strategy],
        )
