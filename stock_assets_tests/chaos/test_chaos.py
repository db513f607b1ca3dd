"""Each chaos scenario recovers unattended with nothing lost and nothing duplicated.

`make test` runs the scenarios that take seconds; `make chaos` runs them all (the Spark and the
3-broker ones carry the `chaos_slow` marker, which `make test` deselects) and writes
bench/results/chaos.json.
"""

from __future__ import annotations

import pytest
from confluent_kafka.admin import ConfigResource

from stock_assets.lib import kafka_admin
from stock_assets.lib.topics import TICKS, topic_name
from stock_assets_tests.chaos.scenarios import SCENARIOS, ScenarioResult
from stock_assets_tests.chaos.services import ChaosServices


def check(result: ScenarioResult) -> None:
    detail = f"{result.line()}\n" + "\n".join(result.notes)
    assert result.produced > 0, detail
    assert result.lost == 0, detail
    assert result.duplicated == 0, detail
    assert result.recovered, detail


def _params(profile: str) -> list[object]:
    return [
        pytest.param(name, marks=[pytest.mark.chaos_slow] if slow else [], id=name)
        for name, (p, _, slow) in SCENARIOS.items()
        if p == profile
    ]


@pytest.mark.parametrize("name", _params("single"))
def test_scenario(name: str, single_services: ChaosServices) -> None:
    check(SCENARIOS[name][1](single_services))


@pytest.mark.chaos_slow
@pytest.mark.parametrize("name", _params("replicated"))
def test_replicated_scenario(name: str, replicated_services: ChaosServices) -> None:
    check(SCENARIOS[name][1](replicated_services))


@pytest.mark.chaos_slow
def test_replicated_profile_replicates_every_topic(replicated_services: ChaosServices) -> None:
    settings = replicated_services.kafka_settings("chaos-rf.")
    kafka_admin.ensure_topics(settings)
    client = kafka_admin.admin(settings)
    topic = topic_name(TICKS, settings.topic_prefix)
    described = client.list_topics(topic, timeout=10).topics[topic]
    assert len(described.partitions) == TICKS.partitions
    assert all(len(p.replicas) == 3 for p in described.partitions.values())
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = client.describe_configs([resource])[resource].result(timeout=10)
    assert configs["min.insync.replicas"].value == "2"
