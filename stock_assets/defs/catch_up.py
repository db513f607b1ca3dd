"""Coalescing followers: ONE run of a job at a time, taking everything its upstream changed.

Dagster's `AutomationConditionSensorDefinition` evaluates each partition on its own: with
`~in_progress()` it still requests the NEW partitions while a run of older ones is queued, so
under load the auxiliary lane piled up runs (max 5-8 queued in bench/e2e.py); and an
unpartitioned follower guarded by `~any_deps_in_progress()` starved while the stream kept a
sessions run in flight at every evaluation (backtests and equity stayed weeks behind). These
sensors instead request nothing while a run of their job is queued or in flight
(`runs.skip_while_in_flight`), then fold all pending work into one run:

- `partitioned_follower`: the days whose newest upstream materialization is newer than the
  target's (new days, recomputed days, days whose run failed) -> one ranged run over the first
  region of them (days at most `MAX_BRIDGE_DAYS` apart; a ranged run writes one event per
  partition, so 11 empty years are not bridged); a further region on a later tick. Nor while its
  lane is busy or a run waits in the queue (`runs.skip_while_lane_busy`, checked last after the
  sensors before it in `runs.SENSOR_ORDER`): the jobs sharing a lane's slot take turns in their
  sensors instead of queueing behind one another.
- `latest_upstream`: the newest materialization storage id of some assets, for an unpartitioned
  follower that runs once for any number of upstream updates (trading/sensors.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, cast

import dagster as dg

from stock_assets.defs.kernel import RANGE_END_TAG, RANGE_START_TAG
from stock_assets.defs.runs import (
    LANE_TAG,
    Lane,
    skip_unless_lane_free,
    skip_while_in_flight,
    skip_while_lane_busy,
)
from stock_assets.lib.spans import date_spans

MAX_BRIDGE_DAYS = 31  # like the sessions trigger and the search catch-up
MATERIALIZATION = dg.DagsterEventType.ASSET_MATERIALIZATION


def stale_days(
    instance: dg.DagsterInstance, target: dg.AssetKey, upstream: Sequence[dg.AssetKey]
) -> dict[date, int]:
    """Days whose newest upstream materialization is newer than the target's (or it has none),
    with that upstream storage id."""
    done = instance.get_latest_storage_id_by_partition(target, MATERIALIZATION)
    newest: dict[str, int] = {}
    for key in upstream:
        for partition, storage_id in instance.get_latest_storage_id_by_partition(
            key, MATERIALIZATION
        ).items():
            newest[partition] = max(storage_id, newest.get(partition, -1))
    return {
        date.fromisoformat(p): storage_id
        for p, storage_id in sorted(newest.items())
        if storage_id > done.get(p, -1)
    }


def region_request(
    start: date,
    end: date,
    run_key: str | None = None,
    tags: Mapping[str, str] | None = None,
    **fields: Any,
) -> dg.RunRequest:
    """A run over the days start..end: one partition, or a ranged (single-run backfill) run;
    `fields`: more RunRequest fields (asset_selection, asset_check_keys)."""
    if start == end:
        return dg.RunRequest(run_key=run_key, partition_key=start.isoformat(), tags=tags, **fields)
    return dg.RunRequest(
        run_key=run_key,
        tags={**(tags or {}), RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()},
        **fields,
    )


def catch_up(
    context: dg.SensorEvaluationContext,
    job_name: str,
    target: dg.AssetKey,
    upstream: Sequence[dg.AssetKey],
    lane: Lane,
) -> dg.SensorResult | dg.SkipReason:
    """Nothing while a run of `job_name` is in flight, or its shared `lane` is busy; else one run
    over the first stale region."""
    instance = context.instance
    if skip := skip_while_in_flight(instance, job_name):
        return skip
    if skip := skip_while_lane_busy(instance, lane):
        return skip
    stale = stale_days(instance, target, upstream)
    regions = date_spans(stale, MAX_BRIDGE_DAYS)
    if not regions:
        return dg.SkipReason(f"{target.to_user_string()} is as new as its upstream")
    start, end = regions[0]
    # Keyed by the region and its newest upstream event: a run that failed is not requested
    # again (Dagster drops a used run key) until the upstream changes again, so a day that
    # always fails does not hold the lane in a loop.
    newest = max(storage_id for day, storage_id in stale.items() if start <= day <= end)
    run_key = f"{job_name}:{start}..{end}@{newest}"
    if skip := skip_unless_lane_free(context, lane):  # the sensors before it first
        return skip
    return dg.SensorResult(run_requests=[region_request(start, end, run_key)])


def partitioned_follower(
    name: str,
    job: dg.UnresolvedAssetJobDefinition,
    target: dg.AssetKey,
    upstream: Sequence[dg.AssetKey],
    minimum_interval_seconds: int,
    description: str,
) -> dg.SensorDefinition:
    """A sensor running `job` (whose one asset is `target`) over the days `upstream` changed."""

    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=description,
    )
    def follower(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        return catch_up(context, job.name, target, upstream, lane)

    lane = cast("Lane", job.tags[LANE_TAG])

    return follower


def latest_upstream(instance: dg.DagsterInstance, keys: Sequence[dg.AssetKey]) -> int:
    """The storage id of the newest materialization of any of `keys` (0: none yet)."""
    newest = 0
    for key in keys:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key), limit=1, ascending=False
        ).records
        if records:
            newest = max(newest, records[0].storage_id)
    return newest


def newest_partition(instance: dg.DagsterInstance, key: dg.AssetKey) -> date | None:
    """The latest day `key` was ever materialized for (None: never)."""
    partitions = instance.get_latest_storage_id_by_partition(key, MATERIALIZATION)
    return date.fromisoformat(max(partitions)) if partitions else None
