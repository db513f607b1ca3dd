"""Shared components: the navigation shell, card styles, data tables."""

from __future__ import annotations

from typing import Any

from dash import dash_table, dcc, html

PAGES = (
    ("/market", "Market"),
    ("/signals", "Signals"),
    ("/portfolio", "Portfolio"),
    ("/forecast", "Forecast"),
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
            html.A("Change password", href="/account/password", id="nav-password"),
            html.Span(" · ", style={"color": "#666"}),
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


def table(table_id: str, **kw: Any) -> Any:
    return dash_table.DataTable(  # type: ignore[attr-defined]
        id=table_id, data=[], columns=[], **{**TABLE_STYLE, **kw}
    )


def columns(rows: list[dict[str, Any]], markdown: tuple[str, ...] = ()) -> list[dict[str, str]]:
    keys = list(rows[0]) if rows else []
    return [
        {"name": k, "id": k, **({"presentation": "markdown"} if k in markdown else {})}
        for k in keys
    ]
