"""Retention drops old raw_ticks chunks; recomputing an older window keeps their bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg

from stock_assets.defs.market.assets import bars_1m
from stock_assets.lib import db
from stock_assets.lib.calendar import TIMEZONE
from stock_assets.lib.settings import DbSettings

# NYSE sessions more than a raw_ticks chunk (30 days) apart
DAY1, DAY2 = "2026-06-01", "2026-08-04"


def _insert_ticks(conn: psycopg.Connection, day: str, offset0: int) -> None:
    start = datetime.fromisoformat(f"{day}T14:00:00").replace(tzinfo=UTC)  # 10:00 New York
    rows = [
        (start + timedelta(seconds=20 * i), "AAPL", 200.0 + i / 10, 10.0, "test", i, 0, offset0 + i)
        for i in range(30)
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO market.raw_ticks"
            " (ts, symbol, price, size, source, seq, kafka_partition, kafka_offset)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )


def _bars(conn: psycopg.Connection, day: str) -> list[tuple]:
    return conn.execute(
        "SELECT ts, open, high, low, close, volume FROM market.bars_1m"
        " WHERE (ts AT TIME ZONE %s)::date = %s::date ORDER BY ts",
        (TIMEZONE, day),
    ).fetchall()


def test_bars_of_expired_ticks_survive_a_recompute(
    module_db: DbSettings, resources: dict[str, object]
) -> None:
    with db.connect(module_db) as conn:
        _insert_ticks(conn, DAY1, 0)
        _insert_ticks(conn, DAY2, 100)
        conn.commit()
    for day in (DAY1, DAY2):
        assert dg.materialize([bars_1m], partition_key=day, resources=resources).success
    with db.connect(module_db) as conn:
        before = _bars(conn, DAY1)
        assert len(before) == 10 and len(_bars(conn, DAY2)) == 10
        # retention drops DAY1's chunk (as warehouse_maintenance would)
        conn.execute(
            "SELECT drop_chunks('market.raw_ticks'::regclass, older_than => %s::timestamptz)",
            (f"{DAY2}T00:00:00+00:00",),
        )
        conn.commit()
        assert conn.execute("SELECT count(*) FROM market.raw_ticks").fetchone() == (30,)
    result = dg.materialize([bars_1m], partition_key=DAY1, resources=resources)
    assert result.success
    [materialization] = result.asset_materializations_for_node("market__bars_1m")
    # the whole window is older than the retained ticks: kept up to its end
    assert materialization.metadata["kept_before"].value.startswith("2026-06-02")  # type: ignore[union-attr]
    with db.connect(module_db) as conn:
        assert _bars(conn, DAY1) == before
        assert len(_bars(conn, DAY2)) == 10
