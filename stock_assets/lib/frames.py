"""polars frames in and out of the warehouse: bound-parameter reads, CSV COPY writes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
import psycopg
from psycopg import sql

CSV_DATETIME = "%Y-%m-%d %H:%M:%S%.f%z"


def read_frame(
    conn: psycopg.Connection,
    query: str,
    params: Sequence[Any] | Mapping[str, Any],
    schema: Mapping[str, Any],
) -> pl.DataFrame:
    """Run a query (columns in `schema` order) into a frame; timestamps come back in UTC."""
    with conn.cursor() as cur:
        cur.execute(query.encode(), params)
        rows = cur.fetchall()
    return pl.DataFrame(rows, schema=dict(schema), orient="row")


def copy_frame(conn: psycopg.Connection, table: str, df: pl.DataFrame) -> int:
    """COPY the frame's columns into schema.table (CSV, NaN written as NULL); returns rows."""
    if df.is_empty():
        return 0
    floats = [n for n, t in df.schema.items() if t in (pl.Float32, pl.Float64)]
    df = df.with_columns(pl.col(floats).fill_nan(None)) if floats else df
    payload = df.write_csv(include_header=False, datetime_format=CSV_DATETIME).encode()
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(*table.split(".")), sql.SQL(", ").join(map(sql.Identifier, df.columns))
    )
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        copy.write(payload)
    return df.height


def lock_table(conn: psycopg.Connection, table: str) -> None:
    """Serialise writers of one table for the rest of the transaction (delete+insert windows)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
