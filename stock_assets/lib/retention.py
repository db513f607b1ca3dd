"""Data retention, feature-detected from the TimescaleDB license.

The community build (docker-compose image) gets native compression and retention policies; the
Apache build (local, from Debian's source) has neither, so `enforce` drops old chunks directly.
"""

from __future__ import annotations

from datetime import datetime, timedelta

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


def raw_ticks_retained_from(conn: psycopg.Connection) -> datetime | None:
    """The first minute whose raw ticks are still stored (None: no raw ticks at all).

    Retention drops whole raw_ticks chunks (1 day) by event time, but the bars built from them
    stay: a later recompute of an older window (a backfill, a re-run) must not replace those bars
    with the nothing that is left. Chunks hold whole minutes, so bars from this minute on can be
    rebuilt exactly; everything before it is kept as it is.
    """
    row = conn.execute("SELECT date_trunc('minute', min(ts)) FROM market.raw_ticks").fetchone()
    return row[0] if row else None


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
