"""After each raw_ticks load, recompute exactly the NY days it touched (one ranged run each).

Why a sensor and not declarative automation: raw_ticks is loaded by Kafka offset range, not by
day, so it is unpartitioned and Dagster cannot know which daily partitions a load affected. An
eager AutomationCondition would either see "every partition's parent changed" or, with
in_latest_time_window, only ever refresh today — a replay of 2000-2013 needs the old days. The
load records the days it touched (partition_spans metadata); this sensor reads
every new materialization (none skipped, cursor = event storage id), merges overlapping spans and
launches the partitioned job over each as ONE run (single-run backfill policy).
"""

from datetime import date, timedelta

import dagster as dg

from stock_assets.defs.ingest.assets import PARTITION_SPANS
from stock_assets.defs.market.assets import RAW_TICKS
from stock_assets.defs.market.jobs import sessions_job
from stock_assets.defs.market.partitions import START_DATE, session_partitions

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
MAX_EVENTS_PER_TICK = 200


def merge_spans(spans: list[tuple[date, date]]) -> list[tuple[date, date]]:
    """Union of inclusive date spans, adjacent days merged."""
    merged: list[tuple[date, date]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + timedelta(days=1):
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def partition_run_request(start: date, end: date, run_key: str) -> dg.RunRequest:
    if start == end:
        return dg.RunRequest(run_key=run_key, partition_key=start.isoformat())
    return dg.RunRequest(
        run_key=run_key,
        tags={RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()},
    )


@dg.sensor(
    job=sessions_job,
    minimum_interval_seconds=20,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches market_sessions for the NY days each raw_ticks load touched.",
)
def sessions_after_ingest(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    after = int(context.cursor) if context.cursor else None
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=RAW_TICKS, after_storage_id=after),
        limit=MAX_EVENTS_PER_TICK,
        ascending=True,
    ).records
    if not records:
        return dg.SkipReason("no new raw_ticks loads")
    first_partition = date.fromisoformat(START_DATE)
    # the newest partition that exists (end_offset=1: today in New York)
    last_partition = date.fromisoformat(session_partitions.get_last_partition_key() or START_DATE)
    spans = []
    for record in records:
        materialization = record.asset_materialization
        meta = materialization.metadata if materialization else {}
        if PARTITION_SPANS not in meta:
            continue  # nothing loaded (ranges already in the warehouse)
        for span in meta[PARTITION_SPANS].value:  # type: ignore[union-attr]
            first, last = (date.fromisoformat(d) for d in str(span).split(".."))
            start, end = max(first, first_partition), min(last, last_partition)
            if start <= end:
                spans.append((start, end))
    cursor = str(records[-1].storage_id)
    requests = [
        partition_run_request(start, end, f"sessions:{start}..{end}@{cursor}")
        for start, end in merge_spans(spans)
    ]
    return dg.SensorResult(run_requests=requests, cursor=cursor)
