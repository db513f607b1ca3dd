"""Versioned index templates (the only place mappings live) and index naming with retention.

Every dataset is stored in yearly indices named `<prefix>-<dataset>-YYYY` after the year of the
document's own date (not the time it was indexed), all matched by one composable index template
that also puts them behind the alias `<prefix>-<dataset>`. The index a document lands in is
therefore a function of its natural key, as its id is: re-indexing a backfilled day overwrites
the same documents in the same index. Retention drops whole years (`drop_expired`). Yearly, not
monthly (ADR 0038): every dataset is daily, a year of the sampled universe a few thousand
documents, and creating an index is what a backfill's indexing cost: a cluster-state update per
index, 168 monthly indices per dataset for the 2000-2013 history (140 s of a 2-core machine).
`migrate_monthly_indices` moves the documents of an older deployment's monthly indices. Data streams
were not used: they are append-only (no overwrite by id) and route every write to the current
backing index, so a backfill of 2004 would land next to today's data and never age out.

A template carries `version` (bumped by hand when the mapping changes) and `_meta.sha256` of its
content. `apply_templates` PUTs a template only when the engine's copy differs, so a second
apply reports "unchanged"; on an update it also pushes the mapping to the existing indices
(additive changes apply there; others need a reindex and fail loudly).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


TemplateStatus = Literal["created", "updated", "unchanged", "newer-in-engine"]

_KEYWORD = {"type": "keyword"}
_DOUBLE = {"type": "double"}
_DATE = {"type": "date", "format": "strict_date"}
_INSTANT = {"type": "date", "format": "strict_date_optional_time"}
_YEAR_SUFFIX = re.compile(r"-(\d{4})$")
_LEGACY_MONTH_SUFFIX = re.compile(r"-(\d{4})\.\d{2}$")  # before ADR 0038


@dataclass(frozen=True)
class Dataset:
    """One kind of document: its template version, mapping and the date that picks its index."""

    name: str
    version: int
    date_field: str
    properties: dict[str, Any]
    description: str

    def alias(self, prefix: str) -> str:
        return f"{prefix}-{self.name}"

    def template_name(self, prefix: str) -> str:
        return f"{prefix}-{self.name}"

    def pattern(self, prefix: str) -> str:
        return f"{prefix}-{self.name}-*"

    def index_for(self, prefix: str, day: date) -> str:
        return f"{prefix}-{self.name}-{day:%Y}"

    def template_body(self, prefix: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "index_patterns": [self.pattern(prefix)],
            "priority": 100,
            "version": self.version,
            "template": {
                # one shard per year: exact terms counts, and a year is small
                "settings": {"number_of_shards": 1, "number_of_replicas": 0},
                "mappings": self.mappings(),
                "aliases": {self.alias(prefix): {}},
            },
        }
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        body["_meta"] = {"managed_by": "stock_assets", "dataset": self.name, "sha256": digest}
        return body

    def mappings(self) -> dict[str, Any]:
        # strict: a field the code forgot to map fails the bulk item instead of guessing a type
        return {"dynamic": "strict", "properties": self.properties}


SIGNALS = Dataset(
    name="signals",
    version=2,  # v2: params (canonical JSON of the strategy's parameters, part of the id)
    date_field="session_date",
    description="analytics.signals with the forward return from market.bars_daily",
    properties={
        "symbol": _KEYWORD,
        "session_date": _DATE,
        "strategy": _KEYWORD,
        "params": _KEYWORD,
        "side": _KEYWORD,
        "strength": _DOUBLE,
        "price": _DOUBLE,
        "reason": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
        "close": _DOUBLE,
        "forward_sessions": {"type": "integer"},
        "forward_date": _DATE,
        "forward_close": _DOUBLE,
        "forward_return": _DOUBLE,
        "signal_return": _DOUBLE,
        "indexed_at": _INSTANT,
    },
)

BARS_DAILY = Dataset(
    name="bars-daily",
    version=1,
    date_field="session_date",
    description="market.bars_daily: one document per symbol and session",
    properties={
        "symbol": _KEYWORD,
        "session_date": _DATE,
        "open": _DOUBLE,
        "high": _DOUBLE,
        "low": _DOUBLE,
        "close": _DOUBLE,
        "volume": _DOUBLE,
        "vwap": _DOUBLE,
        "return_1d": _DOUBLE,
        "realized_vol": _DOUBLE,
        "trade_count": {"type": "integer"},
        "indexed_at": _INSTANT,
    },
)

ALERTS = Dataset(
    name="alerts",
    version=2,  # v2: rule, direction (analytics.alerts)
    date_field="ts",
    description="price/volume/signal alerts raised for a symbol",
    properties={
        "symbol": _KEYWORD,
        "ts": _INSTANT,
        "kind": _KEYWORD,
        "severity": _KEYWORD,
        "rule": _KEYWORD,
        "direction": _KEYWORD,
        "message": {"type": "text"},
        "value": _DOUBLE,
        "threshold": _DOUBLE,
        "indexed_at": _INSTANT,
    },
)

DATASETS: tuple[Dataset, ...] = (SIGNALS, BARS_DAILY, ALERTS)


@dataclass(frozen=True)
class TemplateResult:
    name: str
    version: int
    status: TemplateStatus


def _stored_template(client: Elasticsearch, name: str) -> dict[str, Any] | None:
    found = client.indices.get_index_template(name=name, ignore=404)
    for item in found.get("index_templates", []):
        if item.get("name") == name:
            return dict(item["index_template"])
    return None


def apply_template(client: Elasticsearch, dataset: Dataset, prefix: str) -> TemplateResult:
    """PUT the dataset's template unless the engine already holds this exact one (or newer)."""
    name = dataset.template_name(prefix)
    body = dataset.template_body(prefix)
    stored = _stored_template(client, name)
    if stored is not None:
        stored_version = int(stored.get("version") or 0)
        if stored.get("_meta", {}).get("sha256") == body["_meta"]["sha256"]:
            return TemplateResult(name, dataset.version, "unchanged")
        if stored_version > dataset.version:
            # never downgrade a template a newer deployment installed
            return TemplateResult(name, stored_version, "newer-in-engine")
    client.indices.put_index_template(name=name, body=body)
    if stored is None:
        return TemplateResult(name, dataset.version, "created")
    client.indices.put_mapping(
        index=dataset.pattern(prefix),
        body=dataset.mappings(),
        allow_no_indices=True,
        ignore_unavailable=True,
    )
    return TemplateResult(name, dataset.version, "updated")


