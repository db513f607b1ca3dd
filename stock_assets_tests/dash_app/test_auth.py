"""Login guard, lockout and server-side sessions through Flask's test client against the real
warehouse (the browser tests repeat the essentials in Chromium, test_server.py under gunicorn)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest
from flask.testing import FlaskClient
from pydantic import SecretStr
from werkzeug.security import generate_password_hash

from dash_app import auth, auth_store
from dash_app.app import create_app
from dash_app.data.warehouse import Warehouse
from dash_app.services import Services
from dash_app.settings import DEV_PASSWORD, DEV_SECRET_KEY, DashSettings
from stock_assets.lib import db
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


def make_app(settings: DashSettings, dash_db: DbSettings) -> object:
    # no callback runs here: the data pool is never opened; the auth store uses the database
    services = Services(settings, Warehouse(dash_db, open_pool=False), None, None, "-")
    return create_app(settings, services)


@pytest.fixture
def settings() -> DashSettings:
    return DashSettings.load(secret_key=secrets.token_urlsafe(48))


@pytest.fixture
def app(settings: DashSettings, dash_db: DbSettings) -> Iterator[object]:
    yield make_app(settings, dash_db)
    with db.connect(dash_db) as conn:  # no lock or session leaks into the next test
        conn.execute("DELETE FROM dashboard.login_failures")
        conn.execute("DELETE FROM dashboard.sessions")
        conn.execute("DELETE FROM dashboard.credentials")
        conn.commit()


def client_from(app: object, address: str) -> FlaskClient:
    client: FlaskClient = app.server.test_client()  # type: ignore[attr-defined]
    client.environ_base["REMOTE_ADDR"] = address
    return client


def csrf_of(client: FlaskClient, path: str = "/login") -> str:
    form = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', form)[1]  # type: ignore[index]


def sign_in(client: FlaskClient, password: str = DEV_PASSWORD, user: str = "dev") -> object:
    csrf = csrf_of(client)
    return client.post("/login", data={"username": user, "password": password, "csrf": csrf})


def test_guard_login_and_logout_with_the_test_client(app: object) -> None:
    client = app.server.test_client()  # type: ignore[attr-defined]
    page = client.get("/market?symbol=AAPL&start=2024-01-02")
    assert page.status_code == 302
    location = urlparse(page.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == ["/market?symbol=AAPL&start=2024-01-02"]
    for path in ("/_dash-layout", "/_dash-dependencies"):
        assert client.get(path).status_code == 401
    assert client.post("/_dash-update-component", json={}).status_code == 401

    csrf = csrf_of(client)
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


@pytest.mark.parametrize(
    ("failures", "delay"), [(1, 0.0), (4, 0.0), (5, 1.0), (6, 2.0), (10, 32.0), (30, 900.0)]
)
def test_lock_delay_grows_exponentially_to_a_cap(failures: int, delay: float) -> None:
    assert auth_store.lock_delay_s(failures) == delay


def test_twenty_wrong_passwords_lock_the_user_with_a_clear_message(app: object) -> None:
    client = client_from(app, "10.1.1.1")
    statuses = [sign_in(client, "wrong").status_code for _ in range(20)]  # type: ignore[attr-defined]
    assert statuses[:5] == [401] * 5  # the free attempts
    assert statuses[-1] == 429
    last = sign_in(client, "wrong")
    body = last.get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Too many failed sign-in attempts for this user" in body
    assert int(last.headers["Retry-After"]) >= 1  # type: ignore[attr-defined]
    # the right password is refused too while the lock holds, from any address
    other = client_from(app, "10.9.9.9")
    assert sign_in(other).status_code == 429  # type: ignore[attr-defined]


def test_the_address_is_locked_whatever_user_it_tries(app: object, dash_db: DbSettings) -> None:
    client = client_from(app, "10.2.2.2")
    for i in range(6):
        sign_in(client, "wrong", user=f"someone-{i}")
    refused = sign_in(client, user="someone-else")
    assert refused.status_code == 429  # type: ignore[attr-defined]
    assert "for your address" in refused.get_data(as_text=True)  # type: ignore[attr-defined]
    # when the window has passed, a correct sign-in clears the counters
    with db.connect(dash_db) as conn:
        conn.execute("UPDATE dashboard.login_failures SET locked_until = now() - interval '1 s'")
        conn.commit()
    assert sign_in(client).status_code == 302  # type: ignore[attr-defined]
    with db.connect(dash_db) as conn:
        left = conn.execute(
            "SELECT count(*) FROM dashboard.login_failures WHERE key = '10.2.2.2'"
        ).fetchone()
    assert left == (0,)


def test_a_saved_cookie_is_rejected_after_logout(app: object) -> None:
    client = app.server.test_client()  # type: ignore[attr-defined]
    assert sign_in(client).status_code == 302  # type: ignore[attr-defined]
    saved = client.get_cookie("stock_dash_session").value
    client.get("/logout")
    replay = app.server.test_client()  # type: ignore[attr-defined]
    replay.set_cookie("stock_dash_session", saved)
    assert replay.get("/_dash-layout").status_code == 401
    assert replay.get("/market").status_code == 302


def test_a_password_change_ends_every_other_session(app: object, dash_db: DbSettings) -> None:
    mine, other = (app.server.test_client() for _ in range(2))  # type: ignore[attr-defined]
    for client in (mine, other):
        assert sign_in(client).status_code == 302
    csrf = csrf_of(mine, "/account/password")
    new = "a-much-better-password"
    short = mine.post(
        "/account/password",
        data={"current": DEV_PASSWORD, "new": "short", "confirm": "short", "csrf": csrf},
    )
    assert short.status_code == 400 and "at least 12 characters" in short.get_data(as_text=True)
    changed = mine.post(
        "/account/password",
        data={"current": DEV_PASSWORD, "new": new, "confirm": new, "csrf": csrf},
    )
    assert changed.status_code == 200 and "Password changed" in changed.get_data(as_text=True)
    assert mine.get("/_dash-layout").status_code == 200  # this browser stays signed in
    assert other.get("/_dash-layout").status_code == 401  # every other session has ended
    fresh = app.server.test_client()  # type: ignore[attr-defined]
    assert sign_in(fresh).status_code == 401  # the old password no longer works
    assert sign_in(fresh, new).status_code == 302
    with db.connect(dash_db) as conn:
        stored = conn.execute("SELECT password_hash FROM dashboard.credentials").fetchone()
    assert stored is not None and new not in stored[0]  # a hash, never the password


def test_a_password_changed_in_the_config_ends_older_sessions(
    settings: DashSettings, app: object, dash_db: DbSettings
) -> None:
    client = app.server.test_client()  # type: ignore[attr-defined]
    assert sign_in(client).status_code == 302  # type: ignore[attr-defined]
    saved = client.get_cookie("stock_dash_session").value
    rotated = settings.model_copy(
        update={"password_hash": SecretStr(generate_password_hash("rotated-password-123"))}
    )
    restarted = make_app(rotated, dash_db).server.test_client()  # type: ignore[attr-defined]
    restarted.set_cookie("stock_dash_session", saved)
    assert restarted.get("/_dash-layout").status_code == 401


def test_sessions_store_only_a_hash_of_the_token(app: object, dash_db: DbSettings) -> None:
    client = app.server.test_client()  # type: ignore[attr-defined]
    sign_in(client)
    with psycopg.connect(dash_db.conninfo()) as conn:
        (stored,) = conn.execute("SELECT token_hash FROM dashboard.sessions").fetchone()  # type: ignore[misc]
    cookie = client.get_cookie("stock_dash_session").value
    assert stored not in cookie and len(stored) == 64
