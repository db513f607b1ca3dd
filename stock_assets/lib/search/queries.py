"""What the dashboard asks the search engine about signals, as typed results.

All functions take a `SignalFilter` (free text over the reason, symbols, strategies, side, date
range) and read the dataset's index pattern, so an engine without any signal index yet answers
with empty results instead of index_not_found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

from stock_assets.lib.search.templates import SIGNALS

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

Interval = Literal["day", "week", "month", "quarter", "year"]
TermField = Literal["strategy", "symbol", "side"]
TERMS_SIZE = 500  # above the distinct strategies/symbols, so one-shard-per-index counts are exact


@dataclass(frozen=True)
class SignalFilter:
    """Filters shared by search and aggregations; empty means "everything"."""

    text: str | None = None  # over the reason: words, "quoted phrases", -excluded
    symbols: tuple[str, ...] = ()
    strategies: tuple[str, ...] = ()
    side: Literal["buy", "sell"] | None = None
    date_from: date | None = None
    date_to: date | None = None

    def query(self) -> dict[str, Any]:
        filters: list[dict[str, Any]] = []
        if self.symbols:
            filters.append({"terms": {"symbol": list(self.symbols)}})
        if self.strategies:
            filters.append({"terms": {"strategy": list(self.strategies)}})
        if self.side:
            filters.append({"term": {"side": self.side}})
        if self.date_from or self.date_to:
            span = {}
            if self.date_from:
                span["gte"] = self.date_from.isoformat()
            if self.date_to:
                span["lte"] = self.date_to.isoformat()
            filters.append({"range": {"session_date": span}})
        must: list[dict[str, Any]] = []
        if self.text and self.text.strip():
            must.append(
                {
                    "simple_query_string": {
                        "query": self.text,
                        "fields": ["reason"],
                        "default_operator": "and",
                    }
                }
            )
        return {"bool": {"must": must or [{"match_all": {}}], "filter": filters}}


@dataclass(frozen=True)
class SignalHit:
    id: str
    score: float | None
    symbol: str
    session_date: date
    strategy: str
    side: str
    strength: float
    price: float
    reason: str
    forward_return: float | None
    signal_return: float | None
    highlight: str | None  # the reason with matches wrapped in <em>…</em>


@dataclass(frozen=True)
class SignalPage:
    total: int
    hits: tuple[SignalHit, ...]


@dataclass(frozen=True)
class DateBucket:
    start: date
    count: int


@dataclass(frozen=True)
class TermBucket:
    key: str
    count: int


@dataclass(frozen=True)
class StrategyReturn:
    """Average forward return of a strategy's signals (those whose forward close is known)."""

    strategy: str
    signals: int
    with_forward_return: int
    avg_forward_return: float | None  # raw close-to-close move FORWARD_SESSIONS sessions later
    avg_signal_return: float | None  # the same move in the signal's direction


@dataclass(frozen=True)
class SignalAnalytics:
    total: int
    over_time: tuple[DateBucket, ...]
    by_strategy: tuple[TermBucket, ...]
    by_symbol: tuple[TermBucket, ...]
    returns: tuple[StrategyReturn, ...]


def _pattern_kwargs(prefix: str) -> dict[str, Any]:
    return {
        "index": SIGNALS.pattern(prefix),
        "allow_no_indices": True,
        "ignore_unavailable": True,
    }


def _total(response: dict[str, Any]) -> int:
    total = response["hits"]["total"]
    return int(total["value"] if isinstance(total, dict) else total)


def search_signals(
    client: Elasticsearch,
    prefix: str,
    flt: SignalFilter,
    *,
    size: int = 50,
    offset: int = 0,
) -> SignalPage:
    """Matching signals: best text match first when searching text, else newest first."""
    sort: list[Any] = [{"session_date": "desc"}, {"symbol": "asc"}, {"strategy": "asc"}]
    if flt.text:
        sort = ["_score", *sort]
    response = client.search(
        **_pattern_kwargs(prefix),
        query=flt.query(),
        sort=sort,
        size=size,
        from_=offset,
        track_total_hits=True,
        highlight={"fields": {"reason": {"number_of_fragments": 0}}},
    )
    hits = []
    for hit in response["hits"]["hits"]:
        src = hit["_source"]
        hits.append(
            SignalHit(
                id=hit["_id"],
                score=hit.get("_score"),
                symbol=src["symbol"],
                session_date=date.fromisoformat(src["session_date"]),
                strategy=src["strategy"],
                side=src["side"],
                strength=float(src["strength"]),
                price=float(src["price"]),
                reason=src["reason"],
                forward_return=src.get("forward_return"),
                signal_return=src.get("signal_return"),
                highlight=(hit.get("highlight", {}).get("reason") or [None])[0],
            )
        )
    return SignalPage(total=_total(response), hits=tuple(hits))


def _bucket_date(key_ms: int) -> date:
    return datetime.fromtimestamp(key_ms / 1000, tz=UTC).date()


def signal_analytics(
    client: Elasticsearch, prefix: str, flt: SignalFilter, *, interval: Interval = "month"
) -> SignalAnalytics:
    """Counts over time, by strategy and symbol, and forward returns per strategy, in one query."""
    response = client.search(
        **_pattern_kwargs(prefix),
        query=flt.query(),
        size=0,
        track_total_hits=True,
        aggs={
            "over_time": {
                "date_histogram": {
                    "field": "session_date",
                    "calendar_interval": interval,
                    "min_doc_count": 1,
                }
            },
            "by_strategy": {"terms": {"field": "strategy", "size": TERMS_SIZE}},
            "by_symbol": {"terms": {"field": "symbol", "size": TERMS_SIZE}},
            "returns": {
                "terms": {"field": "strategy", "size": TERMS_SIZE, "order": {"_key": "asc"}},
                "aggs": {
                    "with_return": {"value_count": {"field": "forward_return"}},
                    "avg_forward_return": {"avg": {"field": "forward_return"}},
                    "avg_signal_return": {"avg": {"field": "signal_return"}},
                },
            },
        },
    )
    aggs = response.get("aggregations", {})

    def terms(name: str) -> tuple[TermBucket, ...]:
        return tuple(
            TermBucket(str(b["key"]), int(b["doc_count"]))
            for b in aggs.get(name, {}).get("buckets", [])
        )

    return SignalAnalytics(
        total=_total(response),
        over_time=tuple(
            DateBucket(_bucket_date(b["key"]), int(b["doc_count"]))
            for b in aggs.get("over_time", {}).get("buckets", [])
        ),
        by_strategy=terms("by_strategy"),
        by_symbol=terms("by_symbol"),
        returns=tuple(
            StrategyReturn(
                strategy=str(b["key"]),
                signals=int(b["doc_count"]),
                with_forward_return=int(b["with_return"]["value"]),
                avg_forward_return=b["avg_forward_return"]["value"],
                avg_signal_return=b["avg_signal_return"]["value"],
            )
            for b in aggs.get("returns", {}).get("buckets", [])
        ),
    )
