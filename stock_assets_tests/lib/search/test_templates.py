"""Index templates on the real engine: idempotent, versioned, yearly index retention, and the
migration of an older deployment's monthly indices."""

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
    assert index == f"{prefix}-signals-2004"
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
        (0, ["p-signals-2022", "p-signals-2023"]),
        (1, ["p-signals-2022", "p-signals-2023"]),  # December 2023 + 1 whole month: January
        (2, ["p-signals-2022"]),
        (13, ["p-signals-2022"]),
        (14, []),
    ],
)
def test_expired_indices_are_years_ended_before_the_retention(
    keep_months: int, expected: list[str]
) -> None:
    names = [f"p-signals-{y}" for y in (2022, 2023, 2024)]
    assert templates.expired_indices([*names, "p-signals-x"], keep_months, date(2024, 2, 9)) == (
        expected
    )


def test_drop_expired_deletes_old_years_only(client: Elasticsearch, prefix: str) -> None:
    alerts = templates.ALERTS
    templates.apply_template(client, alerts, prefix)
    for year in (2022, 2023, 2024):
        client.indices.create(index=alerts.index_for(prefix, date(year, 6, 1)))
    dropped = templates.drop_expired(client, alerts, prefix, keep_months=2, today=date(2024, 2, 9))
    assert dropped == [alerts.index_for(prefix, date(2022, 6, 1))]
    assert templates.yearly_indices(client, alerts, prefix) == [
        alerts.index_for(prefix, date(2023, 6, 1)),
        alerts.index_for(prefix, date(2024, 6, 1)),
    ]


def test_monthly_indices_of_an_older_deployment_move_into_their_year(
    client: Elasticsearch, prefix: str
) -> None:
    bars = templates.BARS_DAILY
    templates.apply_template(client, bars, prefix)
    docs = {  # as the monthly scheme wrote them: <prefix>-bars-daily-YYYY.MM
        "a": ("2004.01", "2004-01-05"),
        "b": ("2004.02", "2004-02-06"),
        "c": ("2005.03", "2005-03-07"),
    }
    for doc_id, (month, day) in docs.items():
        client.index(
            index=f"{prefix}-bars-daily-{month}",
            id=doc_id,
            document={"symbol": "AAPL", "session_date": day, "close": 1.0},
            refresh=True,
        )
    moved = templates.migrate_monthly_indices(client, bars, prefix)
    assert sorted(moved) == [f"{prefix}-bars-daily-{m}" for m in ("2004.01", "2004.02", "2005.03")]
    assert templates.yearly_indices(client, bars, prefix) == [
        f"{prefix}-bars-daily-2004",
        f"{prefix}-bars-daily-2005",
    ]
    assert not client.indices.exists(index=f"{prefix}-bars-daily-2004.01")
    for doc_id, (month, _) in docs.items():  # same ids, in the year's index, once
        assert client.exists(index=f"{prefix}-bars-daily-{month[:4]}", id=doc_id)
    assert client.count(index=bars.alias(prefix))["count"] == len(docs)
    assert templates.migrate_monthly_indices(client, bars, prefix) == []  # nothing left
