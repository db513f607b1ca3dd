"""Login for every page: a Flask `before_request` guard, a login form, server-side sessions.

Unauthenticated page requests are redirected to /login; Dash's own endpoints (layout, callbacks,
component bundles) answer 401, so no data leaves the server before a login. Credentials: one user
from DashSettings (a password changed at /account/password overrides the configured hash).

Hardening (state in PostgreSQL through `AuthStore`, so it holds across gunicorn workers):
- sign-in attempts are counted per user and per client address; after FREE_ATTEMPTS failures a
  key is locked for an exponentially growing window (1 s doubling to 15 min) and the form says
  how long (HTTP 429 + Retry-After);
- the signed cookie carries only a random session token; each request checks its row, so logout
  and a password change (which deletes all the user's rows) invalidate saved cookies at once.
"""

from __future__ import annotations

import hmac
import html
import math
import secrets
from datetime import timedelta
from urllib.parse import urlencode, urlparse

from flask import Flask, Response, g, redirect, request, session
from werkzeug.security import check_password_hash, generate_password_hash

from dash_app.auth_store import AuthStore, Locked
from dash_app.settings import DashSettings
from stock_assets.lib.settings import DbSettings

LOGIN_PATH, LOGOUT_PATH, PASSWORD_PATH = "/login", "/logout", "/account/password"
SESSION_TOKEN = "sid"
SESSION_CSRF = "csrf"
MIN_PASSWORD_LEN = 12

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · Stock dashboard</title>
<link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font-family: system-ui, sans-serif; background: #f4f6f8; display: flex;
        justify-content: center; align-items: center; height: 100vh; margin: 0; }}
 form {{ background: #fff; padding: 2rem 2.5rem; border-radius: 8px;
        box-shadow: 0 2px 12px rgba(0,0,0,.08); width: 20rem; }}
 h1 {{ font-size: 1.25rem; margin: 0 0 1rem; }}
 label {{ display: block; margin: .75rem 0 .25rem; font-size: .9rem; }}
 input[type=text], input[type=password] {{ width: 100%; padding: .5rem; box-sizing: border-box; }}
 button {{ margin-top: 1.25rem; width: 100%; padding: .6rem; background: #1565c0; color: #fff;
          border: 0; border-radius: 4px; font-size: 1rem; cursor: pointer; }}
 .error {{ color: #c62828; font-size: .9rem; margin-top: .75rem; }}
 .note {{ color: #2e7d32; font-size: .9rem; margin-top: .75rem; }}
</style></head>
<body><form id="{form_id}" method="post" action="{action}">
<h1>{heading}</h1>
<input type="hidden" name="csrf" value="{csrf}">
{fields}
<button id="{kind}-submit" type="submit">{button}</button>
{message}
</form></body></html>"""
LOGIN_FIELDS = """<input type="hidden" name="next" value="{next}">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" autofocus required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>"""
PASSWORD_FIELDS = """<label for="current">Current password</label>
<input id="current" name="current" type="password" autocomplete="current-password" required>
<label for="new">New password (at least {min_len} characters)</label>
<input id="new" name="new" type="password" autocomplete="new-password" required>
<label for="confirm">Repeat the new password</label>
<input id="confirm" name="confirm" type="password" autocomplete="new-password" required>"""


def safe_next(target: str | None) -> str:
    """Only same-site relative paths are followed after login (no open redirect)."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def check_credentials(username: str, password: str, expected_user: str, password_hash: str) -> bool:
    user_ok = hmac.compare_digest(username.encode(), expected_user.encode())
    # hash even for a wrong user, so timing does not tell whether the user exists
    password_ok = check_password_hash(password_hash, password)
    return user_ok and password_ok


def locked_message(locked: Locked) -> str:
    names = {"user": "this user", "address": "your address"}
    who = " and ".join(names[scope] for scope in locked.scopes)
    wait = max(1, math.ceil(locked.retry_after_s))
    when = f"{wait} second{'s' if wait > 1 else ''}"
    if wait >= 120:
        when = f"{math.ceil(wait / 60)} minutes"
    return f"Too many failed sign-in attempts for {who}. Sign-in is locked; try again in {when}."


def _csrf_token() -> str:
    token = session.get(SESSION_CSRF) or secrets.token_urlsafe(32)
    session[SESSION_CSRF] = token
    return str(token)


def _csrf_ok() -> bool:
    token = session.get(SESSION_CSRF, "")
    return bool(token) and hmac.compare_digest(token, request.form.get("csrf", ""))


def _page(
    kind: str, *, next_path: str = "/", error: str = "", note: str = "", status: int = 200
) -> Response:
    message = ""
    if error:
        message = f'<p class="error" id="{kind}-error">{html.escape(error)}</p>'
    elif note:
        message = f'<p class="note" id="{kind}-note">{html.escape(note)}</p>'
    if kind == "login":
        spec = ("Sign in", "login-form", LOGIN_PATH, "Stock market dashboard", "Sign in")
        fields = LOGIN_FIELDS.format(next=html.escape(next_path))
    else:
        spec = ("Password", "password-form", PASSWORD_PATH, "Change password", "Change password")
        fields = PASSWORD_FIELDS.format(min_len=MIN_PASSWORD_LEN)
    title, form_id, action, heading, button = spec
    body = PAGE.format(
        title=title,
        form_id=form_id,
        kind=kind,
        action=action,
        heading=heading,
        csrf=html.escape(_csrf_token()),
        fields=fields,
        button=button,
        message=message,
    )
    return Response(body, status=status, mimetype="text/html")


def _locked_response(kind: str, locked: Locked, next_path: str = "/") -> Response:
    response = _page(kind, next_path=next_path, error=locked_message(locked), status=429)
    response.headers["Retry-After"] = str(max(1, math.ceil(locked.retry_after_s)))
    return response


def install_login(server: Flask, settings: DashSettings, db_settings: DbSettings) -> AuthStore:
    """Protect every route of `server` (the Dash app's Flask server) behind the login form."""
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        SESSION_COOKIE_NAME="stock_dash_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_lifetime_h),
    )
    if settings.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]
    store = AuthStore(db_settings)  # min_size 0: no connection until the first request
    lifetime = timedelta(hours=settings.session_lifetime_h)
    public = {LOGIN_PATH, LOGOUT_PATH}

    def current_hash() -> str:
        return store.password_hash(settings.username) or settings.password_hash.get_secret_value()

    def start_session() -> None:
        session.clear()
        session[SESSION_TOKEN] = store.open_session(settings.username, current_hash(), lifetime)
        session.permanent = True

    @server.before_request
    def require_login() -> Response | None:
        if request.path in public:
            return None
        token = session.get(SESSION_TOKEN)
        configured = settings.password_hash.get_secret_value()
        if token and store.session_user(token, configured) == settings.username:
            g.user = settings.username
            return None
        if request.method == "GET" and not request.path.startswith("/_"):
            target = request.full_path if request.query_string else request.path
            return redirect(f"{LOGIN_PATH}?{urlencode({'next': target})}")  # type: ignore[return-value]
        return Response("login required", status=401, mimetype="text/plain")

    @server.route(LOGIN_PATH, methods=["GET", "POST"])
    def login() -> Response:
        if request.method == "GET":
            return _page("login", next_path=safe_next(request.args.get("next")))
        next_path = safe_next(request.form.get("next"))
        if not _csrf_ok():
            return _page(
                "login",
                next_path=next_path,
                error="Your session expired; please sign in again.",
                status=400,
            )
        username = request.form.get("username", "")
        address = request.remote_addr or "unknown"
        locked = store.begin_attempt(username, address)
        if locked:
            return _locked_response("login", locked, next_path)
        password = request.form.get("password", "")
        if not check_credentials(username, password, settings.username, current_hash()):
            return _page(
                "login", next_path=next_path, error="Invalid username or password.", status=401
            )
        store.succeeded(username, address)
        start_session()
        return redirect(next_path)  # type: ignore[return-value]

    @server.route(LOGOUT_PATH)
    def logout() -> Response:
        token = session.get(SESSION_TOKEN)
        if token:
            store.close_session(token)
        session.clear()
        return redirect(LOGIN_PATH)  # type: ignore[return-value]

    @server.route(PASSWORD_PATH, methods=["GET", "POST"])
    def change_password() -> Response:
        if request.method == "GET":
            return _page("password")
        if not _csrf_ok():
            return _page("password", error="Your session expired; reload the page.", status=400)
        address = request.remote_addr or "unknown"
        locked = store.begin_attempt(settings.username, address)
        if locked:
            return _locked_response("password", locked)
        if not check_password_hash(current_hash(), request.form.get("current", "")):
            return _page("password", error="The current password is wrong.", status=401)
        store.succeeded(settings.username, address)
        new, confirm = request.form.get("new", ""), request.form.get("confirm", "")
        if new != confirm:
            return _page("password", error="The new passwords differ.", status=400)
        if len(new) < MIN_PASSWORD_LEN:
            return _page(
                "password",
                error=f"The new password needs at least {MIN_PASSWORD_LEN} characters.",
                status=400,
            )
        store.change_password(settings.username, generate_password_hash(new))
        start_session()  # this browser stays signed in; every other session has ended
        return _page("password", note="Password changed; every other session is signed out.")

    return store
