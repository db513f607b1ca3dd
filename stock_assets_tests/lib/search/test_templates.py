"""Index templates on the real engine: idempotent, versioned, and monthly index retention."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from elasticsearch import Elasticsearch

from stock_assets.lib.search import templates
from stock_assets.lib.search.templates import DATASETS, SIGNALS


def test_applying_twice_changes_nothing(client: Elasticsearch, prefix: str) -> None:
    first = templates.apply_templates(client, prefix)
    stored = client.indices.get_index_template(name=f"{prefix}-*")
    second = templates.apply_templates(client, prefix)
    assert {r.status for r in first} <= {"created", "unchanged"}
    assert [r.status for r in second] == ["unchanged"] * len(DATASETS)
    assert client.indices.get_index_template(name=f"{prefix}-*") == stored


def test_new_index_gets_template_mapping_and_alias(client: Elasticsearch, prefix: str) -> None:
    templates.apply_templates(client, prefix)
    index = SIGNALS.index_for(prefix, date(2004, 2, 17))
    assert index == f"{prefix}-signals-2004.02"
    client.indices.create(index=index)
    got = client.indices.get(index=index)[index]
    assert got["mappings"]["properties"]["forward_return"] == {"type": "double"}
    assert got["mappings"]["dynamic"] == "strict"
    assert SIGNALS.alias(prefix) in got["aliases"]


def test_version_bump_updates_template_and_existing_indices(
    client: Elasticsearch, prefix: str
) -> None:
    bars = templates.BARS_DAILY
    templates.apply_template(client, bars, prefix)
    index = bars.index_for(prefix, date(2004, 3, 1))
    client.indices.create(index=index)
    v2 = dataclasses.replace(
        bars, version=2, properties={**bars.properties, "sector": {"type": "keyword"}}
    )
    assert templates.apply_template(client, v2, prefix).status == "updated"
    assert templates.apply_template(client, v2, prefix).status == "unchanged"
    mapping = client.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert mapping["sector"] == {"type": "keyword"}
    # an older deployment never downgrades it
    assert templates.apply_template(client, bars, prefix).status == "newer-in-engine"
    stored = client.indices.get_index_template(name=bars.template_name(prefix))
    assert stored["index_templates"][0]["index_template"]["version"] == 2


@pytest.mark.parametrize(
    ("keep_months", "expected"),
    [
        (0, ["p-signals-2023.11", "p-signals-2023.12", "p-signals-2024.01"]),
        (1, ["p-signals-2023.11", "p-signals-2023.12"]),
        (2, ["p-signals-2023.11"]),
        (12, []),
    ],
)
def test_expired_indices_are_whole_months_before_the_retention(
    keep_months: int, expected: list[str]
) -> None:
    names = [f"p-signals-{m}" for m in ("2023.11", "2023.12", "2024.01", "2024.02")]
    assert templates.expired_indices([*names, "p-signals-x"], keep_months, date(2024, 2, 9)) == (
        expected
    )


def test_drop_expired_deletes_old_months_only(client: Elasticsearch, prefix: str) -> None:
    alerts = templates.ALERTS
    templates.apply_template(client, alerts, prefix)
    for month in (date(2023, 12, 1), date(2024, 1, 1), date(2024, 2, 1)):
        client.indices.create(index=alerts.index_for(prefix, month))
    dropped = templates.drop_expired(client, alerts, prefix, keep_months=1, today=date(2024, 2, 9))
    assert dropped == [alerts.index_for(prefix, date(2023, 12, 1))]
    assert templates.monthly_indices(client, alerts, prefix) == [
        alerts.index_for(prefix, date(2024, 1, 1)),
        alerts.index_for(prefix, date(2024, 2, 1)),
    ]
