"""Portfolio page: the paper account's equity, positions and orders, and the backtests."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, dcc, html

from dash_app import figures
from dash_app.components import CARD, ROW, columns, table
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
