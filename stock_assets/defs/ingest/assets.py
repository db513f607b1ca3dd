"""raw_ticks: exact Kafka offset ranges of the ticks topic → market.raw_ticks, exactly once."""

from zoneinfo import ZoneInfo

import dagster as dg
from confluent_kafka import Consumer, Producer

from stock_assets.defs.resources import KafkaResource, WarehouseResource
from stock_assets.lib import kafka_admin, tick_loader
from stock_assets.lib.calendar import TIMEZONE
from stock_assets.lib.topics import DEAD_LETTER, TICKS

RAW_TICKS = dg.AssetKey(["market", "raw_ticks"])
LEDGER_MATCHES_ROWS = "ledger_matches_rows"
PARTITION_SPANS = "partition_spans"


class OffsetRangeConfig(dg.Config):
    partition: int
    start: int  # first offset, inclusive
    end: int  # last offset + 1


class RawTicksConfig(dg.Config):
    """The exact ranges to load; the Kafka sensor fills this in for every run it requests."""

    topic: str = ""  # default: the ticks topic of the kafka resource
    ranges: list[OffsetRangeConfig]
    timeout_s: float = 60.0


@dg.asset(
    key=RAW_TICKS,
    group_name="ingest",
    kinds={"kafka", "timescaledb"},
    check_specs=[dg.AssetCheckSpec(LEDGER_MATCHES_ROWS, asset=RAW_TICKS, blocking=True)],
    pool="raw_ticks",
    # freshness: event-time checks in defs/monitoring/checks.py (not a wall-clock policy)
)
def raw_ticks(
    context: dg.AssetExecutionContext,
    config: RawTicksConfig,
    warehouse: WarehouseResource,
    kafka: KafkaResource,
) -> dg.MaterializeResult:
    """Raw trade prints from the Kafka ticks topic, loaded by exact offset range."""
    topic = config.topic or kafka.topic(TICKS)
    ranges = [tick_loader.OffsetRange(r.partition, r.start, r.end) for r in config.ranges]
    settings = kafka.settings()
    consumer = Consumer(
        kafka.consumer_config(f"{settings.client_id}.raw_ticks", **{"enable.partition.eof": False})
    )
    producer = Producer(
        kafka_admin.client_config(
            settings, **{"acks": "all", "enable.idempotence": True, "linger.ms": 20}
        )
    )
    dead_letters = tick_loader.DeadLetters(producer, kafka.topic(DEAD_LETTER))
    try:
        with warehouse.connection() as conn:
            result = tick_loader.load_ranges(
                conn,
                consumer,
                topic,
                ranges,
                dead_letters,
                run_id=context.run.run_id,
                timeout_s=config.timeout_s,
            )
            mismatched = tick_loader.ledger_mismatches(conn, topic, ranges)
    finally:
        consumer.close()
    context.log.info(
        f"{topic}: {result.rows} ticks loaded, {result.dead_lettered} dead-lettered, "
        f"{len(result.skipped)} ranges already loaded"
    )
    metadata: dict[str, dg.RawMetadataValue] = {
        "dagster/row_count": result.rows,
        "topic": topic,
        "ranges": [f"{r.partition}:{r.start}-{r.end}" for r in ranges],
        "already_loaded_ranges": len(result.skipped),
        "dead_lettered": result.dead_lettered,
        "dead_letter_reasons": dict(result.dead_letter_reasons),
        "symbols": sorted(result.symbols),
    }
    span = result.time_range()
    if span is not None:
        spans = tick_loader.date_spans(result.touched_dates(ZoneInfo(TIMEZONE)))
        metadata |= {
            "first_ts": span[0].isoformat(),
            "last_ts": span[1].isoformat(),
            # the NY days this load touched: the downstream sensor recomputes exactly these
            PARTITION_SPANS: [f"{a}..{b}" for a, b in spans],
        }
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=LEDGER_MATCHES_ROWS,
                passed=not mismatched,
                metadata={"ranges_checked": len(ranges), "mismatched": mismatched},
            )
        ],
    )
