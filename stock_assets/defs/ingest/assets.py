"""raw_ticks: exact Kafka offset ranges of the ticks topic → market.raw_ticks, exactly once.

Errors name their cause. An outage (broker or warehouse unreachable, a timeout) is transient:
the asset's RetryPolicy re-executes the step inside the same run after an exponential, jittered
backoff, so the run stays in flight and the Kafka sensor does not request the range again
meanwhile. Bad data or settings (a range overlapping a loaded one, a ConfigError) fail at once
with `dg.Failure(allow_retries=False)`: retrying cannot fix them.
"""

import dagster as dg
from confluent_kafka import Consumer, KafkaException, Producer

from stock_assets.defs.kernel import RAW_TICKS
from stock_assets.defs.resources import KafkaResource, WarehouseResource
from stock_assets.lib import kafka_admin, tick_loader
from stock_assets.lib.calendar import ZONE
from stock_assets.lib.errors import BrokerUnavailable, TransientError
from stock_assets.lib.settings import ConfigError
from stock_assets.lib.spans import date_spans
from stock_assets.lib.topics import DEAD_LETTER, TICKS

LEDGER_MATCHES_ROWS = "ledger_matches_rows"
PARTITION_SPANS = "partition_spans"

# Transient outages: re-executed in the same run after ~3, 9, 21, 45, 93 s (±3 s jitter); a run
# that still fails leaves its range uncovered in the ledger, and the sensor requests it again.
TRANSIENT_RETRY_POLICY = dg.RetryPolicy(
    max_retries=5, delay=3, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
# Not worth a retry: the input or the settings are wrong.
BAD_INPUT = (tick_loader.RangeConflict, ConfigError, ValueError)


def not_retried(exc: Exception) -> dg.Failure:
    """A failure the RetryPolicy skips: bad input or settings, which a retry cannot fix."""
    return dg.Failure(
        description=f"not retried, bad input or settings ({type(exc).__name__}): {exc}",
        allow_retries=False,
    )


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
    retry_policy=TRANSIENT_RETRY_POLICY,
    # freshness: event-time checks in defs/monitoring/checks.py (not a wall-clock policy)
)
def raw_ticks(
    context: dg.AssetExecutionContext,
    config: RawTicksConfig,
    warehouse: WarehouseResource,
    kafka: KafkaResource,
) -> dg.MaterializeResult:
    """Raw trade prints from the Kafka ticks topic, loaded by exact offset range."""
    try:
        topic = config.topic or kafka.topic(TICKS)
        ranges = [tick_loader.OffsetRange(r.partition, r.start, r.end) for r in config.ranges]
        settings = kafka.settings()
        dead_letter_topic = kafka.topic(DEAD_LETTER)
    except BAD_INPUT as exc:
        raise not_retried(exc) from exc
    consumer = Consumer(
        kafka.consumer_config(f"{settings.client_id}.raw_ticks", **tick_loader.CONSUMER_CONFIG)
    )
    producer = Producer(
        kafka_admin.client_config(
            settings, **{"acks": "all", "enable.idempotence": True, "linger.ms": 20}
        )
    )
    dead_letters = tick_loader.DeadLetters(producer, dead_letter_topic)
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
    except BAD_INPUT as exc:
        raise not_retried(exc) from exc
    except TransientError as exc:
        context.log.warning(f"transient, retried with backoff ({type(exc).__name__}): {exc}")
        raise
    except (TimeoutError, KafkaException) as exc:
        context.log.warning(f"transient, retried with backoff (BrokerUnavailable): {exc}")
        raise BrokerUnavailable(f"Kafka did not deliver {topic} {ranges}: {exc}") from exc
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
        spans = date_spans(result.touched_dates(ZONE), bridge_days=7)
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
