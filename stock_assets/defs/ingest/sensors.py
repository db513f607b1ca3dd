"""The Kafka sensor: end offsets of the ticks topic → runs of raw_ticks with explicit ranges.

Every broker call is bounded by a timeout (a blocking call would stall the sensor daemon). The
cursor is the JSON map partition → next offset to request; a new cursor starts where the
warehouse ledger ends (or at the low watermark), so a fresh Dagster instance does not re-request
loaded ranges.
"""

import json

import dagster as dg
from confluent_kafka import Consumer, KafkaException, TopicPartition

from stock_assets.defs.ingest.assets import OffsetRangeConfig, RawTicksConfig
from stock_assets.defs.resources import KafkaResource, WarehouseResource
from stock_assets.lib import tick_loader
from stock_assets.lib.topics import TICKS

MAX_MESSAGES_PER_RUN = 200_000
MAX_RUNS_PER_TICK = 10
BROKER_TIMEOUT_S = 5.0

ingest_ticks_job = dg.define_asset_job(
    "ingest_raw_ticks",
    selection=dg.AssetSelection.assets(["market", "raw_ticks"]),
    description="Load one explicit offset range of the ticks topic into market.raw_ticks.",
    tags={"domain": "ingest"},
)


def end_offsets(consumer: Consumer, topic: str, timeout_s: float) -> dict[int, tuple[int, int]]:
    """partition -> (low, high) watermarks; {} if the topic does not exist."""
    metadata = consumer.list_topics(topic, timeout=timeout_s)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None or not described.partitions:
        return {}
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s, cached=False)
        for p in sorted(described.partitions)
    }


def ledger_ends(warehouse: WarehouseResource, topic: str) -> dict[int, int]:
    with warehouse.connection() as conn:
        rows = conn.execute(
            "SELECT partition, max(end_offset) FROM ingest.kafka_offsets"
            " WHERE topic = %s GROUP BY partition",
            (topic,),
        ).fetchall()
    return {int(p): int(end) for p, end in rows}


def run_key(topic: str, batch: list[tick_loader.OffsetRange]) -> str:
    return topic + ":" + ",".join(f"{r.partition}:{r.start}-{r.end}" for r in batch)


@dg.sensor(
    job=ingest_ticks_job,
    minimum_interval_seconds=20,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests raw_ticks runs for new offsets of the ticks topic (explicit ranges).",
)
def kafka_ticks_sensor(
    context: dg.SensorEvaluationContext, kafka: KafkaResource, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    topic = kafka.topic(TICKS)
    consumer = Consumer(kafka.consumer_config(f"{kafka.settings().client_id}.sensor"))
    try:
        watermarks = end_offsets(consumer, topic, BROKER_TIMEOUT_S)
    except KafkaException as exc:
        return dg.SkipReason(f"Kafka did not answer within {BROKER_TIMEOUT_S}s: {exc}")
    finally:
        consumer.close()
    if not watermarks:
        return dg.SkipReason(f"topic {topic} not found")

    cursor = {int(p): int(o) for p, o in json.loads(context.cursor or "{}").items()}
    if not cursor:
        cursor = ledger_ends(warehouse, topic)
    next_offsets = {}
    for p, (low, _high) in watermarks.items():
        if cursor.get(p, low) < low:
            context.log.warning(f"{topic}[{p}]: offsets {cursor[p]}..{low} expired unloaded")
        next_offsets[p] = max(cursor.get(p, low), low)
    ends = {p: high for p, (_low, high) in watermarks.items()}
    batches = tick_loader.plan_batches(next_offsets, ends, MAX_MESSAGES_PER_RUN, MAX_RUNS_PER_TICK)
    if not batches:
        return dg.SkipReason(f"no new offsets on {topic}")
    for batch in batches:
        for r in batch:
            next_offsets[r.partition] = r.end
    requests = [
        dg.RunRequest(
            run_key=run_key(topic, batch),
            run_config=dg.RunConfig(
                ops={
                    "market__raw_ticks": RawTicksConfig(
                        topic=topic,
                        ranges=[
                            OffsetRangeConfig(partition=r.partition, start=r.start, end=r.end)
                            for r in batch
                        ],
                    )
                }
            ),
            tags={"kafka/topic": topic, "kafka/messages": str(sum(r.size for r in batch))},
        )
        for batch in batches
    ]
    return dg.SensorResult(
        run_requests=requests, cursor=json.dumps({str(p): o for p, o in next_offsets.items()})
    )
