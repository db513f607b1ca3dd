"""Warehouse rows → search documents: bulk, deterministic ids, one window of days at a time.

`sync_window` makes the index hold exactly the warehouse rows of a date window: it indexes every
row (id = sha1 of the natural key, index = the year of the row's date, so a second run
overwrites instead of duplicating) and deletes the documents of the window that the warehouse no
longer has, one yearly index at a time. Running it again for the same window is
therefore always safe, which is what makes a later run catch up after the engine was down.

Forward return (signals): the close `FORWARD_SESSIONS` sessions after the signal's session, from
market.bars_daily, at index time: forward_return = forward_close / close - 1 where close is the
signal session's close (the bar the signal fired on); signal_return is the same move in the
signal's direction (negated for sell). Both stay null until that later session is in the
warehouse; `SIGNAL_REFRESH` makes each run re-index the recent days before its window so their
forward returns fill in as new closes arrive.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from stock_assets.lib import tables
from stock_assets.lib.calendar import ZONE
from stock_assets.lib.search.templates import ALERTS, BARS_DAILY, SIGNALS, Dataset

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

FORWARD_SESSIONS = 5
# Days before a signals window that each run re-indexes: FORWARD_SESSIONS sessions after a
# signal are at most ~9 calendar days later (holidays), so the day that completes a signal's
# forward return always refreshes it.
SIGNAL_REFRESH = timedelta(days=14)
# How far past a window bars are read to find the forward close.
FORWARD_LOOKAHEAD = timedelta(days=31)
BULK_CHUNK = 500
MAX_ERRORS_KEPT = 5

DocReader = Callable[[psycopg.Connection, date, date], list[dict[str, Any]]]

# Document fields that mirror a table are its written columns (lib/tables.py); a document's id
# is its row's primary key.
SIGNAL_DOCS_SQL = sql.SQL("""
WITH closes AS (
    SELECT symbol, session_date, close,
           lead(session_date, %(n)s) OVER w AS forward_date,
           lead(close, %(n)s) OVER w AS forward_close
    FROM market.bars_daily
    WHERE session_date BETWEEN %(first)s AND %(last_bar)s
    WINDOW w AS (PARTITION BY symbol ORDER BY session_date)
)
SELECT {signal_cols}, c.close, c.forward_date, c.forward_close
FROM analytics.signals s
LEFT JOIN closes c USING (symbol, session_date)
WHERE s.session_date BETWEEN %(first)s AND %(last)s
ORDER BY s.session_date, s.symbol, s.strategy, s.params
""").format(signal_cols=sql.SQL(", ").join(sql.Identifier("s", c) for c in tables.SIGNALS.written))

BAR_DOCS_SQL = sql.SQL("""
SELECT {cols}
FROM market.bars_daily
WHERE session_date BETWEEN %(first)s AND %(last)s
ORDER BY session_date, symbol
""").format(cols=sql.SQL(", ").join(map(sql.Identifier, tables.BARS_DAILY.written)))


ALERT_ROWS_SQL = sql.SQL("""
SELECT {cols}
FROM analytics.alerts
WHERE session_date BETWEEN %(first)s AND %(last)s
ORDER BY session_date, symbol, rule
""").format(cols=sql.SQL(", ").join(map(sql.Identifier, tables.ALERTS.written)))
# analytics.alerts fire on a daily bar: the document's instant is that session's close
SESSION_CLOSE = time(16)
# the trading bot's rules carry no severity
ALERT_SEVERITY = "info"


def doc_id(*natural_key: object) -> str:
    """sha1 of the natural key's parts, joined by a separator no part contains."""
    return hashlib.sha1("\x1f".join(str(p) for p in natural_key).encode()).hexdigest()


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _fetch(conn: psycopg.Connection, query: sql.Composed, params: Mapping[str, Any]) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def read_signal_docs(conn: psycopg.Connection, first: date, last: date) -> list[dict[str, Any]]:
    """Signals of [first, last] with their forward return; each dict carries `_id`."""
    rows = _fetch(
        conn,
        SIGNAL_DOCS_SQL,
        {"n": FORWARD_SESSIONS, "first": first, "last": last, "last_bar": last + FORWARD_LOOKAHEAD},
    )
    docs = []
    for row in rows:
        close, forward_close = row["close"], row["forward_close"]
        forward = forward_close / close - 1 if close and forward_close is not None else None
        direction = 1.0 if row["side"] == "buy" else -1.0
        docs.append(
            {
                **row,
                "_id": doc_id(*(row[k] for k in tables.SIGNALS.primary_key)),
                "forward_sessions": FORWARD_SESSIONS,
                "forward_return": forward,
                "signal_return": None if forward is None else direction * forward,
            }
        )
    return docs


