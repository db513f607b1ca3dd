"""Warehouse connections (psycopg 3) with errors that name the setting to fix."""

from __future__ import annotations

import psycopg

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
