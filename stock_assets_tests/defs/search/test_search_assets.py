"""The index assets and the catch-up sensor, with the real warehouse and the real engine.

"Engine stopped mid-run" is a proxy in front of the real engine that disappears when the run
sends its second bulk request (every connection closed, then connection refused); "later run
catches up" is the sensor, then a run, against the real engine.
"""

import json
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pytest
from elasticsearch import Elasticsearch

from stock_assets.defs.analytics.assets import signals_asset
from stock_assets.defs.kernel import (
    ALERTS_INDEX,
    DAILY_BARS_INDEX,
    RANGE_END_TAG,
    RANGE_START_TAG,
    SIGNALS,
    SIGNALS_INDEX,
)
from stock_assets.defs.resources import WarehouseResource
from stock_assets.defs.search import defs as search_defs
from stock_assets.defs.search.assets import alerts_index, daily_bars_index, signals_index
from stock_assets.defs.search.resources import SearchResource
from stock_assets.defs.search.sensors import catch_up_request, search_catch_up
from stock_assets.defs.trading.assets import alerts
from stock_assets.defs.trading.resources import TradingConfigResource
from stock_assets.lib import db
from stock_assets.lib.search import indexing, templates
from stock_assets.lib.settings import DbSettings, SearchSettings
from stock_assets.lib.spans import date_spans
from stock_assets_tests.lib.search.data import StoppingProxy


def _resources(history_db: DbSettings, search: SearchResource) -> dict[str, object]:
    return {
        "warehouse": WarehouseResource(dbname=history_db.dbname),
        "search": search,
        "trading_config": TradingConfigResource(),  # the signals asset's (symbol, strategy, params)
    }


def _search(settings: SearchSettings, **overrides: object) -> SearchResource:
    values: dict = {
        "index_prefix": settings.index_prefix,
        "backoff_s": 0.05,
        "step_retries": 1,
        "step_retry_wait_s": 0,
        **overrides,
    }
    return SearchResource(**values)


