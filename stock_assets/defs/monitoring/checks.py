"""Pipeline-wide checks: ledger gaps (blocking, on raw_ticks) and event-time freshness per stage.

They replace wall-clock FreshnessPolicies, which call a replayed 2000-era stream "9,757 days old"
and a cron deadline met by any run "fresh" however far the data trails the stream. Each check
measures the stage's newest event time against the producer's newest tick in Kafka (see
`lib/progress.py`); the measuring code is imported when a check runs, not at definition time.
"""

from datetime import date
from typing import Any

import dagster as dg

from stock_assets.defs.kernel import BARS_1M, BARS_DAILY, INDICATORS, RAW_TICKS, SIGNALS
from stock_assets.defs.resources import KafkaResource, WarehouseResource
from stock_assets.lib.topics import TICKS

LEDGER_HAS_NO_GAPS = "ledger_has_no_gaps"
EVENT_TIME_FRESHNESS = "event_time_freshness"
STAGE_ASSETS: dict[str, dg.AssetKey] = {
    "raw_ticks": RAW_TICKS,
    "bars_1m": BARS_1M,
    "bars_daily": BARS_DAILY,
    "indicators": INDICATORS,
    "signals": SIGNALS,
}
KAFKA_TIMEOUT_S = 5.0


def measure(
    instance: dg.DagsterInstance, warehouse: WarehouseResource, kafka: KafkaResource
) -> Any:
    """lib.progress.measure with the signals stage from Dagster's materialized partitions."""
    from confluent_kafka import Consumer

    from stock_assets.lib import progress

    # signals are sparse events: the newest materialized session, not the newest signal row,
    # is how far the stage has processed the stream
    keys = instance.get_materialized_partitions(SIGNALS)
    newest = max((date.fromisoformat(k[:10]) for k in keys), default=None)
    client = kafka.settings().client_id
    consumer = Consumer(
        kafka.consumer_config(f"{client}.progress", **{"enable.partition.eof": True})
    )
    try:
        with warehouse.connection() as conn:
            signals_at = None
            if newest is not None:
                signals_at = progress.stage_time(newest, "session", _tz())
            return progress.measure(
                conn,
                consumer,
                kafka.topic(TICKS),
                timeout_s=KAFKA_TIMEOUT_S,
                overrides={"signals": signals_at},
            )
    finally:
        consumer.close()


def _tz() -> str:
    from stock_assets.lib.calendar import TIMEZONE

    return TIMEZONE


@dg.asset_check(
    asset=RAW_TICKS,
    name=LEDGER_HAS_NO_GAPS,
    blocking=True,
    description="Every offset of the ticks topic below the last loaded one is loaded or "
    "dead-lettered (ledger ranges leave no gap); reports gap and tail per partition.",
)
def ledger_has_no_gaps(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, kafka: KafkaResource
) -> dg.AssetCheckResult:
    found = measure(context.instance, warehouse, kafka)
    if found.kafka_error:  # cannot measure: warn, do not block downstream on a broker outage
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"Kafka unreachable, gaps not measured: {found.kafka_error}",
        )
    per_partition = {
        str(p.partition): {
            "gap_offsets": p.gap_offsets,
            "gap_ranges": [f"{a}-{b}" for a, b in p.gaps[:20]],
            "tail_offsets": p.tail,
            "end_offset": p.high,
        }
        for p in found.partitions
    }
    gaps = found.gap_offsets
    return dg.AssetCheckResult(
        passed=gaps == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{gaps} offsets in ledger gaps (neither loaded nor dead-lettered)"
            if gaps
            else "no ledger gaps"
        ),
        metadata={
            "gap_offsets": gaps,
            "tail_offsets": sum(p.tail for p in found.partitions),
            "partitions": per_partition,
        },
    )


def _freshness_check(stage: str, key: dg.AssetKey) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=key,
        name=EVENT_TIME_FRESHNESS,
        description=f"{stage} keeps pace with the stream: its newest event time is within the "
        "lag budget of the producer's newest tick (event time for replay, never the wall clock).",
    )
    def check(
        context: dg.AssetCheckExecutionContext,
        warehouse: WarehouseResource,
        kafka: KafkaResource,
    ) -> dg.AssetCheckResult:
        from stock_assets.lib import progress

        found = measure(context.instance, warehouse, kafka)
        verdict = progress.freshness_verdict(found, stage)
        own = found.stage(stage)
        producer = found.stage(progress.PRODUCER).event_time
        return dg.AssetCheckResult(
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=verdict.description,
            metadata={
                "stream_kind": found.kind,
                "source": found.source or "",
                "stage_event_time": own.event_time.isoformat() if own.event_time else "",
                "producer_event_time": producer.isoformat() if producer else "",
                "behind_producer_s": verdict.behind_producer_s,
                "behind_upstream_s": own.behind_upstream_s,
                "budget_s": verdict.budget_s,
                "kafka_error": found.kafka_error or "",
            },
        )

    return check


monitoring_checks = [
    ledger_has_no_gaps,
    *(_freshness_check(stage, key) for stage, key in STAGE_ASSETS.items()),
]
