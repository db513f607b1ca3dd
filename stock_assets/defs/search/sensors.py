"""Catch-up: (re)index every partition whose warehouse upstream is newer than its index.

A partition needs indexing when its upstream (signals, bars_daily, alerts) was materialized after
the index asset last was — which covers new days, recomputed days, and days whose index run failed
while the engine was down. The sensor first pings the engine: while it is unreachable the sensor
skips (naming the URL) instead of launching runs bound to fail; once it answers, it requests ONE
ranged run (the assets' single-run backfill policy): one region of stale days, over every index
stale in it — the oldest and the newest region in turn, the oldest first (days at most
`MAX_BRIDGE_DAYS` apart are one region; re-indexing a day that was current is idempotent).
Further regions come on later ticks, and it requests nothing while the auxiliary lane it shares
with the forecasts (defs/runs.py) is busy or a run waits in the queue
(`runs.skip_while_lane_busy`), checked last after the sensors before it in `runs.SENSOR_ORDER`.
"""

from datetime import date

import dagster as dg

from stock_assets.defs.catch_up import MAX_BRIDGE_DAYS, region_request, stale_days
from stock_assets.defs.kernel import (
    ALERTS,
    ALERTS_INDEX,
    BARS_DAILY,
    DAILY_BARS_INDEX,
    SIGNALS,
    SIGNALS_INDEX,
)
from stock_assets.defs.runs import lane_tags, skip_unless_lane_free, skip_while_lane_busy
from stock_assets.defs.search.assets import alerts_index, daily_bars_index, signals_index
from stock_assets.defs.search.resources import SearchResource
from stock_assets.lib.search.client import SearchUnavailable
from stock_assets.lib.spans import date_spans

CATCH_UP_TAG = "search/catch_up"
# An evaluation is a few run-storage queries (nothing at all while its lane is busy); the first
# start's history comes as 2-3 regions, one run each, so the interval paces the Signals page.
SEARCH_INTERVAL_S = 30
NEWEST, OLDEST = "newest", "oldest"  # the cursor: the end of the stale days the last run took
INDEXED_FROM = {SIGNALS_INDEX: SIGNALS, DAILY_BARS_INDEX: BARS_DAILY, ALERTS_INDEX: ALERTS}

search_index_job = dg.define_asset_job(
    "search_index",
    selection=dg.AssetSelection.assets(signals_index, daily_bars_index, alerts_index),
    description="Sync search indices with the warehouse for a range of NY days.",
    tags={"domain": "search", **lane_tags("aux")},
    # its three steps in the (warm) run worker: the default multiprocess executor spawned an
    # interpreter per step that imported the code location again (12 s to the first step)
    executor_def=dg.in_process_executor,
)


def stale_partitions(instance: dg.DagsterInstance, index: dg.AssetKey) -> list[date]:
    """Days whose upstream materialization is newer than the index's (or the index has none)."""
    return list(stale_days(instance, index, [INDEXED_FROM[index]]))


def catch_up_request(
    stale: dict[dg.AssetKey, list[date]], cursor: str | None
) -> tuple[dg.RunRequest | None, str]:
    """One run: the oldest or the newest region of stale days (any index), for the indices
    stale inside it, and the next cursor (the end it took). The sensor alternates: the stream's
    days become searchable within a tick or two, and a history or a recomputed old region still
    gets every other run (newest only starved the history while the stream kept adding days:
    2000-2013 unsearchable for minutes). The first run takes the oldest: on a first start that
    is the history the Signals page waits for (newest first left it for the next turn, behind a
    predictions run: all history signals searchable at 265-269 s instead of ~180)."""
    newest = cursor == OLDEST
    taken = NEWEST if newest else OLDEST
    regions = date_spans((d for days in stale.values() for d in days), MAX_BRIDGE_DAYS)
    if not regions:
        return None, taken
    start, end = regions[-1] if newest else regions[0]
    indices = [key for key, days in stale.items() if any(start <= d <= end for d in days)]
    tags = {CATCH_UP_TAG: ",".join(index.to_user_string() for index in indices)}
    return region_request(start, end, tags=tags, asset_selection=indices), taken


@dg.sensor(
    job=search_index_job,
    minimum_interval_seconds=SEARCH_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Indexes the days whose warehouse data is newer than the search index.",
)
def search_catch_up(
    context: dg.SensorEvaluationContext, search: SearchResource
) -> dg.SensorResult | dg.SkipReason:
    if skip := skip_while_lane_busy(context.instance, "aux"):  # its own runs are in the lane
        return skip
    stale = {key: stale_partitions(context.instance, key) for key in INDEXED_FROM}
    if not any(stale.values()):
        return dg.SkipReason("every search index is as new as its warehouse upstream")
    try:
        search.client(retries=0).cluster.health()
    except SearchUnavailable as exc:
        return dg.SkipReason(f"engine unavailable, will retry: {exc}")
    request, cursor = catch_up_request(stale, context.cursor)
    if skip := skip_unless_lane_free(context, "aux"):  # the sensors before it first
        return skip
    return dg.SensorResult(run_requests=[request] if request else [], cursor=cursor)
