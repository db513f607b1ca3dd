"""polars frames in and out of the warehouse: bound-parameter reads, CSV COPY reads and writes,
window replaces of the tables in lib/tables.py."""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import polars as pl
import psycopg
from psycopg import sql

from stock_assets.lib.tables import TableSpec

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


# --- table windows (lib/tables.py specs) ----------------------------------------------------

Bound = date | datetime | None


def _bound(spec: TableSpec, value: date | datetime) -> date | datetime:
    """A window bound in the time column's type: a date column takes a datetime's own date."""
    assert spec.time_column is not None
    if spec.column(spec.time_column).pg_type == "date":
        return value.date() if isinstance(value, datetime) else value
    if not isinstance(value, datetime):
        raise TypeError(f"{spec.name}.{spec.time_column} is a timestamp: bound it by a datetime")
    return value


def _where(
    spec: TableSpec, start: Bound, end: Bound, filters: Mapping[str, Any] | None
) -> tuple[sql.Composable, list[Any]]:
    """WHERE clause (bound parameters) of [start, end) on the time column plus equality filters;
    a list/tuple/set filter value means `= ANY(...)`."""
    parts: list[sql.Composable] = []
    params: list[Any] = []
    if start is not None or end is not None:
        if spec.time_column is None:
            raise ValueError(f"{spec.name} has no time column to cut a window on")
        time_col = sql.Identifier(spec.time_column)
        if start is not None:
            parts.append(sql.SQL("{} >= %s").format(time_col))
            params.append(_bound(spec, start))
        if end is not None:
            parts.append(sql.SQL("{} < %s").format(time_col))
            params.append(_bound(spec, end))
    for name, value in (filters or {}).items():
        spec.column(name)  # a KeyError for a column the table lacks
        if isinstance(value, list | tuple | set | frozenset):
            parts.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier(name)))
            params.append(list(value))
        else:
            parts.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
            params.append(value)
    clause = sql.SQL(" AND ").join(parts) if parts else sql.SQL("TRUE")
    return clause, params


def read_window(
    conn: psycopg.Connection,
    spec: TableSpec,
    start: Bound = None,
    end: Bound = None,
    symbols: Collection[str] | None = None,
    *,
    columns: Sequence[str] | None = None,
    where: Mapping[str, Any] | None = None,
) -> pl.DataFrame:
    """Rows of `spec` with start <= time column < end (either side open when None), optionally
    of `symbols` only, as a frame of `columns` (default: the written ones) in spec dtypes.

    One `COPY (SELECT ...) TO STDOUT` parsed by polars' CSV reader: no Python object per row.
    Timestamps are sent as UTC wall time and come back as Datetime("us", "UTC").
    """
    cols = tuple(columns or spec.written)
    schema = spec.schema(cols)
    filters = dict(where or {})
    if symbols is not None:
        filters["symbol"] = list(symbols)
    clause, params = _where(spec, start, end, filters)
    stamps = [n for n, t in schema.items() if isinstance(t, pl.Datetime)]
    select = sql.SQL(", ").join(
        sql.SQL("{} AT TIME ZONE 'UTC'").format(sql.Identifier(n))
        if n in stamps
        else sql.Identifier(n)
        for n in cols
    )
    stmt = sql.SQL("COPY (SELECT {} FROM {} WHERE {}) TO STDOUT (FORMAT csv)").format(
        select, sql.Identifier(spec.schema_name, spec.table_name), clause
    )
    buf = io.BytesIO()
    # COPY has no protocol-level parameters: psycopg binds them client-side (adapted literals)
    with conn.cursor() as cur, cur.copy(stmt, params) as copy:
        for chunk in copy:
            buf.write(chunk)
    if buf.tell() == 0:
        return pl.DataFrame(schema=schema)
    buf.seek(0)
    raw = pl.read_csv(
        buf,
        has_header=False,
        new_columns=list(cols),
        schema_overrides={n: pl.String if n in stamps else t for n, t in schema.items()},
    )
    return raw.with_columns(
        pl.col(n)
        .str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us")
        .dt.replace_time_zone("UTC")
        for n in stamps
    ).select(cols)


def delete_window(
    conn: psycopg.Connection,
    spec: TableSpec,
    start: Bound,
    end: Bound,
    where: Mapping[str, Any] | None = None,
) -> int:
    """Lock `spec`'s writers for the transaction and delete its [start, end) window."""
    clause, params = _where(spec, start, end, where)
    lock_table(conn, spec.name)
    cur = conn.execute(
        sql.SQL("DELETE FROM {} WHERE {}").format(
            sql.Identifier(spec.schema_name, spec.table_name), clause
        ),
        params,
    )
    return cur.rowcount


def replace_window(
    conn: psycopg.Connection,
    spec: TableSpec,
    frame: pl.DataFrame,
    start: Bound,
    end: Bound,
    where: Mapping[str, Any] | None = None,
) -> int:
    """Replace `spec`'s [start, end) window with `frame` in one transaction (advisory lock,
    DELETE, COPY of the written columns); returns the rows written. Idempotent."""
    with conn.transaction():
        delete_window(conn, spec, start, end, where)
        return copy_frame(conn, spec.name, spec.conform(frame))


def replace_window_from(
    conn: psycopg.Connection,
    spec: TableSpec,
    source: sql.Composable,
    columns: Sequence[str],
    start: Bound,
    end: Bound,
    where: Mapping[str, Any] | None = None,
) -> int:
    """Like `replace_window`, the rows coming from the table `source` (e.g. a staging table)."""
    target = sql.Identifier(spec.schema_name, spec.table_name)
    cols = sql.SQL(", ").join(sql.Identifier(spec.column(c).name) for c in columns)
    with conn.transaction():
        delete_window(conn, spec, start, end, where)
        cur = conn.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(target, cols, cols, source)
        )
        return cur.rowcount
