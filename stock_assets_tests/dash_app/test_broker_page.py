"""The Portfolio page's broker section: data from a real orders run (simulator, live mode) in a
private warehouse, and the kill-switch button through Dash's callback endpoint behind the login."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from dash_app.app import create_app
from dash_app.data.warehouse import Warehouse
from dash_app.pages import portfolio
from dash_app.services import Services
from dash_app.settings import DEV_PASSWORD, DashSettings
from stock_assets.lib import db
from stock_assets.lib.settings import DbSettings
from stock_assets.lib.trading.backtest import BacktestConfig
from stock_assets.lib.trading.broker.config import BrokerConfig
from stock_assets.lib.trading.broker.runner import make_broker, run_orders
from stock_assets.lib.trading.config import BookEntry
from stock_assets.lib.trading.strategies import default_params, params_key
from stock_assets_tests.conftest import private_database

ENTRY = BookEntry("AAPL", "sma_crossover", default_params("sma_crossover"), BacktestConfig())
LIVE_SIM = BrokerConfig(mode="live")
NOW = datetime(2024, 1, 5, 16, 0, tzinfo=UTC)


def orders_run(settings: DbSettings):
    with db.connect(settings) as conn:
        broker = make_broker(LIVE_SIM, conn, initial_cash=100_000, commission=0, symbols=["AAPL"])
        return run_orders(conn, broker, LIVE_SIM, [ENTRY], now=NOW, market_open=lambda _: True)


@pytest.fixture(scope="module")
def broker_db(base_db_settings: DbSettings) -> Iterator[DbSettings]:
    with private_database(base_db_settings) as settings:
        with db.connect(settings) as conn:
            conn.execute(
                "INSERT INTO market.bars_daily (symbol, session_date, open, high, low, close,"
                " volume, trade_count) VALUES ('AAPL', %s, 100, 100, 100, 100, 1000, 10)",
                (date(2024, 1, 4),),
            )
            conn.execute(
                "INSERT INTO analytics.signals (symbol, session_date, strategy, side, strength,"
                " price, reason, params) VALUES ('AAPL', %s, 'sma_crossover', 'buy', 0.5, 100,"
                " 'test', %s)",
                (date(2024, 1, 4), params_key(ENTRY.params)),
            )
            conn.commit()
        orders_run(settings)
        yield settings


@pytest.fixture(scope="module")
def services(broker_db: DbSettings) -> Iterator[Services]:
    settings = DashSettings.load(secret_key=secrets.token_urlsafe(48))
    wh = Warehouse(broker_db)
    yield Services(settings, wh, None, None, "")
    wh.close()


def test_the_broker_section_shows_orders_fills_positions_and_decisions(services) -> None:
    state, orders, _, fills, _, positions, _, audit, _ = portfolio.broker_view(services, None, "x")
    assert state.startswith("Kill switch off")
    assert [(o["source"], o["symbol"], o["side"], o["quantity"], o["status"]) for o in orders] == [
        ("simulator", "AAPL", "buy", 100.0, "filled")
    ]
    assert [(f["event"], f["quantity"], f["price"]) for f in fills] == [("fill", 100.0, 100.0)]
    assert [(p["source"], p["symbol"], p["quantity"]) for p in positions] == [
        ("simulator", "AAPL", 100.0)
    ]
    assert {a["decision"] for a in audit} == {"sent", "reconciled"}


def update_payload(trigger: str) -> dict[str, object]:
    outputs = [{"id": "kill-switch-state", "property": "children"}]
    for name in portfolio.BROKER_TABLES:
        outputs += [{"id": name, "property": "data"}, {"id": name, "property": "columns"}]
    return {
        "output": ".." + "...".join(f"{o['id']}.{o['property']}" for o in outputs) + "..",
        "outputs": outputs,
        "inputs": [
            {"id": "kill-switch-engage", "property": "n_clicks", "value": 1},
            {"id": "kill-switch-release", "property": "n_clicks", "value": 0},
            {"id": "portfolio-account", "property": "value", "value": None},
        ],
        "changedPropIds": [f"{trigger}.n_clicks"],
        "state": [],
    }


def test_the_kill_switch_button_needs_the_login_and_blocks_the_next_run(
    services, broker_db
) -> None:
    app = create_app(services.settings, services)
    client = app.server.test_client()
    payload = update_payload("kill-switch-engage")
    assert client.post("/_dash-update-component", json=payload).status_code == 401
    with db.connect(broker_db) as conn:
        assert conn.execute("SELECT engaged FROM trading.kill_switch").fetchone() == (False,)

    form = client.get("/login").get_data(as_text=True)
    csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    user = services.settings.username
    client.post("/login", data={"username": user, "password": DEV_PASSWORD, "csrf": csrf})
    answer = client.post("/_dash-update-component", json=payload)
    assert answer.status_code == 200
    state = json.loads(answer.get_data(as_text=True))["response"]["kill-switch-state"]["children"]
    assert state == f"Kill switch ENGAGED by {user}: engaged from the dashboard"

    with db.connect(broker_db) as conn:  # a new signal: the run must block it
        conn.execute(
            "INSERT INTO analytics.signals (symbol, session_date, strategy, side, strength, price,"
            " reason, params) VALUES ('AAPL', '2024-01-05', 'sma_crossover', 'sell', 0.5, 100,"
            " 'test', %s)",
            (params_key(ENTRY.params),),
        )
        conn.commit()
    report = orders_run(broker_db)
    assert report.kill_switch and report.decisions == {"blocked": 1}

    release = client.post("/_dash-update-component", json=update_payload("kill-switch-release"))
    assert release.status_code == 200
    with db.connect(broker_db) as conn:
        assert conn.execute("SELECT engaged, changed_by FROM trading.kill_switch").fetchone() == (
            False,
            user,
        )
