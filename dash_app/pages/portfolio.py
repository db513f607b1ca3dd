"""Portfolio page: the paper account's equity, positions and orders, the backtests, and the
broker section (orders, fills, positions by source, decisions, the kill switch)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, dcc, html
from flask import g

from dash_app import figures
from dash_app.components import CARD, ROW, columns, table
from dash_app.data import broker
from dash_app.services import Services


def layout(accounts: list[str]) -> html.Div:
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
            html.Div([html.H4("Positions"), table("portfolio-positions")], style=CARD),
            html.Div([html.H4("Orders"), table("portfolio-orders")], style=CARD),
            broker_layout(),
            html.Div(
                [
                    html.H4("Backtests (latest per strategy x symbol)"),
                    table("portfolio-backtests"),
                ],
                style=CARD,
            ),
        ]
    )


def register(app: dash.Dash, s: Services) -> None:
    register_broker(app, s)

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
            return empty, [], [], [], [], backtests, columns(backtests)
        positions = figures.records(s.warehouse.positions(account))
        orders = figures.records(s.warehouse.orders(account))
        return (
            figures.equity_figure(s.warehouse.equity(account), s.settings.display_tz, account),
            positions,
            columns(positions),
            orders,
            columns(orders),
            backtests,
            columns(backtests),
        )


BROKER_TABLES = ("broker-orders", "broker-fills", "broker-positions", "broker-audit")


def broker_layout() -> html.Div:
    return html.Div(
        [
            html.H4("Broker"),
            html.Div(
                [
                    html.Span(id="kill-switch-state"),
                    html.Button("Engage kill switch", id="kill-switch-engage", n_clicks=0),
                    html.Button("Release kill switch", id="kill-switch-release", n_clicks=0),
                ],
                style=ROW,
            ),
            html.H5("Orders"),
            table("broker-orders"),
            html.H5("Fills"),
            table("broker-fills"),
            html.H5("Positions by source"),
            table("broker-positions"),
            html.H5("Decisions (audit)"),
            table("broker-audit"),
        ],
        style=CARD,
    )


def broker_view(s: Services, action: str | None, user: str) -> tuple[Any, ...]:
    """Apply a kill-switch action (engage/release) if any, then read the broker section."""
    if action == "kill-switch-engage":
        broker.set_kill_switch(s.warehouse, True, user)
    elif action == "kill-switch-release":
        broker.set_kill_switch(s.warehouse, False, user)
    switch = broker.kill_switch(s.warehouse)
    state = (
        f"Kill switch ENGAGED by {switch['changed_by']}: {switch['reason']}"
        if switch["engaged"]
        else "Kill switch off: orders flow (dry-run unless broker.mode is live)"
    )
    out: list[Any] = [state]
    for rows in (
        broker.orders(s.warehouse),
        broker.fills(s.warehouse),
        broker.positions(s.warehouse),
        broker.audit(s.warehouse),
    ):
        records = figures.records(rows)
        out += [records, columns(records)]
    return tuple(out)


def register_broker(app: dash.Dash, s: Services) -> None:
    outputs = [Output("kill-switch-state", "children")]
    for name in BROKER_TABLES:
        outputs += [Output(name, "data"), Output(name, "columns")]

    @app.callback(
        *outputs,
        Input("kill-switch-engage", "n_clicks"),
        Input("kill-switch-release", "n_clicks"),
        Input("portfolio-account", "value"),
    )
    def update_broker(engage: int, release: int, account: str | None) -> tuple[Any, ...]:
        # every callback request passed the login (auth.install_login): g.user is set
        return broker_view(s, dash.ctx.triggered_id, getattr(g, "user", "unknown"))
