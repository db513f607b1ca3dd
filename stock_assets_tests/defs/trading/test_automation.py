"""The coalescing followers of the trading, alerts and forecast assets (real Dagster instance).

With a run of their job queued or in flight they request nothing; then ONE run covering
everything pending: the unpartitioned trading job once for any number of upstream updates, the
partitioned alerts / predictions jobs as one ranged run over the first region of stale days.
"""

from __future__ import annotations

import threading
import time
from datetime import date

import dagster as dg
from dagster._core.scheduler.instigation import InstigatorTick, TickStatus

from stock_assets.defs.forecast.sensors import PREDICTIONS_JOB, forecast_after_bars
from stock_assets.defs.kernel import (
    ALERTS,
    BARS_DAILY,
    INDICATORS,
    PREDICTIONS,
    RANGE_END_TAG,
    RANGE_START_TAG,
    SIGNALS,
)
from stock_assets.defs.runs import ABANDONED_TICK_S, Lane, lane_tags, skip_unless_lane_free
from stock_assets.defs.trading.assets import signals_through
from stock_assets.defs.trading.sensors import (
    ALERTS_JOB,
    TRADING_JOB,
    alerts_after_bars,
    orders_market_open,
    trading_after_signals,
)
from stock_assets_tests.defs.conftest import add_run_in_flight


def materialize(instance: dg.DagsterInstance, key: dg.AssetKey, *days: str) -> None:
    for day in days:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=day))


def tick(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None = None
) -> dg.SensorResult | dg.SkipReason:
    with dg.build_sensor_context(instance=instance, cursor=cursor, sensor_name=sensor.name) as ctx:
        result = sensor(ctx)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def one_request(result: dg.SensorResult | dg.SkipReason) -> dg.RunRequest:
    assert isinstance(result, dg.SensorResult), result
    assert result.run_requests is not None and len(result.run_requests) == 1
    return result.run_requests[0]


def span(request: dg.RunRequest) -> tuple[str, str]:
    if request.partition_key is not None:
        return request.partition_key, request.partition_key
    return request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]


def test_trading_runs_once_for_all_updates_and_never_while_in_flight() -> None:
    with dg.instance_for_test() as instance:  # with a ref: the schedule context needs one
        trading_follows(instance)


def trading_follows(instance: dg.DagsterInstance) -> None:
    quiet = tick(trading_after_signals, instance)
    assert isinstance(quiet, dg.SkipReason)  # nothing upstream yet

    materialize(instance, BARS_DAILY, "2004-03-01")
    materialize(instance, SIGNALS, "2004-03-01")
    first = tick(trading_after_signals, instance)
    one_request(first)
    assert isinstance(first, dg.SensorResult) and first.cursor

    running = add_run_in_flight(instance, TRADING_JOB)
    for day in ("2004-03-02", "2004-03-03", "2004-03-04"):
        materialize(instance, BARS_DAILY, day)
        materialize(instance, SIGNALS, day)
        waiting = tick(trading_after_signals, instance, first.cursor)
        assert isinstance(waiting, dg.SkipReason)
        assert running.run_id in (waiting.skip_message or "")
    # the schedule at the open waits too
    with dg.build_schedule_context(instance=instance) as ctx:
        assert isinstance(orders_market_open.evaluate_tick(ctx).skip_message, str)

    instance.delete_run(running.run_id)
    with dg.build_schedule_context(instance=instance) as ctx:
        assert len(orders_market_open.evaluate_tick(ctx).run_requests or []) == 1
    folded = tick(trading_after_signals, instance, first.cursor)
    one_request(folded)  # ONE run for the three updates
    assert isinstance(folded, dg.SensorResult) and folded.cursor
    assert int(folded.cursor) > int(first.cursor)
    assert isinstance(tick(trading_after_signals, instance, folded.cursor), dg.SkipReason)
    # the paper portfolio's bound: the newest day with materialized signals
    assert signals_through(instance) == date(2004, 3, 4)
    materialize(instance, BARS_DAILY, "2004-03-05")  # bars of a day whose signals are not in
    assert signals_through(instance) == date(2004, 3, 4)


