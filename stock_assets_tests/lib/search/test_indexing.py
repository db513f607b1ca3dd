"""Bulk indexing from the real warehouse into the real engine: idempotent, exact, forward return."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from elasticsearch import Elasticsearch, helpers

from stock_assets.lib import db
from stock_assets.lib.search import indexing, templates
from stock_assets.lib.search.indexing import FORWARD_SESSIONS, SIGNAL_REFRESH
from stock_assets.lib.settings import DbSettings


@pytest.fixture(scope="module")
def conn(history_db: DbSettings) -> Iterator[psycopg.Connection]:
    with db.connect(history_db) as connection:
        yield connection


@pytest.fixture(scope="module", autouse=True)
def _templates(client: Elasticsearch, prefix: str) -> None:
    templates.apply_templates(client, prefix)


def _sql_count(conn: psycopg.Connection, table: str, first: date, last: date) -> int:
    query = {
        "signals": "SELECT count(*) FROM analytics.signals WHERE session_date BETWEEN %s AND %s",
        "bars": "SELECT count(*) FROM market.bars_daily WHERE session_date BETWEEN %s AND %s",
    }[table]
    row = conn.execute(query, (first, last)).fetchone()
    assert row is not None
    return int(row[0])


def _ids(client: Elasticsearch, pattern: str) -> set[str]:
    return {h["_id"] for h in helpers.scan(client, index=pattern, query={"_source": False})}


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (date(2004, 1, 5), date(2004, 1, 5), [(date(2004, 1, 5), date(2004, 1, 5))]),
        (date(2004, 1, 20), date(2004, 3, 2), [(date(2004, 1, 20), date(2004, 3, 2))]),
        (
            date(2003, 6, 1),
            date(2005, 1, 1),
            [
                (date(2003, 6, 1), date(2003, 12, 31)),
                (date(2004, 1, 1), date(2004, 12, 31)),
                (date(2005, 1, 1), date(2005, 1, 1)),
            ],
        ),
    ],
)
def test_year_spans(first: date, last: date, expected: list[tuple[date, date]]) -> None:
    assert list(indexing.year_spans(first, last)) == expected


def test_same_partition_twice_gives_the_same_documents(
    client: Elasticsearch, conn: psycopg.Connection, prefix: str
) -> None:
    day = date(2004, 10, 15)
    first = indexing.sync_daily_bars(client, conn, prefix, day, day)
    ids = _ids(client, templates.BARS_DAILY.pattern(prefix))
    second = indexing.sync_daily_bars(client, conn, prefix, day, day)
    assert first.rows_read == second.rows_read == _sql_count(conn, "bars", day, day) == 4
    assert (first.indexed, first.deleted, first.failed) == (4, 0, 0)
    assert (second.indexed, second.deleted, second.failed) == (4, 0, 0)
    assert _ids(client, templates.BARS_DAILY.pattern(prefix)) == ids
    assert indexing.count(client, templates.BARS_DAILY, prefix, day, day) == 4
    assert second.indices == {f"{prefix}-bars-daily-2004"}


def test_signal_window_twice_and_refresh_span(
    client: Elasticsearch, conn: psycopg.Connection, prefix: str
) -> None:
    first, last = date(2004, 9, 1), date(2004, 9, 30)
    reports = [indexing.sync_signals(client, conn, prefix, first, last) for _ in range(2)]
    expected = _sql_count(conn, "signals", first - SIGNAL_REFRESH, last)
    assert expected > 10
    for report in reports:
        assert (report.first_date, report.last_date) == (first - SIGNAL_REFRESH, last)
        assert (report.rows_read, report.indexed, report.failed) == (expected, expected, 0)
    assert indexing.count(client, templates.SIGNALS, prefix, first - SIGNAL_REFRESH, last) == (
        expected
    )


def test_rows_gone_from_the_warehouse_leave_the_index(
    client: Elasticsearch, conn: psycopg.Connection, prefix: str
) -> None:
    first, last = date(2004, 11, 1), date(2004, 11, 30)
    full = indexing.sync_window(
        client, conn, templates.SIGNALS, prefix, first, last, indexing.read_signal_docs
    )
    dropped: list[str] = []

    def without_one(c: psycopg.Connection, a: date, b: date) -> list[dict]:
        docs = indexing.read_signal_docs(c, a, b)
        dropped.append(docs[0]["_id"])
        return docs[1:]

    smaller = indexing.sync_window(
        client, conn, templates.SIGNALS, prefix, first, last, without_one
    )
    assert smaller.deleted == 1
    assert indexing.count(client, templates.SIGNALS, prefix, first, last) == full.rows_read - 1
    assert not client.exists(index=templates.SIGNALS.index_for(prefix, first), id=dropped[0])


def test_forward_return_matches_sql_over_all_bars(
    client: Elasticsearch, conn: psycopg.Connection, prefix: str
) -> None:
    first, last = date(2005, 6, 1), date(2005, 6, 30)  # the last days have no forward close yet
    indexing.sync_window(
        client, conn, templates.SIGNALS, prefix, first, last, indexing.read_signal_docs
    )
    rows = conn.execute(
        """
        WITH b AS (
            SELECT symbol, session_date, close,
                   lead(close, %s) OVER (PARTITION BY symbol ORDER BY session_date) AS fwd
            FROM market.bars_daily
        )
        SELECT s.symbol, s.session_date, s.strategy, s.params, s.side, b.fwd / b.close - 1
        FROM analytics.signals s JOIN b USING (symbol, session_date)
        WHERE s.session_date BETWEEN %s AND %s
        """,
        (FORWARD_SESSIONS, first, last),
    ).fetchall()
    assert any(r[5] is None for r in rows) and any(r[5] is not None for r in rows)
    for symbol, day, strategy, params, side, forward in rows:
        doc = client.get(
            index=templates.SIGNALS.index_for(prefix, day),
            id=indexing.doc_id(symbol, day, strategy, params),  # the row's natural key
        )["_source"]
        assert doc["params"] == params
        assert doc["forward_sessions"] == FORWARD_SESSIONS
        if forward is None:
            assert doc["forward_return"] is None and doc["signal_return"] is None
        else:
            assert doc["forward_return"] == pytest.approx(forward, rel=1e-12)
            sign = 1 if side == "buy" else -1
            assert doc["signal_return"] == pytest.approx(sign * forward, rel=1e-12)


def test_alerts_resent_overwrite(client: Elasticsearch, prefix: str) -> None:
    ts = datetime(2005, 3, 1, 15, 30, tzinfo=UTC)
    alerts = [
        indexing.Alert("AAPL", ts + timedelta(minutes=i), "price_jump", "warning", f"AAPL +{i}%")
        for i in range(3)
    ]
    for _ in range(2):
        report = indexing.index_alerts(client, prefix, alerts)
        assert (report.indexed, report.failed) == (3, 0)
    assert report.indices == {f"{prefix}-alerts-2005"}
    day = ts.date()
    assert indexing.count(client, templates.ALERTS, prefix, day, day) == 3


def test_rejected_documents_are_reported_not_raised(client: Elasticsearch, prefix: str) -> None:
    doc = {"_id": "bad", "symbol": "AAPL", "session_date": date(2004, 4, 1), "surprise": 1}
    report = indexing.index_docs(client, templates.BARS_DAILY, prefix, [doc])
    assert (report.indexed, report.failed) == (0, 1)
    assert "strict_dynamic_mapping_exception" in report.errors[0]
