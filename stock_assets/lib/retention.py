"""Data retention, feature-detected from the TimescaleDB license.

The community build (docker-compose image) gets native compression and retention policies; the
Apache build (local, from Debian's source) has neither, so `enforce` drops old chunks directly.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
from psycopg import sql

from stock_assets.lib.db import timescaledb_license

RETENTION: dict[str, timedelta] = {
    "market.raw_ticks": timedelta(days=365),
    "market.live_bars_1m": timedelta(days=30),
}
COMPRESS_AFTER: dict[str, tuple[timedelta, str]] = {
    "market.raw_ticks": (timedelta(days=7), "symbol"),
}


def configure_policies(conn: psycopg.Connection) -> str:
    """Install native policies where licensed; returns the license seen."""
    license_ = timescaledb_license(conn)
    if license_ != "timescale":
        return license_
    with conn.transaction():
        for table, (after, segment_by) in COMPRESS_AFTER.items():
            conn.execute(
                sql.SQL(
                    "ALTER TABLE {} SET (timescaledb.compress, timescaledb.compress_segmentby = {})"
                ).format(sql.Identifier(*table.split(".")), sql.Literal(segment_by))
            )
            conn.execute(
                "SELECT add_compression_policy(%s::regclass, %s, if_not_exists => true)",
                (table, after),
            )
        for table, keep in RETENTION.items():
            conn.execute(
                "SELECT add_retention_policy(%s::regclass, %s, if_not_exists => true)",
                (table, keep),
            )
    return license_


def enforce(conn: psycopg.Connection) -> dict[str, int]:
    """Drop chunks older than each table's retention (Apache build); returns chunks dropped."""
    if timescaledb_license(conn) == "timescale":
        return {}
    dropped: dict[str, int] = {}
    with conn.transaction():
        for table, keep in RETENTION.items():
            rows = conn.execute(
                "SELECT drop_chunks(%s::regclass, older_than => now() - %s::interval)",
                (table, keep),
            ).fetchall()
            dropped[table] = len(rows)
    return dropped
