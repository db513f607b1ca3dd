"""Warehouse connections (psycopg 3) with errors that name the setting to fix."""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from stock_assets.lib.settings import ConfigError, DbSettings


def connect(settings: DbSettings, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection; an unreachable or misconfigured server raises ConfigError."""
    try:
        return psycopg.connect(settings.conninfo(), autocommit=autocommit)
    except psycopg.OperationalError as exc:
        # libpq's message can echo the host and user but never the password.
        raise ConfigError(
            f"cannot connect to the warehouse at {settings.describe()} "
            f"(settings db_settings.host/port/user/password, env STOCK_DB_*): {exc}".strip()
        ) from exc


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