def test_alerts_one_ranged_run_over_the_stale_days_none_while_in_flight() -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert isinstance(tick(alerts_after_bars, instance), dg.SkipReason)
    materialize(instance, BARS_DAILY, "2004-03-01", "2004-03-02", "2004-03-03")

    running = add_run_in_flight(instance, ALERTS_JOB)
    materialize(instance, BARS_DAILY, "2004-03-08", "2004-03-09")
    materialize(instance, BARS_DAILY, "2026-08-03")  # far away: another region
    waiting = tick(alerts_after_bars, instance)
    assert isinstance(waiting, dg.SkipReason) and running.run_id in (waiting.skip_message or "")

    instance.delete_run(running.run_id)
    request = one_request(tick(alerts_after_bars, instance))
    assert span(request) == ("2004-03-01", "2004-03-09")  # every stale day of the region

    # that run materializes its days; the far region comes next, as its own run
    materialize(instance, ALERTS, "2004-03-01", "2004-03-02", "2004-03-03", "2004-03-08")
    materialize(instance, ALERTS, "2004-03-09")
    assert span(one_request(tick(alerts_after_bars, instance))) == ("2026-08-03", "2026-08-03")
    materialize(instance, ALERTS, "2026-08-03")
    assert isinstance(tick(alerts_after_bars, instance), dg.SkipReason)

    # a recomputed day is stale again
    materialize(instance, BARS_DAILY, "2004-03-02")
    assert span(one_request(tick(alerts_after_bars, instance))) == ("2004-03-02", "2004-03-02")


def test_a_failed_region_is_not_requested_again_until_its_upstream_changes() -> None:
    instance = dg.DagsterInstance.ephemeral()
    materialize(instance, BARS_DAILY, "2004-03-01", "2004-03-02")
    first = one_request(tick(alerts_after_bars, instance))
    again = one_request(tick(alerts_after_bars, instance))  # the run failed: same days stale
    assert again.run_key == first.run_key  # Dagster drops a used run key: no failing loop
    materialize(instance, BARS_DAILY, "2004-03-02")
    assert one_request(tick(alerts_after_bars, instance)).run_key != first.run_key


def test_predictions_follow_bars_and_indicators_as_one_run() -> None:
    instance = dg.DagsterInstance.ephemeral()
    materialize(instance, BARS_DAILY, "2004-03-01", "2004-03-02")
    materialize(instance, INDICATORS, "2004-03-01", "2004-03-02")
    materialize(instance, PREDICTIONS, "2004-03-01", "2004-03-02")
    assert isinstance(tick(forecast_after_bars, instance), dg.SkipReason)

    running = add_run_in_flight(instance, PREDICTIONS_JOB)
    materialize(instance, INDICATORS, "2004-03-02")  # recomputed indicators
    materialize(instance, BARS_DAILY, "2004-03-03", "2004-03-04")
    materialize(instance, INDICATORS, "2004-03-03", "2004-03-04")
    assert isinstance(tick(forecast_after_bars, instance), dg.SkipReason)
    instance.delete_run(running.run_id)
    assert span(one_request(tick(forecast_after_bars, instance))) == ("2004-03-02", "2004-03-04")


def add_lane_run(
    instance: dg.DagsterInstance, job_name: str, lane: Lane, status: dg.DagsterRunStatus
) -> dg.DagsterRun:
    """A run of `lane` as the QueuedRunCoordinator and the daemon record it. Dagster requires a
    RemoteJobOrigin for a QUEUED run and has no public constructor for one, hence the private
    imports (test only)."""
    from dagster._core.remote_origin import (
        InProcessCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(python_file=__file__))
    origin = RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), job_name)
    run = dg.DagsterRun(
        job_name=job_name, status=status, tags=lane_tags(lane), remote_job_origin=origin
    )
    return instance.add_run(run)


def skipped_for(result: dg.SensorResult | dg.SkipReason, run: dg.DagsterRun) -> bool:
    return isinstance(result, dg.SkipReason) and run.run_id in (result.skip_message or "")


def test_a_follower_requests_only_into_an_idle_lane_and_an_empty_queue() -> None:
    """The followers sharing a lane's slot (alerts and trading: trading; predictions and search:
    aux) take turns in their sensors; none adds a run to a non-empty queue."""
    instance = dg.DagsterInstance.ephemeral()
    materialize(instance, BARS_DAILY, "2004-03-01")
    materialize(instance, INDICATORS, "2004-03-01")
    materialize(instance, SIGNALS, "2004-03-01")
    search = add_lane_run(instance, "search_index", "aux", dg.DagsterRunStatus.STARTED)
    assert skipped_for(tick(forecast_after_bars, instance), search)  # its lane runs search
    one_request(tick(alerts_after_bars, instance))  # another lane, and nothing queued
    trading = add_lane_run(instance, TRADING_JOB, "trading", dg.DagsterRunStatus.STARTED)
    assert skipped_for(tick(alerts_after_bars, instance), trading)
    instance.delete_run(search.run_id)
    one_request(tick(forecast_after_bars, instance))

    # a queued run of any lane (here the stream's): no follower adds to the queue
    instance.delete_run(trading.run_id)
    ingest = add_lane_run(instance, "ingest_raw_ticks", "ingest", dg.DagsterRunStatus.QUEUED)
    for follower in (alerts_after_bars, forecast_after_bars, trading_after_signals):
        assert skipped_for(tick(follower, instance), ingest)
    instance.delete_run(ingest.run_id)

    # and the trading run waits for an alerts run of its lane
    alerts = add_lane_run(instance, ALERTS_JOB, "trading", dg.DagsterRunStatus.STARTED)
    assert skipped_for(tick(trading_after_signals, instance), alerts)
    instance.delete_run(alerts.run_id)
    one_request(tick(trading_after_signals, instance))


