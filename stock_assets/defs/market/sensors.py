"""After raw_ticks loads, recompute the NY days they touched: ONE ranged run at a time.

Why a sensor and not declarative automation: raw_ticks is loaded by Kafka offset range, not by
day, so it is unpartitioned and Dagster cannot know which daily partitions a load affected. An
eager AutomationCondition would either see "every partition's parent changed" or, with
in_latest_time_window, only ever refresh today — a replay of 2000-2013 needs the old days. The
load records the days it touched (partition_spans metadata).

This sensor requests nothing while a market_sessions run is queued or in flight; its cursor does
not move then, so the loads after it are read on a later tick. Otherwise it reads every raw_ticks
materialization after the cursor (event storage id), adds the days they touched to the days
still owed from earlier ticks, and folds them into ONE ranged run (single-run backfill policy):
every touched day closer than `MAX_BRIDGE_DAYS` to the next is in it. Days further away (e.g.
2003 history and today's live ticks) are another region: a ranged run emits one materialization
per partition, so bridging 20 empty years would write ~30,000 events; the far region is kept in
the cursor and requested as soon as this run is done.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date

import dagster as dg

from stock_assets.defs.catch_up import region_request
from stock_assets.defs.ingest.assets import PARTITION_SPANS
from stock_assets.defs.kernel import RAW_TICKS, START_DATE, session_partitions
from stock_assets.defs.market.jobs import SESSION_ASSETS, SESSIONS_JOB, sessions_job
from stock_assets.defs.runs import SENSOR_INTERVAL_S, skip_while_in_flight
from stock_assets.lib.spans import DateSpan, merge_spans

MAX_EVENTS_PER_TICK = 1000
# Touched days at most this far apart go into ONE run; farther ones (the history's 11-year hole,
# 2013-03 -> 2024-08) are separate regions. Creating a ranged run costs time per day in it
# (dagster's _store_asset_check_evaluation_planned writes one asset_check_executions row per
# partition and partitioned check, with the whole serialized event), so bridging the hole makes
# the first run slower to create and to finish: "history complete" at 251 s as two regions vs
# 356 s bridged (bench/e2e.py, 2026-12-03, nothing else running). Under load ~13 the order was
# reversed (340 s bridged vs 577-644 s split): docs/orchestration.md.
MAX_BRIDGE_DAYS = 31
# The same per-day cost, ~1.5 KB per day and check: a range longer than this (the history) runs
# without the 4 event-time freshness checks of its 10 (2000-2013: 47,500 rows, ~70 MB; creation
# 57 s -> 34 s measured), which measure the pipeline against the producer's newest tick, not the
# range, and run again with the next (short) live run. The data-quality checks always run.
FRESHNESS_MAX_DAYS = 31


def read_cursor(cursor: str | None) -> tuple[int | None, list[DateSpan]]:
    """(last storage id read, date spans owed); also reads the former plain storage-id cursor."""
    if not cursor:
        return None, []
    value = json.loads(cursor)
    if isinstance(value, int):
        return value, []
    owed = [(date.fromisoformat(a), date.fromisoformat(b)) for a, b in value.get("owed", [])]
    return value.get("after"), owed


def write_cursor(after: int | None, owed: list[DateSpan]) -> str:
    return json.dumps({"after": after, "owed": [[a.isoformat(), b.isoformat()] for a, b in owed]})


def range_checks(start: date, end: date) -> list[dg.AssetCheckKey] | None:
    """The checks a run over start..end executes: None = all of the job's; without the
    event-time freshness checks for a range longer than FRESHNESS_MAX_DAYS."""
    if (end - start).days < FRESHNESS_MAX_DAYS:
        return None
    from stock_assets.defs.analytics.checks import analytics_checks
    from stock_assets.defs.market.checks import market_checks

    return [key for checks in (*market_checks, *analytics_checks) for key in checks.check_keys]


def partition_run_request(start: date, end: date, run_key: str) -> dg.RunRequest:
    checks = range_checks(start, end)  # None for a single day: the job's own selection
    return region_request(
        start,
        end,
        run_key,
        asset_selection=SESSION_ASSETS if checks is not None else None,
        asset_check_keys=checks,
    )


def touched_spans(records: Sequence[dg.EventLogRecord], first: date, last: date) -> list[DateSpan]:
    """The partition_spans of raw_ticks materializations, clipped to existing partitions."""
    spans = []
    for record in records:
        materialization = record.asset_materialization
        meta = materialization.metadata if materialization else {}
        if PARTITION_SPANS not in meta:
            continue  # nothing loaded (ranges already in the warehouse)
        for span in meta[PARTITION_SPANS].value:  # type: ignore[union-attr]
            a, b = (date.fromisoformat(d) for d in str(span).split(".."))
            start, end = max(a, first), min(b, last)
            if start <= end:
                spans.append((start, end))
    return spans


@dg.sensor(
    job=sessions_job,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="One market_sessions run over the NY days the new raw_ticks loads touched.",
)
def sessions_after_ingest(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    if skip := skip_while_in_flight(context.instance, SESSIONS_JOB):
        return skip  # the cursor does not move: the loads after it go into the next run
    after, owed = read_cursor(context.cursor)
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=RAW_TICKS, after_storage_id=after),
        limit=MAX_EVENTS_PER_TICK,
        ascending=True,
    ).records
    if not records and not owed:
        return dg.SkipReason("no new raw_ticks loads")
    first_partition = date.fromisoformat(START_DATE)
    # the newest partition that exists (end_offset=1: today in New York)
    last_partition = date.fromisoformat(session_partitions.get_last_partition_key() or START_DATE)
    if records:
        after = records[-1].storage_id
    regions = merge_spans(
        [*owed, *touched_spans(records, first_partition, last_partition)], MAX_BRIDGE_DAYS
    )
    if not regions:
        return dg.SensorResult(run_requests=[], cursor=write_cursor(after, []))
    (start, end), rest = regions[0], regions[1:]
    context.log.info(
        f"{len(records)} new raw_ticks loads: one run {start}..{end}"
        + (f", owed next: {[f'{a}..{b}' for a, b in rest]}" if rest else "")
    )
    return dg.SensorResult(
        run_requests=[partition_run_request(start, end, f"sessions:{start}..{end}@{after}")],
        cursor=write_cursor(after, rest),
    )
