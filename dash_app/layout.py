"""Page layouts (components only; behaviour lives in dash_app/app.py callbacks)."""

from __future__ import annotations

from datetime import date
from typing import Any

from dash import dash_table, dcc, html

from dash_app.ranges import QUICK_RANGES

PAGES = (
    ("/market", "Market"),
    ("/signals", "Signals"),
    ("/portfolio", "Portfolio"),
    ("/pipeline", "Pipeline"),
)
CARD = {
    "background": "#fff",
    "borderRadius": "6px",
    "padding": "12px 16px",
    "marginBottom": "12px",
    "boxShadow": "0 1px 4px rgba(0,0,0,.06)",
}
ROW = {"display": "flex", "gap": "16px", "alignItems": "center", "flexWrap": "wrap"}
TABLE_STYLE: dict[str, Any] = {
    "style_table": {"overflowX": "auto"},
    "style_cell": {"fontFamily": "system-ui, sans-serif", "fontSize": "13px", "padding": "4px 8px"},
    "style_header": {"fontWeight": "600", "background": "#f4f6f8"},
    "page_size": 15,
    "sort_action": "native",
}


def shell(username: str) -> html.Div:
    """Navigation bar + the routed page container."""
    nav = html.Nav(
        [
            html.Span("Stock platform", style={"fontWeight": "700", "marginRight": "24px"}),
            *[
                dcc.Link(label, href=href, id=f"nav-{label.lower()}", style={"marginRight": "16px"})
                for href, label in PAGES
            ],
            html.Span(style={"flex": "1"}),
            html.Span(f"{username} · ", style={"color": "#666"}),
            html.A("Log out", href="/logout", id="nav-logout"),
        ],
        style={
            **ROW,
            "padding": "10px 20px",
            "background": "#fff",
            "borderBottom": "1px solid #ddd",
        },
    )
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            nav,
            html.Main(id="page", style={"padding": "12px 20px"}),
        ],
        style={
            "fontFamily": "system-ui, sans-serif",
            "background": "#f4f6f8",
            "minHeight": "100vh",
        },
    )


def _table(table_id: str, **kw: Any) -> Any:
    return dash_table.DataTable(  # type: ignore[attr-defined]
        id=table_id, data=[], columns=[], **{**TABLE_STYLE, **kw}
    )


def market(
    symbols: list[str],
    symbol: str | None,
    start: date | None,
    end: date | None,
    live_refresh_s: float,
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
            html.Div([html.H4("Alerts"), _table("market-alerts")], style=CARD),
            dcc.Store(id="market-zoom"),
            dcc.Interval(id="market-interval", interval=int(live_refresh_s * 1000), disabled=True),
        ]
    )


def signals() -> html.Div:
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
                _table(
                    "signals-table",
                    markdown_options={"html": True},
                    style_data={"whiteSpace": "normal", "height": "auto"},
                ),
                style=CARD,
            ),
            charts,
            html.Div(
                [html.H4("Forward returns per strategy"), _table("signals-returns")], style=CARD
            ),
        ]
    )


def portfolio(accounts: list[str]) -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    html.Label("Account"),
                    dcc.Dropdown(
                        id="portfolio-account",
                        options=accounts,
                        value=accounts[0] if accounts else None,
                        clearable=False,
                        style={"width": "240px"},
                    ),
                ],
                style={**CARD, **ROW},
            ),
            html.Div(dcc.Graph(id="portfolio-equity"), style=CARD),
            html.Div([html.H4("Positions"), _table("portfolio-positions")], style=CARD),
            html.Div([html.H4("Orders"), _table("portfolio-orders")], style=CARD),
            html.Div(
                [
                    html.H4("Backtests (latest per strategy x symbol)"),
                    _table("portfolio-backtests"),
                ],
                style=CARD,
            ),
        ]
    )


def pipeline() -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    html.Button("Refresh", id="pipeline-refresh", n_clicks=0),
                    html.Span(id="pipeline-updated", style={"color": "#666"}),
                ],
                style={**CARD, **ROW},
            ),
            html.Div(
                [
                    html.H4("Data freshness"),
                    dcc.Graph(id="pipeline-freshness-chart"),
                    _table("pipeline-freshness"),
                ],
                style=CARD,
            ),
            html.Div(
                [
                    html.H4("Kafka consumer lag"),
                    html.Div(id="pipeline-kafka-status"),
                    dcc.Graph(id="pipeline-kafka-chart"),
                    _table("pipeline-kafka"),
                    html.H5("Ingest ledger (ingest.kafka_offsets)"),
                    _table("pipeline-ledger"),
                ],
                style=CARD,
            ),
            html.Div(
                [
                    html.H4("Dagster: last sensor runs"),
                    html.Div(id="pipeline-dagster-status"),
                    _table("pipeline-sensors"),
                    html.H4("Asset check results"),
                    _table("pipeline-checks"),
                ],
                style=CARD,
            ),
            dcc.Interval(id="pipeline-interval", interval=30_000),
        ]
    )


def columns(rows: list[dict[str, Any]], markdown: tuple[str, ...] = ()) -> list[dict[str, str]]:
    keys = list(rows[0]) if rows else []
    return [
        {"name": k, "id": k, **({"presentation": "markdown"} if k in markdown else {})}
        for k in keys
    ]