def _warehouse_count(history_db: DbSettings, table: str, first: date, last: date) -> int:
    with db.connect(history_db) as conn:
        row = conn.execute(
            {
                "signals": "SELECT count(*) FROM analytics.signals"
                " WHERE session_date BETWEEN %s AND %s",
                "bars": "SELECT count(*) FROM market.bars_daily"
                " WHERE session_date BETWEEN %s AND %s",
            }[table],
            (first, last),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_definitions_list_the_search_domain() -> None:
    from stock_assets.definitions import defs

    repo = defs.get_repository_def()
    assert "search" in repo.get_top_level_resources()
    keys = set(defs.resolve_asset_graph().get_all_asset_keys())
    assert {SIGNALS_INDEX, DAILY_BARS_INDEX, ALERTS_INDEX} <= keys
    assert "search_catch_up" in {s.name for s in repo.sensor_defs}
    assert "search_index" in {j.name for j in repo.get_all_jobs()}


@pytest.mark.parametrize(
    ("days", "spans"),
    [
        ([], []),
        ([date(2005, 1, 3)], [(date(2005, 1, 3), date(2005, 1, 3))]),
        (
            [date(2005, 1, 3), date(2005, 1, 4), date(2005, 1, 6)],
            [(date(2005, 1, 3), date(2005, 1, 4)), (date(2005, 1, 6), date(2005, 1, 6))],
        ),
    ],
)
def test_consecutive_days_make_one_span(days: list[date], spans: list[tuple[date, date]]) -> None:
    assert date_spans(days) == spans


def test_materializing_a_partition_twice_keeps_the_document_count(
    history_db: DbSettings, search_settings: SearchSettings, client: Elasticsearch
) -> None:
    day = "2005-02-15"
    resources = _resources(history_db, _search(search_settings))
    counts = []
    for _ in range(2):
        result = dg.materialize(
            [signals_index, daily_bars_index], partition_key=day, resources=resources
        )
        assert result.success
        meta = {
            e.asset_key: e.materialization.metadata
            for e in result.get_asset_materialization_events()
        }
        checks = result.get_asset_check_evaluations()
        assert len(checks) == 2 and all(c.passed for c in checks)
        counts.append(
            (meta[SIGNALS_INDEX]["docs_in_index"].value, meta[DAILY_BARS_INDEX]["indexed"].value)
        )
    day_ = date.fromisoformat(day)
    bars = _warehouse_count(history_db, "bars", day_, day_)
    signals = _warehouse_count(history_db, "signals", day_ - indexing.SIGNAL_REFRESH, day_)
    assert counts == [(signals, bars), (signals, bars)]
    assert bars == 4
    assert (
        indexing.count(client, templates.BARS_DAILY, search_settings.index_prefix, day_, day_) == 4
    )


def test_engine_stopped_mid_run_fails_clearly_and_a_later_run_catches_up(
    history_db: DbSettings, search_settings: SearchSettings, client: Elasticsearch
) -> None:
    first, last = date(2004, 12, 1), date(2005, 2, 28)  # one bulk per year: 2004's, 2005's
    prefix = search_settings.index_prefix
    proxy = StoppingProxy(search_settings.port, stop_at_bulk=2)
    down = _search(search_settings, url=f"http://127.0.0.1:{proxy.port}", request_retries=2)
    instance = dg.DagsterInstance.ephemeral()
    job_defs = dg.Definitions(
        assets=[signals_asset, signals_index],
        jobs=[
            dg.define_asset_job(
                "signals_and_index",
                selection=[SIGNALS, SIGNALS_INDEX],
            )
        ],
        resources=_resources(history_db, down),
    )
    tags = {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}
    result = job_defs.resolve_job_def("signals_and_index").execute_in_process(
        instance=instance, tags=tags, raise_on_error=False
    )

    # the warehouse side ran; the index failed with an error naming the URL setting
    assert not result.success
    assert proxy.stopped.is_set() and proxy.bulks >= 2
    by_step = {e.step_key: e for e in result.all_events if e.is_step_failure or e.is_step_success}
    assert by_step["analytics__signals"].is_step_success
    failure = by_step["search__signals_index"]
    assert failure.is_step_failure
    error = failure.step_failure_data.error
    assert error is not None and error.cause is not None
    assert error.cause.cls_name == "SearchUnavailable"
    assert "STOCK_SEARCH_URL" in error.cause.message
    assert f"127.0.0.1:{proxy.port}" in error.cause.message
    retries = [
        e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]
    assert len(retries) == 1  # step_retries=1
    expected = _warehouse_count(history_db, "signals", first - indexing.SIGNAL_REFRESH, last)
    partial = indexing.count(
        client, templates.SIGNALS, prefix, first - indexing.SIGNAL_REFRESH, last
    )
    assert 0 < partial < expected  # 2004's days got in before the engine went away

    # while the engine is still down the sensor waits instead of launching doomed runs
    with dg.build_sensor_context(
        instance=instance, sensor_name=search_catch_up.name, resources={"search": down}
    ) as ctx:
        skipped = search_catch_up(ctx)
    assert isinstance(skipped, dg.SkipReason)
    assert "STOCK_SEARCH_URL" in (skipped.skip_message or "")

    # the engine is back: the sensor asks for the missed days as one ranged run, which catches up
    up = _search(search_settings)
    with dg.build_sensor_context(
        instance=instance, sensor_name=search_catch_up.name, resources={"search": up}
    ) as ctx:
        requested = search_catch_up(ctx)
    assert isinstance(requested, dg.SensorResult)
    assert requested.run_requests is not None and len(requested.run_requests) == 1
    request = requested.run_requests[0]
    assert request.asset_selection == [SIGNALS_INDEX]
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
        first.isoformat(),
        last.isoformat(),
    )
    catch_up = dg.Definitions.merge(
        search_defs, dg.Definitions(resources=_resources(history_db, up))
    ).resolve_job_def("search_index")
    rerun = catch_up.execute_in_process(
        instance=instance, tags=dict(request.tags), asset_selection=request.asset_selection
    )
    assert rerun.success
    assert indexing.count(
        client, templates.SIGNALS, prefix, first - indexing.SIGNAL_REFRESH, last
    ) == (expected)
    with dg.build_sensor_context(
        instance=instance, sensor_name=search_catch_up.name, resources={"search": up}
    ) as ctx:
        assert isinstance(search_catch_up(ctx), dg.SkipReason)  # nothing left to catch up


