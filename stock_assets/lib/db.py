"""Warehouse connections (psycopg 3) with errors that name their cause: settings or an outage."""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from stock_assets.lib.errors import WarehouseUnavailable
from stock_assets.lib.settings import ConfigError, DbSettings

# Server answers that retrying cannot fix: the settings name a role, password or database the
# server does not know. Everything else (refused, timed out, starting up, dropped) is an outage.
SETTINGS_PROBLEMS = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "does not exist",  # role or database
    "password must be",
    "invalid connection option",
    "invalid port",
    "invalid integer value",
)


def is_settings_problem(message: str) -> bool:
    """True when libpq's connection error names a wrong setting rather than an outage."""
    lowered = message.lower()
    return any(problem in lowered for problem in SETTINGS_PROBLEMS)


def connection_error(settings: DbSettings, exc: psycopg.OperationalError) -> Exception:
    """ConfigError for a wrong setting, WarehouseUnavailable for an outage (transient).

    libpq's message can echo the host and user but never the password.
    """
    if is_settings_problem(str(exc)):
        return ConfigError(
            f"the warehouse at {settings.describe()} rejects the settings "
            f"(db_settings.host/port/dbname/user/password, env STOCK_DB_*): {exc}".strip()
        )
    return WarehouseUnavailable(
        f"warehouse at {settings.describe()} unreachable, retry when it is back "
        f"(it is set by db_settings.host/port, env STOCK_DB_*): {exc}".strip()
    )


def connect(settings: DbSettings, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection: WarehouseUnavailable if the server is down, ConfigError if it rejects
    the settings."""
    try:
        return psycopg.connect(settings.conninfo(), autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise connection_error(settings, exc) from exc


def timescaledb_license(conn: psycopg.Connection) -> str:
    """'apache' for the Debian-built edition, 'timescale' for the community build."""
    row = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
    return str(row[0]) if row and row[0] else "unknown"


def create_database(settings: DbSettings, name: str) -> DbSettings:
    """CREATE DATABASE `name` (from template0); returns settings pointing at it.

    template0 never has connections, so concurrent creations cannot collide on it. TimescaleDB is
    a trusted extension: the migrations create it as the database's owner.
    """
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
    with connect(settings, autocommit=True) as conn:
        conn.execute(statement)
    return settings.model_copy(update={"dbname": name})


def drop_database(settings: DbSettings, name: str, attempts: int = 5) -> None:
    """DROP DATABASE ... WITH (FORCE), retrying while a TimescaleDB background worker (another
    role, which FORCE may not terminate) is connected to it."""
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with connect(settings, autocommit=True) as conn:
        for attempt in range(attempts):
            try:
                conn.execute(statement)
                return
            except psycopg.errors.InsufficientPrivilege:
                if attempt == attempts - 1:
                    raise
                time.sleep(1 + attempt)
