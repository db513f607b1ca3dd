"""Login for every page: a Flask `before_request` guard, a login form and a signed session cookie.

Unauthenticated page requests are redirected to /login; Dash's own endpoints (layout, callbacks,
component bundles) answer 401, so no data leaves the server before a login. Credentials: one user
from DashSettings, the password checked against its werkzeug hash in constant time.
"""

from __future__ import annotations

import hmac
import html
import secrets
from urllib.parse import urlencode, urlparse

from flask import Flask, Response, redirect, request, session
from werkzeug.security import check_password_hash

from dash_app.settings import DashSettings

LOGIN_PATH, LOGOUT_PATH = "/login", "/logout"
SESSION_USER = "user"
SESSION_CSRF = "csrf"

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · Stock dashboard</title>
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
</style></head>
<body><form id="login-form" method="post" action="{action}">
<h1>Stock market dashboard</h1>
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="next" value="{next}">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" autofocus required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="login-submit" type="submit">Sign in</button>
{error}
</form></body></html>"""


def safe_next(target: str | None) -> str:
    """Only same-site relative paths are followed after login (no open redirect)."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def check_credentials(settings: DashSettings, username: str, password: str) -> bool:
    user_ok = hmac.compare_digest(username.encode(), settings.username.encode())
    # hash even for a wrong user, so timing does not tell whether the user exists
    password_ok = check_password_hash(settings.password_hash.get_secret_value(), password)
    return user_ok and password_ok


def _login_page(next_path: str, error: str = "", status: int = 200) -> Response:
    token = session.get(SESSION_CSRF) or secrets.token_urlsafe(32)
    session[SESSION_CSRF] = token
    body = LOGIN_PAGE.format(
        action=LOGIN_PATH,
        csrf=html.escape(token),
        next=html.escape(next_path),
        error=f'<p class="error" id="login-error">{html.escape(error)}</p>' if error else "",
    )
    return Response(body, status=status, mimetype="text/html")


def install_login(server: Flask, settings: DashSettings) -> None:
    """Protect every route of `server` (the Dash app's Flask server) behind the login form."""
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        SESSION_COOKIE_NAME="stock_dash_session",
    )
    public = {LOGIN_PATH, LOGOUT_PATH}

    @server.before_request
    def require_login() -> Response | None:
        if request.path in public or session.get(SESSION_USER) == settings.username:
            return None
        if request.method == "GET" and not request.path.startswith("/_"):
            target = request.full_path if request.query_string else request.path
            return redirect(f"{LOGIN_PATH}?{urlencode({'next': target})}")  # type: ignore[return-value]
        return Response("login required", status=401, mimetype="text/plain")

    @server.route(LOGIN_PATH, methods=["GET", "POST"])
    def login() -> Response:
        if request.method == "GET":
            return _login_page(safe_next(request.args.get("next")))
        next_path = safe_next(request.form.get("next"))
        token = session.get(SESSION_CSRF, "")
        if not token or not hmac.compare_digest(token, request.form.get("csrf", "")):
            return _login_page(next_path, "Your session expired; please sign in again.", 400)
        if not check_credentials(
            settings, request.form.get("username", ""), request.form.get("password", "")
        ):
            return _login_page(next_path, "Invalid username or password.", 401)
        session.clear()
        session[SESSION_USER] = settings.username
        session.permanent = True
        return redirect(next_path)  # type: ignore[return-value]

    @server.route(LOGOUT_PATH)
    def logout() -> Response:
        session.clear()
        return redirect(LOGIN_PATH)  # type: ignore[return-value]