def read_bar_docs(conn: psycopg.Connection, first: date, last: date) -> list[dict[str, Any]]:
    """Daily bars of [first, last]; each dict carries `_id`."""
    rows = _fetch(conn, BAR_DOCS_SQL, {"first": first, "last": last})
    return [{**r, "_id": doc_id(*(r[k] for k in tables.BARS_DAILY.primary_key))} for r in rows]


@dataclass(frozen=True)
class Alert:
    """An alert raised for a symbol (the trading bot and the streaming job produce these).

    The id is `alert_id` when the producer has a deterministic one (analytics.alerts does: two
    rules of one kind can fire for the same symbol and session), else sha1(symbol, instant, kind).
    """

    symbol: str
    ts: datetime
    kind: str
    severity: str
    message: str
    value: float | None = None
    threshold: float | None = None
    rule: str | None = None
    direction: str | None = None
    alert_id: str | None = None

    def doc(self) -> dict[str, Any]:
        return {
            "_id": self.alert_id
            or doc_id(self.symbol, self.ts.astimezone(UTC).isoformat(), self.kind),
            "symbol": self.symbol,
            "ts": self.ts,
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "value": self.value,
            "threshold": self.threshold,
            "rule": self.rule,
            "direction": self.direction,
        }


@dataclass
class IndexReport:
    """What one sync did; `failed` > 0 means some documents were rejected (see `errors`)."""

    dataset: str
    first_date: date
    last_date: date
    rows_read: int = 0
    indexed: int = 0
    deleted: int = 0
    failed: int = 0
    indices: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def add(self, other: IndexReport) -> None:
        self.rows_read += other.rows_read
        self.indexed += other.indexed
        self.deleted += other.deleted
        self.failed += other.failed
        self.indices |= other.indices
        self.errors.extend(other.errors[: MAX_ERRORS_KEPT - len(self.errors)])


def year_spans(first: date, last: date) -> Iterator[tuple[date, date]]:
    """[first, last] cut at year boundaries: each span lies in one yearly index."""
    start = first
    while start <= last:
        end = min(last, date(start.year, 12, 31))
        yield start, end
        start = end + timedelta(days=1)


def _existing(
    client: Elasticsearch, dataset: Dataset, prefix: str, first: date, last: date
) -> set[tuple[str, str]]:
    """(index, id) of the dataset's documents dated within [first, last] (one scan)."""
    from elasticsearch import helpers

    pattern = dataset.pattern(prefix)
    # a previous run's unrefreshed writes must be seen
    client.indices.refresh(index=pattern, allow_no_indices=True, ignore_unavailable=True)
    query = {"range": {dataset.date_field: {"gte": first.isoformat(), "lte": last.isoformat()}}}
    return {
        (hit["_index"], hit["_id"])
        for hit in helpers.scan(
            client,
            index=pattern,
            query={"query": query, "_source": False},
            allow_no_indices=True,
            ignore_unavailable=True,
        )
    }


def _index_action(index: str, doc: Mapping[str, Any], indexed_at: str) -> dict[str, Any]:
    source = {k: _clean(v) for k, v in doc.items() if k != "_id"}
    return {"_index": index, "_id": doc["_id"], "_source": {**source, "indexed_at": indexed_at}}


def _bulk(client: Elasticsearch, actions: Iterable[dict[str, Any]], report: IndexReport) -> None:
    from elasticsearch import helpers

    for ok, item in helpers.streaming_bulk(
        client,
        actions,
        chunk_size=BULK_CHUNK,
        raise_on_error=False,
        max_retries=3,  # per-document 429 rejections, with the helper's own backoff
        initial_backoff=1,
    ):
        op, result = next(iter(item.items()))
        if ok:
            if op == "delete":
                report.deleted += 1
            else:
                report.indexed += 1
        elif op == "delete" and result.get("status") == 404:
            report.deleted += 1  # already gone
        else:
            report.failed += 1
            if len(report.errors) < MAX_ERRORS_KEPT:
                report.errors.append(f"{op} {result.get('_id')}: {result.get('error')}")


