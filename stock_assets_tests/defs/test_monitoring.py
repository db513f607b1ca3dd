"""defs/monitoring checks against the real broker and warehouse: ledger gaps block, and
freshness is measured in event time (a replayed 2004 stream that is current passes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from stock_assets.defs.monitoring.checks import (
    STAGE_ASSETS,
    _freshness_check,
    ledger_has_no_gaps,
)
from stock_assets.lib import db, marketdata
from stock_assets.lib.settings import DbSettings, KafkaSettings
from stock_assets.lib.topics import TICKS, topic_name
from stock_assets_tests.defs.conftest import produce

START = datetime(2004, 3, 9, 14, 30, tzinfo=UTC)
N = 40


@pytest.fixture(scope="module")
def replayed(module_kafka: KafkaSettings, module_db: DbSettings) -> datetime:
    """40 replayed 2004 ticks of one symbol in Kafka; the ledger leaves offsets 10-20 uncovered."""
    ticks = [
        marketdata.Tick(
            symbol="IBM", ts_us=marketdata.ts_us(START + timedelta(minutes=i)), price=90.0 + i,
            size=100.0, source="replay", seq=i,
        )
        for i in range(N)
    ]  # fmt: skip
    assert produce(module_kafka, ticks) == N
    newest = START + timedelta(minutes=N - 1)
    topic = topic_name(TICKS, module_kafka.topic_prefix)
    with db.connect(module_db) as conn, conn.transaction():
        partition = marketdata_partition(module_kafka, topic)
        conn.cursor().executemany(
            "INSERT INTO ingest.kafka_offsets (topic, partition, start_offset, end_offset,"
            " row_count, run_id) VALUES (%s, %s, %s, %s, %s, 'test')",
            [(topic, partition, 0, 10, 10), (topic, partition, 20, N, N - 20)],
        )
        conn.execute(
            "INSERT INTO market.raw_ticks (ts, symbol, price, size, source, seq, kafka_partition,"
            " kafka_offset) VALUES (%s, 'IBM', 129.0, 100, 'replay', %s, %s, %s)",
            (newest, N - 1, partition, N - 1),
        )
    return newest


def marketdata_partition(settings: KafkaSettings, topic: str) -> int:
    """The one partition holding the module's ticks (all keyed by one symbol)."""
    from confluent_kafka import Consumer

    from stock_assets.lib import kafka_admin, progress

    consumer = Consumer(kafka_admin.client_config(settings, **{"group.id": "probe"}))
    try:
        marks = progress.read_watermarks(consumer, topic, 10)
    finally:
        consumer.close()
    (partition,) = [p for p, (low, high) in marks.items() if high > low]
    return partition


def run_check(check: dg.AssetChecksDefinition, resources: dict[str, object]) -> dg.AssetCheckResult:
    context = dg.build_asset_check_context(instance=dg.DagsterInstance.ephemeral())
    result = check(context, **resources)
    assert isinstance(result, dg.AssetCheckResult)
    return result


def test_ledger_gap_fails_the_blocking_check_until_it_is_loaded(
    replayed: datetime, resources: dict[str, object], module_db: DbSettings
) -> None:
    (spec,) = ledger_has_no_gaps.check_specs
    assert spec.blocking
    result = run_check(ledger_has_no_gaps, resources)
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["gap_offsets"].value == 10
    assert result.description and "10 offsets in ledger gaps" in result.description
    partitions = result.metadata["partitions"].value
    assert any(p["gap_ranges"] == ["10-20"] for p in partitions.values())

    with db.connect(module_db) as conn, conn.transaction():
        topic, partition = conn.execute(
            "SELECT topic, partition FROM ingest.kafka_offsets LIMIT 1"
        ).fetchone()  # type: ignore[misc]
        conn.execute(
            "INSERT INTO ingest.kafka_offsets (topic, partition, start_offset, end_offset,"
            " row_count, run_id) VALUES (%s, %s, 10, 20, 8, 'retry')",  # 2 dead-lettered
            (topic, partition),
        )
    healed = run_check(ledger_has_no_gaps, resources)
    assert healed.passed, healed.description
    assert healed.metadata["gap_offsets"].value == 0


def test_event_time_freshness_passes_for_a_current_2004_stream(
    replayed: datetime, resources: dict[str, object]
) -> None:
    raw = run_check(_freshness_check("raw_ticks", STAGE_ASSETS["raw_ticks"]), resources)
    assert raw.passed, raw.description  # 22 years of wall clock, 0 s of event time
    assert raw.metadata["stream_kind"].text == "replay"
    assert raw.metadata["behind_producer_s"].value == 0
    assert raw.metadata["producer_event_time"].text == replayed.isoformat()
    # bars_1m holds nothing while the stream is at 2004-03-09: that stage fails, named
    bars = run_check(_freshness_check("bars_1m", STAGE_ASSETS["bars_1m"]), resources)
    assert not bars.passed
    assert bars.description and "bars_1m holds no data" in bars.description


def test_the_code_location_registers_the_checks_and_no_wall_clock_freshness_policy() -> None:
    from stock_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert ("market/raw_ticks", "ledger_has_no_gaps") in checks
    for key in STAGE_ASSETS.values():
        assert (key.to_user_string(), "event_time_freshness") in checks
        assert graph.get(key).freshness_policy is None
