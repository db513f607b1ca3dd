"""The Dash app: `create_app` wires settings, the login, the shell and each page's callbacks.

One module per page under `dash_app/pages/` (its layout and its callbacks); data access per
source under `dash_app/data/`; figures are pure builders in `dash_app/figures.py`.
"""

from __future__ import annotations

import secrets
from typing import Any

import dash
from dash import Input, Output, State, html

from dash_app import auth, components
from dash_app.pages import forecast, market, pipeline, portfolio, signals
from dash_app.ranges import parse_query
from dash_app.services import Services, build_services
from dash_app.settings import DashSettings

__all__ = ["Services", "build_services", "create_app"]


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
    auth.install_login(app.server, settings, services.warehouse.settings)
    app.layout = components.shell(settings.username)
    _register_router(app, services)
    for page in (market, signals, portfolio, pipeline):
        page.register(app, services)
    forecast.register(app, services.warehouse)
    return app


def _register_router(app: dash.Dash, s: Services) -> None:
    @app.callback(Output("page", "children"), Input("url", "pathname"), State("url", "search"))
    def route(pathname: str | None, search: str | None) -> Any:
        path = (pathname or "/").rstrip("/") or "/market"
        if path in ("/", "/market"):
            return market.initial_view(s, parse_query(search))
        if path == "/signals":
            return signals.layout()
        if path == "/portfolio":
            return portfolio.layout(s.warehouse.accounts())
        if path == "/pipeline":
            return pipeline.layout()
        if path == "/forecast":
            return forecast.layout()
        return html.Div([html.H3("Not found"), html.P(f"No page at {path}")])