def add_sensor_tick(
    instance: dg.DagsterInstance, sensor_name: str, started_s_ago: float = 0.0
) -> InstigatorTick:
    """A tick of `sensor_name` as the sensor daemon writes it while the sensor evaluates and its
    runs are submitted (STARTED). Private imports as in `add_lane_run` (test only)."""
    from dagster._core.definitions.run_request import InstigatorType
    from dagster._core.remote_origin import (
        InProcessCodeLocationOrigin,
        RemoteInstigatorOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.scheduler.instigation import InstigatorState, InstigatorStatus, TickData
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(python_file=__file__))
    origin = RemoteInstigatorOrigin(RemoteRepositoryOrigin(location, "__repository__"), sensor_name)
    state = InstigatorState(origin, InstigatorType.SENSOR, InstigatorStatus.RUNNING)
    if instance.get_instigator_state(state.instigator_origin_id, state.selector_id) is None:
        instance.add_instigator_state(state)
    return instance.create_tick(
        TickData(
            instigator_origin_id=state.instigator_origin_id,
            instigator_name=sensor_name,
            instigator_type=InstigatorType.SENSOR,
            status=TickStatus.STARTED,
            timestamp=time.time() - started_s_ago,
            selector_id=state.selector_id,
        )
    )


def test_a_follower_queues_a_run_only_after_the_sensors_before_it() -> None:
    """The daemon evaluates every due sensor at once; a follower waits for the ticks of the
    sensors before it in runs.SENSOR_ORDER and for the runs they queued to leave the queue, so
    its run never joins theirs there (without this, four runs were queued within a second)."""
    with dg.instance_for_test() as instance:
        materialize(instance, SIGNALS, "2004-03-01")
        # the Kafka sensor is evaluating; it queues an ingest run and ends its tick, then the
        # run coordinator dequeues the run
        stream = add_sensor_tick(instance, "kafka_ticks_sensor")
        dequeued = threading.Event()

        def stream_tick_then_dequeue() -> None:
            time.sleep(0.5)
            run = add_lane_run(instance, "ingest_raw_ticks", "ingest", dg.DagsterRunStatus.QUEUED)
            instance.update_tick(stream.with_status(TickStatus.SUCCESS))
            time.sleep(0.5)
            dequeued.set()  # before the queue is empty: the follower cannot see it empty earlier
            instance.delete_run(run.run_id)
            add_lane_run(instance, "ingest_raw_ticks", "ingest", dg.DagsterRunStatus.STARTED)

        stream_side = threading.Thread(target=stream_tick_then_dequeue)
        stream_side.start()
        result = tick(trading_after_signals, instance)
        returned_after_dequeue = dequeued.is_set()
        stream_side.join()
        one_request(result)  # another lane than the stream's: its turn in the same iteration
        assert returned_after_dequeue

        # a later sensor's tick does not hold an earlier one; an abandoned tick holds nobody
        add_sensor_tick(instance, "forecast_after_bars")
        add_sensor_tick(instance, "sessions_after_ingest", started_s_ago=ABANDONED_TICK_S + 1)
        with dg.build_sensor_context(instance=instance, sensor_name="alerts_after_bars") as ctx:
            assert skip_unless_lane_free(ctx, "trading", timeout_s=0.3) is None

        # a tick before it, or a queued run, that outlasts the wait: the follower skips, naming it
        still = add_sensor_tick(instance, "alerts_after_bars")
        with dg.build_sensor_context(instance=instance, sensor_name="search_catch_up") as ctx:
            skipped = skip_unless_lane_free(ctx, "aux", timeout_s=0.3)
            assert skipped is not None and "alerts_after_bars" in (skipped.skip_message or "")
            instance.update_tick(still.with_status(TickStatus.SKIPPED))
            queued = add_lane_run(
                instance, "market_sessions", "sessions", dg.DagsterRunStatus.QUEUED
            )
            assert skipped_for(
                skip_unless_lane_free(ctx, "aux", timeout_s=0.3) or dg.SkipReason(), queued
            )
            # and a busy lane: at once
            instance.delete_run(queued.run_id)
            search = add_lane_run(instance, "search_index", "aux", dg.DagsterRunStatus.STARTED)
            assert skipped_for(skip_unless_lane_free(ctx, "aux") or dg.SkipReason(), search)
