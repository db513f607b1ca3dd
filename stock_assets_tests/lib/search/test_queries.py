"""The dashboard's search module over the real engine, checked against SQL on the same rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg
import pytest
from elasticsearch import Elasticsearch

from stock_assets.lib import db
from stock_assets.lib.search import indexing, queries, templates
from stock_assets.lib.search.indexing import FORWARD_SESSIONS
from stock_assets.lib.search.queries import SignalFilter
from stock_assets.lib.settings import DbSettings
from stock_assets_tests.lib.search import data

# The signals with their forward return, computed from bars_daily independently of the indexer.
SQL_SIGNALS = """
WITH b AS (
    SELECT symbol, session_date, close,
           lead(close, %(n)s) OVER (PARTITION BY symbol ORDER BY session_date) AS fwd
    FROM market.bars_daily
)
SELECT s.symbol, s.session_date, s.strategy, s.side, s.reason,
       b.fwd / b.close - 1 AS forward_return,
       CASE WHEN s.side = 'buy' THEN 1 ELSE -1 END * (b.fwd / b.close - 1) AS signal_return
FROM analytics.signals s JOIN b USING (symbol, session_date)
WHERE (%(symbols)s::text[] IS NULL OR s.symbol = ANY(%(symbols)s))
  AND (%(strategies)s::text[] IS NULL OR s.strategy = ANY(%(strategies)s))
  AND (%(side)s::text IS NULL OR s.side = %(side)s)
  AND (%(date_from)s::date IS NULL OR s.session_date >= %(date_from)s)
  AND (%(date_to)s::date IS NULL OR s.session_date <= %(date_to)s)
  AND (%(like)s::text IS NULL OR s.reason ILIKE %(like)s)
