"""`python -m dash_app` serves the dashboard with gunicorn (several workers) on the real
warehouse: the login state is shared by the workers, so the lockout and a logout hold whichever
worker answers."""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.harness import free_port, serve_dashboard
from dash_app.settings import DEV_PASSWORD
from stock_assets.lib.settings import DbSettings

pytestmark = pytest.mark.timeout(240)
WORKERS = 3


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def server(dash_db: DbSettings) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    env = {
        "STOCK_DASH_WORKERS": str(WORKERS),
        "STOCK_DASH_SECRET_KEY": secrets.token_urlsafe(48),
        "STOCK_DASH_DAGSTER_GRAPHQL_URL": f"http://127.0.0.1:{free_port()}/graphql",
        "STOCK_DB_DBNAME": dash_db.dbname,
    }
    with serve_dashboard(env) as served:
        yield served.url, served.process


def sign_in(client: httpx.Client, url: str, password: str) -> httpx.Response:
    form = client.get(f"{url}/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)[1]  # type: ignore[index]
    return client.post(f"{url}/login", data={"username": "dev", "password": password, "csrf": csrf})


def test_gunicorn_serves_the_app_with_several_workers(
    server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, proc = server
    response = httpx.get(f"{url}/login")
    assert response.headers["server"].startswith("gunicorn")
    assert len(children(proc.pid)) == WORKERS
    with httpx.Client() as client:
        assert sign_in(client, url, DEV_PASSWORD).status_code == 302
        assert client.get(f"{url}/_dash-layout").status_code == 200
        saved = dict(client.cookies)
        # many requests land on different workers; each checks the session in PostgreSQL
        assert {client.get(f"{url}/_dash-layout").status_code for _ in range(12)} == {200}
        client.get(f"{url}/logout")
    with httpx.Client(cookies=saved) as replay:
        assert {replay.get(f"{url}/_dash-layout").status_code for _ in range(12)} == {401}


def test_the_lockout_holds_across_workers(
    server: tuple[str, subprocess.Popen[bytes]], dash_db: DbSettings
) -> None:
    from stock_assets.lib import db

    url, _ = server
    try:
        statuses = []
        for _ in range(20):  # a fresh connection each time: the attempts spread over workers
            with httpx.Client() as client:
                statuses.append(sign_in(client, url, "wrong").status_code)
        assert statuses[:5] == [401] * 5 and statuses[-1] == 429  # locked after the 5th
        with httpx.Client() as client:
            locked = sign_in(client, url, DEV_PASSWORD)
        assert locked.status_code == 429
        assert "Too many failed sign-in attempts for this user" in locked.text
        assert int(locked.headers["retry-after"]) >= 1
    finally:
        with db.connect(dash_db) as conn:
            conn.execute("DELETE FROM dashboard.login_failures")
            conn.commit()
