"""The code location loads and lists the expected assets, checks, jobs, sensors, schedules and
resources of every domain."""

from __future__ import annotations

import dagster as dg

from stock_assets.definitions import defs
from stock_assets.lib.calendar import TIMEZONE


def test_assets_and_groups() -> None:
    graph = defs.resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == {
        "market/raw_ticks": "ingest",
        "market/splits": "market",
        "market/bars_1m": "market",
        "market/bars_daily": "market",
        "analytics/indicators": "analytics",
        "analytics/signals": "analytics",
        "analytics/rolling_beta": "risk",
        "analytics/alerts": "trading",
        "trading/backtests": "trading",
        "trading/paper_portfolio": "trading",
        "trading/orders": "trading",
        "search/signals_index": "search",
        "search/daily_bars_index": "search",
        "search/alerts_index": "search",
        "forecast/evaluation": "forecast",
        "forecast/predictions": "forecast",
    }
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description and "\n" not in node.description.strip()
        assert node.kinds


def test_lineage() -> None:
    graph = defs.resolve_asset_graph()

    def parents(key: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(key.split("/"))).parent_keys}

    assert parents("market/bars_1m") == {"market/raw_ticks", "market/splits"}
    assert parents("market/bars_daily") == {"market/bars_1m"}
    assert parents("analytics/indicators") == {"market/bars_daily"}
    assert parents("analytics/signals") == {"market/bars_daily"}
    assert parents("forecast/evaluation") == {"market/bars_daily", "analytics/indicators"}
    assert parents("forecast/predictions") == {
        "market/bars_daily",
        "analytics/indicators",
        "forecast/evaluation",
    }


def test_checks() -> None:
    checks = {
        (key.asset_key.to_user_string(), key.name)
        for key in defs.resolve_asset_graph().asset_check_keys
    }
    assert checks >= {
        ("market/raw_ticks", "ledger_matches_rows"),
        ("market/bars_1m", "bars_1m_reconcile_raw_ticks"),
        ("market/bars_1m", "bars_1m_ohlc_consistent"),
        ("market/bars_1m", "bars_1m_no_missing_minutes"),
        ("market/bars_daily", "bars_daily_consistent"),
        ("analytics/indicators", "indicators_in_range"),
        ("analytics/signals", "signals_reference_bars"),
        ("forecast/evaluation", "beats_random_walk"),
        ("forecast/predictions", "interval_contains_forecast"),
    }


def test_jobs_sensors_schedules() -> None:
    jobs = {job.name for job in defs.resolve_all_job_defs()} - {"__ASSET_JOB"}
    assert jobs == {
        "ingest_raw_ticks",
        "market_sessions",
        "search_index",
        "warehouse_maintenance",
        "trading",
        "alerts",
        "forecast_predictions",
        "forecast_evaluation",
    }
    assert {s.name for s in defs.sensors or []} == {
        "kafka_ticks_sensor",
        "sessions_after_ingest",
        "search_catch_up",
        "trading_after_signals",
        "alerts_after_bars",
        "forecast_after_bars",
    }
    schedules = {s.name: s for s in defs.schedules or []}
    assert set(schedules) >= {
        "market_end_of_day",
        "warehouse_maintenance_schedule",
        "orders_market_open",
        "forecast_weekly",
    }
    eod = schedules["market_end_of_day"]
    assert isinstance(eod, dg.ScheduleDefinition)
    assert eod.cron_schedule == "30 17 * * 1-5"
    assert eod.execution_timezone == TIMEZONE


def test_partitions_and_backfill_policy() -> None:
    graph = defs.resolve_asset_graph()
    for key in ("market/bars_1m", "market/bars_daily", "analytics/indicators", "analytics/signals"):
        node = graph.get(dg.AssetKey(key.split("/")))
        pdef = node.partitions_def
        assert isinstance(pdef, dg.DailyPartitionsDefinition)
        assert pdef.timezone == TIMEZONE
        assert pdef.get_first_partition_key() == "2000-03-01"
        assert node.backfill_policy == dg.BackfillPolicy.single_run()


def test_resources() -> None:
    resources = set(defs.get_repository_def().get_top_level_resources())
    assert resources == {
        "warehouse",
        "kafka",
        "search",
        "pyspark",
        "trading_config",
        "mlflow",
        "forecast_config",
    }


def test_warehouse_maintenance_runs_against_the_real_warehouse(db_settings) -> None:  # type: ignore[no-untyped-def]
    from stock_assets.defs.resources import WarehouseResource

    job = defs.resolve_job_def("warehouse_maintenance")
    result = job.execute_in_process(
        resources={"warehouse": WarehouseResource(dbname=db_settings.dbname)}
    )
    assert result.success
    dropped = result.output_for_node("enforce_retention")
    assert set(dropped) == {"market.raw_ticks", "market.live_bars_1m"}
