from pathlib import Path

import psycopg
import pytest

from stock_assets.lib import db, migrations, retention
from stock_assets.lib.settings import DbSettings

EXPECTED_HYPERTABLES = {
    ("market", "raw_ticks"),
    ("market", "bars_1m"),
    ("market", "live_bars_1m"),
}


def _schema_fingerprint(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema IN ('market', 'analytics', 'trading', 'ingest')"
        " ORDER BY 1, 2, 3"
    ).fetchall()


def test_migrations_apply_once_then_are_a_no_op(empty_db: DbSettings) -> None:
    with db.connect(empty_db) as conn:
        first = migrations.apply(conn)
        before = _schema_fingerprint(conn)
        second = migrations.apply(conn)
        after = _schema_fingerprint(conn)
        recorded = conn.execute(
            "SELECT version FROM public.schema_migrations ORDER BY version"
        ).fetchall()
    assert [m.version for m in first] == [m.version for m in migrations.discover()]
    assert second == []
    assert before == after and len(before) > 50
    assert [r[0] for r in recorded] == [m.version for m in first]


def test_hypertables_are_listed(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT hypertable_schema, hypertable_name FROM timescaledb_information.hypertables"
    ).fetchall()
    assert set(rows) >= EXPECTED_HYPERTABLES


def test_changed_migration_is_refused(empty_db: DbSettings, tmp_path: Path) -> None:
    for m in migrations.discover():
        (tmp_path / f"{m.version:04d}_{m.name}.sql").write_text(m.sql)
    with db.connect(empty_db) as conn:
        migrations.apply(conn, tmp_path)
        first = sorted(tmp_path.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(migrations.MigrationError, match="changed after it was applied"):
            migrations.apply(conn, tmp_path)


def test_overlapping_offset_ranges_are_rejected(conn: psycopg.Connection) -> None:
    insert = (
        "INSERT INTO ingest.kafka_offsets (topic, partition, start_offset, end_offset, row_count)"
        " VALUES (%s, %s, %s, %s, %s)"
    )
    conn.execute(insert, ("t-overlap", 0, 0, 100, 100))
    conn.execute(insert, ("t-overlap", 1, 50, 60, 10))  # other partition: fine
    with pytest.raises(psycopg.errors.ExclusionViolation):
        conn.execute(insert, ("t-overlap", 0, 99, 150, 51))
    conn.rollback()


def test_retention_matches_license(conn: psycopg.Connection) -> None:
    license_ = db.timescaledb_license(conn)
    assert license_ in {"apache", "timescale"}
    dropped = retention.enforce(conn)
    conn.commit()
    if license_ == "apache":
        assert set(dropped) == set(retention.RETENTION)
    else:
        assert dropped == {}


def test_natural_keys_make_writes_idempotent(conn: psycopg.Connection) -> None:
    row = ("IDEM", "2024-01-02", 1, 2, 0.5, 1.5, 100, 1.2, 0.01, 0.2, 10)
    upsert = (
        "INSERT INTO market.bars_daily (symbol, session_date, open, high, low, close, volume, vwap,"
        " return_1d, realized_vol, trade_count) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
        " ON CONFLICT (symbol, session_date) DO UPDATE SET close = EXCLUDED.close"
    )
    conn.execute(upsert, row)
    conn.execute(upsert, row)
    n = conn.execute("SELECT count(*) FROM market.bars_daily WHERE symbol = 'IDEM'").fetchone()
    conn.rollback()
    assert n == (1,)