def test_alerts_index_holds_the_warehouse_alerts_and_the_sensor_requests_it(
    history_db: DbSettings,
    search_settings: SearchSettings,
    client: Elasticsearch,
    tmp_path: Path,
) -> None:
    first, last = date(2004, 1, 1), date(2004, 12, 31)
    prefix = search_settings.index_prefix
    config = tmp_path / "trading.json"
    # two rules of one kind, so one session can raise two percent_move alerts for a symbol
    config.write_text(
        json.dumps(
            {
                "alert_rules": [
                    {"name": "move3", "kind": "percent_move", "window": 1, "threshold_pct": 3},
                    {"name": "move6_5d", "kind": "percent_move", "window": 5, "threshold_pct": 6},
                ]
            }
        )
    )
    up = _search(search_settings)
    resources = {
        **_resources(history_db, up),
        "trading_config": TradingConfigResource(path=str(config)),
    }
    instance = dg.DagsterInstance.ephemeral()
    tags = {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}
    assert dg.materialize([alerts], instance=instance, resources=resources, tags=tags).success
    with db.connect(history_db) as conn:
        rows = conn.execute(
            "SELECT alert_id, symbol, session_date, rule, direction, message,"
            " count(*) OVER (PARTITION BY symbol, session_date, kind)"
            " FROM analytics.alerts WHERE session_date BETWEEN %s AND %s",
            (first, last),
        ).fetchall()
    assert rows and max(r[6] for r in rows) > 1  # same symbol, session and kind, distinct docs

    # the alerts are newer than their index: the sensor asks for the whole range in one run
    with dg.build_sensor_context(
        instance=instance, sensor_name=search_catch_up.name, resources={"search": up}
    ) as ctx:
        requested = search_catch_up(ctx)
    assert isinstance(requested, dg.SensorResult) and requested.run_requests is not None
    [request] = requested.run_requests
    assert request.asset_selection == [ALERTS_INDEX]
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
        first.isoformat(),
        last.isoformat(),
    )

    counts = []
    for _ in range(2):
        result = dg.materialize(
            [alerts_index], instance=instance, resources=resources, tags=dict(request.tags)
        )
        assert result.success
        meta = result.asset_materializations_for_node("search__alerts_index")[0].metadata
        assert all(c.passed for c in result.get_asset_check_evaluations())
        counts.append((meta["warehouse_rows"].value, meta["docs_in_index"].value))
    assert counts == [(len(rows), len(rows))] * 2
    assert indexing.count(client, templates.ALERTS, prefix, first, last) == len(rows)

    alert_id, symbol, day, rule, direction, message, _ = rows[0]
    doc = client.get(index=templates.ALERTS.index_for(prefix, day), id=alert_id)["_source"]
    assert (doc["symbol"], doc["rule"], doc["direction"], doc["message"]) == (
        symbol,
        rule,
        direction,
        message,
    )
    assert datetime.fromisoformat(doc["ts"]).date() == day
    with dg.build_sensor_context(
        instance=instance, sensor_name=search_catch_up.name, resources={"search": up}
    ) as ctx:
        assert isinstance(search_catch_up(ctx), dg.SkipReason)  # nothing left to catch up


def test_catch_up_takes_the_oldest_and_the_newest_region_in_turn() -> None:
    old = [date(2004, 3, 1), date(2004, 3, 2)]
    new = [date(2026, 8, 3)]
    stale = {SIGNALS_INDEX: [*old, *new], DAILY_BARS_INDEX: old}
    oldest, cursor = catch_up_request(stale, None)  # the first run: the history first
    newest, then = catch_up_request(stale, cursor)
    assert oldest is not None and newest is not None
    span = (oldest.tags[RANGE_START_TAG], oldest.tags[RANGE_END_TAG])
    assert span == ("2004-03-01", "2004-03-02")
    assert oldest.asset_selection == [SIGNALS_INDEX, DAILY_BARS_INDEX]
    assert newest.partition_key == "2026-08-03" and newest.asset_selection == [SIGNALS_INDEX]
    assert catch_up_request(stale, then)[0] == oldest  # and so on, in turn
    assert catch_up_request({SIGNALS_INDEX: []}, cursor)[0] is None
