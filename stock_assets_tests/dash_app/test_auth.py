"""Login guard and settings through Flask's test client (the browser tests repeat it for real)."""

from __future__ import annotations

import re
import secrets
from urllib.parse import parse_qs, urlparse

import pytest
from werkzeug.security import generate_password_hash

from dash_app import auth
from dash_app.app import create_app
from dash_app.data.warehouse import Warehouse
from dash_app.services import Services
from dash_app.settings import DEV_PASSWORD, DEV_SECRET_KEY, DashSettings
from stock_assets.lib.settings import ConfigError, DbSettings


def test_committed_config_is_dev_and_stores_only_a_hash() -> None:
    settings = DashSettings.load()
    assert settings.mode == "dev"
    assert settings.uses_dev_credentials()
    assert DEV_PASSWORD not in settings.password_hash.get_secret_value()
    settings.validate_for_startup()  # dev mode accepts the dev login


def test_production_refuses_dev_credentials_or_weak_secret() -> None:
    with pytest.raises(ConfigError, match="dev default"):
        DashSettings.load(
            mode="production", secret_key=secrets.token_urlsafe(48)
        ).validate_for_startup()
    strong_hash = generate_password_hash("a-real-password")
    for key in (None, DEV_SECRET_KEY, "short"):
        with pytest.raises(ConfigError, match="secret_key"):
            DashSettings.load(
                mode="production", password_hash=strong_hash, secret_key=key
            ).validate_for_startup()
    DashSettings.load(
        mode="production", password_hash=strong_hash, secret_key=secrets.token_urlsafe(48)
    ).validate_for_startup()


def test_env_overrides_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCK_DASH_PORT", "18050")
    monkeypatch.setenv("STOCK_DASH_MODE", "production")
    settings = DashSettings.load()
    assert (settings.port, settings.mode) == (18050, "production")


def test_plaintext_password_in_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a werkzeug password hash"):
        DashSettings.load(password_hash="hunter2").validate_for_startup()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/market?symbol=A", "/market?symbol=A"),
        ("https://evil.example/", "/"),
        ("//evil", "/"),
        (None, "/"),
    ],
)
def test_safe_next(target: str | None, expected: str) -> None:
    assert auth.safe_next(target) == expected


def test_guard_login_and_logout_with_the_test_client() -> None:
    settings = DashSettings.load(secret_key=secrets.token_urlsafe(48))
    # no callback runs here: the warehouse pool is never opened
    services = Services(settings, Warehouse(DbSettings.load(), open_pool=False), None, None, "-")
    app = create_app(settings, services)
    client = app.server.test_client()
    page = client.get("/market?symbol=AAPL&start=2024-01-02")
    assert page.status_code == 302
    location = urlparse(page.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == ["/market?symbol=AAPL&start=2024-01-02"]
    for path in ("/_dash-layout", "/_dash-dependencies"):
        assert client.get(path).status_code == 401
    assert client.post("/_dash-update-component", json={}).status_code == 401

    form = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)[1]  # type: ignore[index]
    bad = client.post("/login", data={"username": "dev", "password": "wrong", "csrf": csrf})
    assert bad.status_code == 401 and "Invalid username or password" in bad.get_data(as_text=True)
    no_csrf = client.post("/login", data={"username": "dev", "password": DEV_PASSWORD})
    assert no_csrf.status_code == 400

    ok = client.post(
        "/login",
        data={"username": "dev", "password": DEV_PASSWORD, "csrf": csrf, "next": "/pipeline"},
    )
    assert ok.status_code == 302 and ok.headers["Location"] == "/pipeline"
    assert client.get("/_dash-layout").status_code == 200
    client.get("/logout")
    assert client.get("/_dash-layout").status_code == 401
