"""`python -m dash_app` serves the dashboard with gunicorn (several workers) on the real
warehouse: the login state is shared by the workers, so the lockout and a logout hold whichever
worker answers."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.harness import free_port
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
    port = free_port()
    env = {
        **os.environ,
        "STOCK_DASH_PORT": str(port),
        "STOCK_DASH_WORKERS": str(WORKERS),
        "STOCK_DASH_SECRET_KEY": secrets.token_urlsafe(48),
        "STOCK_DASH_DAGSTER_GRAPHQL_URL": f"http://127.0.0.1:{free_port()}/graphql",
        "STOCK_DB_DBNAME": dash_db.dbname,
    }
    proc = subprocess.Popen([sys.executable, "-m", "dash_app"], env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            assert proc.poll() is None, f"dash_app exited with {proc.returncode}"
            try:
                if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer within 90 s"
            time.sleep(0.5)
        yield url, proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the master stops its workers gracefully
        proc.wait(30)


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