def apply_templates(
    client: Elasticsearch, prefix: str, datasets: tuple[Dataset, ...] = DATASETS
) -> list[TemplateResult]:
    """Apply every dataset's template; idempotent."""
    return [apply_template(client, d, prefix) for d in datasets]


def index_year(name: str) -> int | None:
    """The year an index `<prefix>-<dataset>-YYYY` holds (None if not one)."""
    match = _YEAR_SUFFIX.search(name)
    return int(match.group(1)) if match else None


def _indices(client: Elasticsearch, dataset: Dataset, prefix: str) -> list[str]:
    found = client.indices.get(
        index=dataset.pattern(prefix),
        allow_no_indices=True,
        ignore_unavailable=True,
        expand_wildcards="open",
    )
    return sorted(found)


def yearly_indices(client: Elasticsearch, dataset: Dataset, prefix: str) -> list[str]:
    """The dataset's existing yearly indices, oldest first."""
    return [n for n in _indices(client, dataset, prefix) if index_year(n) is not None]


def migrate_monthly_indices(client: Elasticsearch, dataset: Dataset, prefix: str) -> list[str]:
    """Move the documents of monthly indices (`<prefix>-<dataset>-YYYY.MM`, written before ADR
    0038) into their yearly index, server-side, then delete them (ids are kept: no duplicates).
    Returns the monthly indices moved; none after the first call."""
    by_year: dict[str, list[str]] = {}
    for name in _indices(client, dataset, prefix):
        if match := _LEGACY_MONTH_SUFFIX.search(name):
            by_year.setdefault(match.group(1), []).append(name)
    for year, names in sorted(by_year.items()):
        client.reindex(
            body={
                "source": {"index": ",".join(names)},
                "dest": {"index": dataset.index_for(prefix, date(int(year), 1, 1))},
            },
            params={"refresh": "true", "wait_for_completion": "true"},
        )
        client.indices.delete(index=",".join(names))
    return [name for names in by_year.values() for name in names]


def expired_indices(indices: list[str], keep_months: int, today: date) -> list[str]:
    """Indices whose year ended more than `keep_months` whole months before today's month."""
    cutoff_index = today.year * 12 + today.month - 1 - keep_months
    return [
        name
        for name in indices
        if (year := index_year(name)) is not None and year * 12 + 11 < cutoff_index
    ]


def drop_expired(
    client: Elasticsearch, dataset: Dataset, prefix: str, keep_months: int, today: date
) -> list[str]:
    """Delete the dataset's yearly indices older than the retention; returns their names."""
    expired = expired_indices(yearly_indices(client, dataset, prefix), keep_months, today)
    for name in expired:
        client.indices.delete(index=name)
    return expired
