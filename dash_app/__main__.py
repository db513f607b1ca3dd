"""`python -m dash_app`: serve the dashboard with gunicorn; `python -m dash_app hash-password`:
make a password hash.

Serving runs gunicorn in-process (its `BaseApplication` API) so host, port, workers and threads
come from DashSettings like every other setting. Each worker builds its own app (no preload):
connection pools are never shared across fork. Login state lives in PostgreSQL, so lockouts and
logouts hold across workers.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from typing import Any

from werkzeug.security import generate_password_hash

from dash_app.settings import DashSettings
from stock_assets.lib.settings import ConfigError, DbSettings

log = logging.getLogger("dash_app")


def gunicorn_options(settings: DashSettings) -> dict[str, Any]:
    return {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "worker_class": "gthread",  # callbacks wait on PostgreSQL/Kafka/search: threads suit
        "threads": settings.threads,
        "timeout": 60,
        "graceful_timeout": 10,
        "preload_app": False,
        "proc_name": "stock-dashboard",
        "accesslog": None,
        "errorlog": "-",
    }


def serve(settings: DashSettings) -> None:
    """Run gunicorn until it is stopped (SIGTERM/SIGINT stop it gracefully)."""
    from gunicorn.app.base import BaseApplication

    class DashboardServer(BaseApplication):
        def load_config(self) -> None:
            for key, value in gunicorn_options(settings).items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from dash_app.app import build_services, create_app

            return create_app(settings, build_services(settings)).server

    DashboardServer().run()


def check_warehouse(db_settings: DbSettings) -> None:
    """Fail fast, with the fix, when the login tables (migration 0010) are missing."""
    import psycopg

    try:
        with psycopg.connect(db_settings.conninfo(), connect_timeout=5) as conn:
            found = conn.execute("SELECT to_regclass('dashboard.sessions')").fetchone()
    except psycopg.OperationalError as exc:
        raise ConfigError(f"warehouse at {db_settings.describe()} unreachable: {exc}") from exc
    if not found or found[0] is None:
        raise ConfigError(
            f"warehouse {db_settings.describe()} has no dashboard.sessions table (migration "
            "0010): run `stockctl migrate` (make services-up does)"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dash_app", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=("serve", "hash-password"))
    parser.add_argument("--host", help="override dash_settings.host")
    parser.add_argument("--port", type=int, help="override dash_settings.port")
    parser.add_argument("--workers", type=int, help="override dash_settings.workers (gunicorn)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    if args.command == "hash-password":
        password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline()
        password = password.rstrip("\n")
        if not password:
            log.error("empty password")
            return 2
        sys.stdout.write(generate_password_hash(password) + "\n")
        return 0

    try:
        chosen = (("host", args.host), ("port", args.port), ("workers", args.workers))
        overrides = {k: v for k, v in chosen if v is not None}
        settings = DashSettings.load(**overrides)
        settings.validate_for_startup()
        check_warehouse(DbSettings.load())
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    log.info(
        "dashboard on http://%s:%s (gunicorn, %d workers x %d threads; mode %s, user %s)",
        settings.host,
        settings.port,
        settings.workers,
        settings.threads,
        settings.mode,
        settings.username,
    )
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