def index_docs(
    client: Elasticsearch, dataset: Dataset, prefix: str, docs: Iterable[Mapping[str, Any]]
) -> IndexReport:
    """Index documents (each with `_id`) into their yearly indices; no deletions."""
    now = datetime.now(UTC).isoformat()
    docs = list(docs)
    dates = [_day(d[dataset.date_field]) for d in docs]
    report = IndexReport(dataset.name, min(dates, default=date.min), max(dates, default=date.min))
    actions = []
    for doc, day in zip(docs, dates, strict=True):
        index = dataset.index_for(prefix, day)
        report.indices.add(index)
        actions.append(_index_action(index, doc, now))
    report.rows_read = len(actions)
    _bulk(client, actions, report)
    for index in sorted(report.indices):
        client.indices.refresh(index=index)
    return report


def _day(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(value[:10])


def read_alert_docs(conn: psycopg.Connection, first: date, last: date) -> list[dict[str, Any]]:
    """analytics.alerts of [first, last] as Alert documents (id = the warehouse's alert_id)."""
    exchange = ZONE
    return [
        Alert(
            symbol=r["symbol"],
            ts=datetime.combine(r["session_date"], SESSION_CLOSE, exchange),
            kind=r["kind"],
            severity=ALERT_SEVERITY,
            message=r["message"],
            value=r["value"],
            threshold=r["threshold"],
            rule=r["rule"],
            direction=r["direction"],
            alert_id=r["alert_id"],
        ).doc()
        for r in _fetch(conn, ALERT_ROWS_SQL, {"first": first, "last": last})
    ]


def sync_window(
    client: Elasticsearch,
    conn: psycopg.Connection,
    dataset: Dataset,
    prefix: str,
    first: date,
    last: date,
    reader: DocReader,
) -> IndexReport:
    """Make the index hold exactly the warehouse rows of [first, last], a year (one index) at a
    time: one warehouse read, one scan of the existing documents, one bulk (which creates the
    index if missing) and one refresh per year."""
    total = IndexReport(dataset.name, first, last)
    now = datetime.now(UTC).isoformat()
    for start, end in year_spans(first, last):
        docs = reader(conn, start, end)
        report = IndexReport(dataset.name, start, end, rows_read=len(docs))
        index = dataset.index_for(prefix, start)  # the span lies in one year
        actions = [_index_action(index, doc, now) for doc in docs]
        kept = {(a["_index"], a["_id"]) for a in actions}
        stale = sorted(_existing(client, dataset, prefix, start, end) - kept)
        actions.extend({"_op_type": "delete", "_index": i, "_id": d} for i, d in stale)
        report.indices = {a["_index"] for a in actions}
        _bulk(client, actions, report)
        if report.indices:
            client.indices.refresh(index=",".join(sorted(report.indices)))
        total.add(report)
    return total


def sync_signals(
    client: Elasticsearch, conn: psycopg.Connection, prefix: str, first: date, last: date
) -> IndexReport:
    """Signals of [first - SIGNAL_REFRESH, last] (the refresh fills in forward returns)."""
    return sync_window(
        client, conn, SIGNALS, prefix, first - SIGNAL_REFRESH, last, read_signal_docs
    )


def sync_daily_bars(
    client: Elasticsearch, conn: psycopg.Connection, prefix: str, first: date, last: date
) -> IndexReport:
    """Daily aggregates of [first, last]."""
    return sync_window(client, conn, BARS_DAILY, prefix, first, last, read_bar_docs)


def sync_alerts(
    client: Elasticsearch, conn: psycopg.Connection, prefix: str, first: date, last: date
) -> IndexReport:
    """analytics.alerts of [first, last] (the same documents `index_alerts` would write)."""
    return sync_window(client, conn, ALERTS, prefix, first, last, read_alert_docs)


def index_alerts(client: Elasticsearch, prefix: str, alerts: Iterable[Alert]) -> IndexReport:
    """Index alerts (id = symbol, instant, kind: re-sending an alert overwrites it)."""
    return index_docs(client, ALERTS, prefix, (a.doc() for a in alerts))


def count(client: Elasticsearch, dataset: Dataset, prefix: str, first: date, last: date) -> int:
    """Documents of the dataset dated within [first, last]."""
    query = {"range": {dataset.date_field: {"gte": first.isoformat(), "lte": last.isoformat()}}}
    result = client.count(
        index=dataset.pattern(prefix),
        body={"query": query},
        allow_no_indices=True,
        ignore_unavailable=True,
    )
    return int(result["count"])