"""

FILTERS = {
    "everything": (SignalFilter(), None),
    "buys_2004": (
        SignalFilter(side="buy", date_from=date(2004, 1, 1), date_to=date(2004, 12, 31)),
        None,
    ),
    "aapl_msft_crosses": (
        SignalFilter(symbols=("AAPL", "MSFT"), strategies=("sma_crossover", "macd_cross")),
        None,
    ),
    "oversold_text": (SignalFilter(text="oversold"), "%oversold%"),
    "phrase_and_filter": (
        SignalFilter(text='"crossed below"', side="sell", date_from=date(2005, 1, 1)),
        "%crossed below%",
    ),
}


@pytest.fixture(scope="module")
def conn(history_db: DbSettings) -> Iterator[psycopg.Connection]:
    with db.connect(history_db) as connection:
        yield connection


@pytest.fixture(scope="module")
def indexed(client: Elasticsearch, conn: psycopg.Connection, prefix: str) -> int:
    templates.apply_templates(client, prefix)
    report = indexing.sync_signals(client, conn, prefix, data.FIRST, data.LAST)
    assert report.failed == 0
    return report.indexed


def sql_signals(conn: psycopg.Connection, flt: SignalFilter, like: str | None) -> list[tuple]:
    params: dict[str, Any] = {
        "n": FORWARD_SESSIONS,
        "symbols": list(flt.symbols) or None,
        "strategies": list(flt.strategies) or None,
        "side": flt.side,
        "date_from": flt.date_from,
        "date_to": flt.date_to,
        "like": like,
    }
    return conn.execute(SQL_SIGNALS, params).fetchall()


@pytest.mark.parametrize("name", FILTERS)
def test_search_returns_exactly_the_matching_signals(
    name: str, indexed: int, client: Elasticsearch, conn: psycopg.Connection, prefix: str
) -> None:
    flt, like = FILTERS[name]
    expected = {(r[0], r[1], r[2]) for r in sql_signals(conn, flt, like)}
    assert expected, "the filter should match real signals"
    page = queries.search_signals(client, prefix, flt, size=10_000)
    assert page.total == len(expected)
    assert {(h.symbol, h.session_date, h.strategy) for h in page.hits} == expected
    if flt.text:
        assert all(h.highlight and "<em>" in h.highlight for h in page.hits)
    else:
        days = [h.session_date for h in page.hits]
        assert days == sorted(days, reverse=True)


def test_paging(indexed: int, client: Elasticsearch, prefix: str) -> None:
    flt = SignalFilter(symbols=("IBM",))
    whole = queries.search_signals(client, prefix, flt, size=40)
    pages = [
        queries.search_signals(client, prefix, flt, size=10, offset=o) for o in (0, 10, 20, 30)
    ]
    assert [h.id for p in pages for h in p.hits] == [h.id for h in whole.hits]


@pytest.mark.parametrize("name", FILTERS)
def test_aggregations_equal_sql(
    name: str, indexed: int, client: Elasticsearch, conn: psycopg.Connection, prefix: str
) -> None:
    flt, like = FILTERS[name]
    rows = sql_signals(conn, flt, like)
    result = queries.signal_analytics(client, prefix, flt, interval="month")
    assert result.total == len(rows)

    months: dict[date, int] = {}
    strategies: dict[str, int] = {}
    symbols: dict[str, int] = {}
    returns: dict[str, list[tuple[float, float]]] = {}
    for symbol, day, strategy, _side, _reason, forward, signed in rows:
        months[day.replace(day=1)] = months.get(day.replace(day=1), 0) + 1
        strategies[strategy] = strategies.get(strategy, 0) + 1
        symbols[symbol] = symbols.get(symbol, 0) + 1
        returns.setdefault(strategy, [])
        if forward is not None:
            returns[strategy].append((forward, signed))
    assert {b.start: b.count for b in result.over_time} == months
    assert {b.key: b.count for b in result.by_strategy} == strategies
    assert {b.key: b.count for b in result.by_symbol} == symbols

    assert [r.strategy for r in result.returns] == sorted(strategies)
    for r in result.returns:
        known = returns[r.strategy]
        assert (r.signals, r.with_forward_return) == (strategies[r.strategy], len(known))
        if known:
            assert r.avg_forward_return == pytest.approx(sum(f for f, _ in known) / len(known))
            assert r.avg_signal_return == pytest.approx(sum(s for _, s in known) / len(known))


def test_average_forward_return_equals_sql_avg(
    indexed: int, client: Elasticsearch, conn: psycopg.Connection, prefix: str
) -> None:
    """The same figure straight from TimescaleDB's AVG (NULLs ignored, as the engine does)."""
    sql_avg = dict(
        conn.execute(
            f"SELECT strategy, avg(forward_return) FROM ({SQL_SIGNALS}) s GROUP BY strategy",
            {
                "n": FORWARD_SESSIONS,
                "symbols": None,
                "strategies": None,
                "side": None,
                "date_from": None,
                "date_to": None,
                "like": None,
            },
        ).fetchall()
    )
    result = queries.signal_analytics(client, prefix, SignalFilter())
    assert len(sql_avg) == 4
    assert {r.strategy: r.avg_forward_return for r in result.returns} == pytest.approx(sql_avg)


def test_weekly_histogram_buckets_start_on_monday(
    indexed: int, client: Elasticsearch, prefix: str
) -> None:
    flt = SignalFilter(date_from=date(2005, 1, 1), date_to=date(2005, 3, 31))
    result = queries.signal_analytics(client, prefix, flt, interval="week")
    assert result.over_time
    assert all(b.start.weekday() == 0 for b in result.over_time)
    assert sum(b.count for b in result.over_time) == result.total


def test_no_index_yet_means_empty_results(client: Elasticsearch) -> None:
    empty_prefix = data.private_search_settings().index_prefix
    assert queries.search_signals(client, empty_prefix, SignalFilter()).total == 0
    result = queries.signal_analytics(client, empty_prefix, SignalFilter())
    assert (result.total, result.over_time, result.returns) == (0, (), ())
