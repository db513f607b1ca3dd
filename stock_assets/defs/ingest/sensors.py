"""The Kafka sensor: ticks topic watermarks vs the ingest ledger → ONE raw_ticks run.

The ledger (ingest.kafka_offsets) is the source of truth: pending work is every offset of a
partition's retained log [low, high) that no ledger range covers (stock_assets.lib.ledger) —
new offsets past the last load AND gaps left by a run that failed. While an ingest run is queued
or in flight the sensor requests nothing; otherwise it requests one run taking, per partition,
the first pending span (normally the whole tail up to the end offsets at this tick). Every broker
call is bounded by a timeout (a blocking call would stall the sensor daemon). The cursor only
records the last request, for the UI; it decides nothing.
"""

import json
import time

import dagster as dg
from confluent_kafka import Consumer, KafkaException, TopicPartition

from stock_assets.defs.ingest.assets import OffsetRangeConfig, RawTicksConfig
from stock_assets.defs.resources import KafkaResource, WarehouseResource
from stock_assets.defs.runs import SENSOR_INTERVAL_S, serial_job_tags, skip_while_in_flight
from stock_assets.lib import ledger
from stock_assets.lib.errors import TransientError
from stock_assets.lib.topics import TICKS

INGEST_JOB = "ingest_raw_ticks"
# bounds one load's transaction (~10 s of COPY at ~100k rows/s); more waits for the next run
MAX_MESSAGES_PER_RUN = 1_000_000
BROKER_TIMEOUT_S = 5.0

ingest_ticks_job = dg.define_asset_job(
    INGEST_JOB,
    selection=dg.AssetSelection.assets(["market", "raw_ticks"]),
    description="Load explicit offset ranges of the ticks topic into market.raw_ticks.",
    tags={"domain": "ingest", **serial_job_tags(INGEST_JOB, max_runtime_s=1800, lane="ingest")},
    executor_def=dg.in_process_executor,
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


def describe(ranges: dict[int, ledger.Span]) -> str:
    return ",".join(f"{p}:{start}-{end}" for p, (start, end) in ranges.items())


@dg.sensor(
    job=ingest_ticks_job,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="One raw_ticks run for the ticks offsets the ledger does not cover (gaps first).",
)
def kafka_ticks_sensor(
    context: dg.SensorEvaluationContext, kafka: KafkaResource, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    if skip := skip_while_in_flight(context.instance, INGEST_JOB):
        return skip
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
    try:
        with warehouse.connection() as conn:
            covered = ledger.coverage(conn, topic)
    except TransientError as exc:
        return dg.SkipReason(f"retrying next tick: {exc}")

    pending = ledger.pending(covered, watermarks)
    for p, (low, _high) in watermarks.items():
        spans = covered.get(p, [])
        if spans and ledger.uncovered(spans, spans[0][0], low):
            context.log.warning(f"{topic}[{p}]: offsets below {low} expired before being loaded")
    ranges = ledger.next_ranges(pending, MAX_MESSAGES_PER_RUN)
    if not ranges:
        return dg.SkipReason(f"nothing pending on {topic}: the ledger covers every offset")
    gaps = {p: len(spans) - 1 for p, spans in pending.items() if len(spans) > 1}
    total = sum(end - start for start, end in ranges.values())
    request = dg.RunRequest(
        # unique per request: a failed range requested again must not be deduplicated by key
        run_key=f"{topic}:{describe(ranges)}@{time.time_ns()}",
        run_config=dg.RunConfig(
            ops={
                "market__raw_ticks": RawTicksConfig(
                    topic=topic,
                    ranges=[
                        OffsetRangeConfig(partition=p, start=start, end=end)
                        for p, (start, end) in ranges.items()
                    ],
                )
            }
        ),
        tags={"kafka/topic": topic, "kafka/messages": str(total), "kafka/ranges": describe(ranges)},
    )
    if gaps:
        context.log.info(f"{topic}: re-requesting gaps first (partition -> further gaps) {gaps}")
    return dg.SensorResult(
        run_requests=[request],
        cursor=json.dumps({str(p): end for p, (_start, end) in ranges.items()}),
    )
