"""The table specs against the migrated database; read_window/replace_window round trips."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import psycopg
import pytest
from polars.testing import assert_frame_equal

from stock_assets.lib import frames, tables
from stock_assets.lib.tables import Column, TableSpec

SCHEMAS = ("market", "ingest", "analytics", "trading", "forecast", "dashboard")


def _live_columns(conn: psycopg.Connection) -> dict[str, list[tuple[str, str, bool, bool]]]:
    rows = conn.execute(
        "SELECT table_schema || '.' || table_name, column_name, data_type, is_nullable = 'YES',"
        " column_default IS NOT NULL OR is_identity = 'YES'"
        " FROM information_schema.columns WHERE table_schema = ANY(%s)"
        " AND table_name NOT LIKE '\\_stage\\_%%' ORDER BY 1, ordinal_position",
        (list(SCHEMAS),),
    ).fetchall()
    out: dict[str, list[tuple[str, str, bool, bool]]] = {}
    for table, name, pg_type, nullable, has_default in rows:
        out.setdefault(table, []).append((name, pg_type, nullable, has_default))
    return out


def _live_primary_keys(conn: psycopg.Connection) -> dict[str, tuple[str, ...]]:
    rows = conn.execute(
        "SELECT n.nspname || '.' || c.relname, a.attname FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum"
        " WHERE i.indisprimary AND n.nspname = ANY(%s) ORDER BY 1, k.ord",
        (list(SCHEMAS),),
    ).fetchall()
    out: dict[str, tuple[str, ...]] = {}
    for table, column in rows:
        out[table] = (*out.get(table, ()), column)
    return out


def test_every_spec_matches_the_migrated_database(conn: psycopg.Connection) -> None:
    live, keys = _live_columns(conn), _live_primary_keys(conn)
    for spec in tables.ALL:
        expected = [(c.name, c.pg_type, c.nullable) for c in spec.columns]
        assert [r[:3] for r in live[spec.name]] == expected, spec.name
        assert keys[spec.name] == spec.primary_key, spec.name
        # a column the loaders leave out must have a default; one they write must not need one
        for c, (_, _, nullable, has_default) in zip(spec.columns, live[spec.name], strict=True):
            if not c.written:
                assert has_default or nullable, f"{spec.name}.{c.name} is not filled by the db"


def test_every_table_has_a_spec(conn: psycopg.Connection) -> None:
    assert set(_live_columns(conn)) == set(tables.BY_NAME)


def test_spec_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="bad spec"):
        TableSpec("a.b", (Column("x", "text"),), primary_key=("y",))


def test_schema_follows_the_spec() -> None:
    assert tables.BARS_1M.schema(["ts", "trade_count"]) == {
        "ts": pl.Datetime("us", "UTC"),
        "trade_count": pl.Int32,
    }
    assert "ingested_at" in tables.RAW_TICKS.names
    assert "ingested_at" not in tables.RAW_TICKS.written
    with pytest.raises(KeyError):
        tables.BARS_DAILY.schema(["nope"])


def _bars(day: date, symbol: str, close: float) -> dict[str, object]:
    return {
        "symbol": symbol,
        "session_date": day,
        "open": close,
        "high": close + 1,
        "low": close - 1,
        "close": close,
        "volume": 1e6,
        "vwap": None,
        "return_1d": float("nan"),  # written as NULL
        "realized_vol": 0.1,
        "trade_count": 7,
    }


def test_replace_and_read_a_date_window(conn: psycopg.Connection) -> None:
    with conn.transaction(force_rollback=True):
        _date_window(conn)


def _date_window(conn: psycopg.Connection) -> None:
    spec = tables.BARS_DAILY
    days = [date(2031, 1, d) for d in (2, 3, 6)]
    first = pl.DataFrame(
        [_bars(d, s, 10.0 + i) for i, d in enumerate(days) for s in ("AAA", "BBB")],
        schema=spec.schema(),
    )
    assert frames.replace_window(conn, spec, first, days[0], date(2031, 1, 7)) == 6
    # a re-run of the middle day replaces only that day
    again = first.filter(pl.col("session_date") == days[1]).with_columns(close=pl.lit(99.0))
    start = datetime(2031, 1, 3, tzinfo=UTC)  # a datetime bound cuts a date column by its date
    assert frames.replace_window(conn, spec, again, start, date(2031, 1, 4)) == 2
    got = frames.read_window(conn, spec, days[0], date(2031, 1, 7)).sort("symbol", "session_date")
    assert got.schema == pl.Schema(spec.schema())
    assert got.filter(pl.col("session_date") == days[1])["close"].to_list() == [99.0, 99.0]
    assert got["return_1d"].null_count() == 6 and got["vwap"].null_count() == 6
    only = frames.read_window(
        conn, spec, end=days[1], symbols=["BBB"], columns=["symbol", "session_date", "close"]
    )
    assert only.rows() == [("BBB", days[0], 10.0)]


def test_read_window_of_timestamps_is_utc(conn: psycopg.Connection) -> None:
    with conn.transaction(force_rollback=True):
        _timestamp_window(conn)


def _timestamp_window(conn: psycopg.Connection) -> None:
    spec = tables.BARS_1M
    ts = [datetime(2031, 2, 3, 14, 30, tzinfo=UTC), datetime(2031, 2, 3, 14, 31, 0, 500, UTC)]
    bars = pl.DataFrame(
        {
            "symbol": ["AAA", "AAA"],
            "ts": ts,
            **{c: [1.5, 2.25] for c in ("open", "high", "low", "close", "volume", "vwap")},
            "trade_count": [1, 2],
        },
        schema=spec.schema(),
    )
    conn.execute("SET LOCAL TIME ZONE 'America/Chicago'")  # the session zone must not matter
    frames.replace_window(conn, spec, bars, ts[0], datetime(2031, 2, 4, tzinfo=UTC))
    got = frames.read_window(conn, spec, ts[0], datetime(2031, 2, 4, tzinfo=UTC)).sort("ts")
    assert_frame_equal(got, bars)
    empty = frames.read_window(conn, spec, datetime(2031, 3, 1, tzinfo=UTC))
    assert empty.is_empty() and empty.schema == pl.Schema(spec.schema())
    with pytest.raises(TypeError):
        frames.read_window(conn, spec, date(2031, 2, 3))
