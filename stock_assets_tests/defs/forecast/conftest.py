"""A private MLflow tracking server for the forecast tests: the project's server install
(infra/services/mlflow.sh), on a free loopback port, backed by a private PostgreSQL database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from stock_assets.lib.settings import REPO_ROOT, DbSettings
from stock_assets_tests.conftest import private_database

MLFLOW_VERSION = "3.17.2"  # = infra/services/mlflow.sh MLFLOW_VERSION = the client pin


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(f"{url}/health", timeout=2).status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def mlflow_server(
    base_db_settings: DbSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The tracking URI of a fresh MLflow server (stopped and its database dropped afterwards)."""
    state = Path(os.environ.get("STOCK_STATE_DIR", REPO_ROOT / ".local"))
    binary = state / "cache" / f"mlflow-{MLFLOW_VERSION}" / "bin" / "mlflow"
    if not binary.exists():
        subprocess.run(
            ["bash", str(REPO_ROOT / "infra" / "services.sh"), "install", "mlflow"], check=True
        )
    artifacts = tmp_path_factory.mktemp("mlflow-artifacts")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with private_database(base_db_settings, migrated=False) as db:
        env = {**os.environ, "PGPASSWORD": db.password.get_secret_value()}
        log = (artifacts.parent / "mlflow-server.log").open("wb")
        proc = subprocess.Popen(
            [
                str(binary),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"postgresql+psycopg2://{db.user}@{db.host}:{db.port}/{db.dbname}",
                "--artifacts-destination",
                str(artifacts),
                "--serve-artifacts",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 240
            while not _healthy(url):
                assert proc.poll() is None, f"mlflow server exited (log: {log.name})"
                assert time.monotonic() < deadline, f"mlflow server not healthy (log: {log.name})"
                time.sleep(0.5)
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            log.close()
