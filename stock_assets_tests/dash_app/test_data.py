"""Data access against the real TimescaleDB: server-side bucketing, parameters, index use."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from dash_app.data import dagster, kafka
from dash_app.data import warehouse as data
from dash_app.data.dagster import parse_dagster_status
from dash_app.data.progress import pipeline_progress
from dash_app.data.warehouse import Warehouse, bars_query, pick_bucket
from dash_app.ranges import day_bounds
from stock_assets.lib import db
from stock_assets.lib.calendar import TIMEZONE
from stock_assets.lib.settings import DbSettings, KafkaSettings
from stock_assets_tests.dash_app.conftest import (
    ACCOUNT,
    ALERTS,
    BACKTESTS,
    DAILY_LAST_SESSION,
    DAILY_SYMBOL,
    OTHER_SYMBOL,
    REPLAY_SYMBOL,
    YEAR,
    YEAR_SYMBOL,
)

TZ = TIMEZONE
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        (timedelta(hours=6), timedelta(minutes=1)),
        (timedelta(days=1), timedelta(minutes=1)),
        (timedelta(days=7), timedelta(minutes=5)),
        (timedelta(days=31), timedelta(minutes=10)),
        (timedelta(days=366), timedelta(hours=2)),
        (timedelta(days=3650), timedelta(days=1)),
    ],
)
def test_pick_bucket_keeps_the_range_under_the_cap(span: timedelta, expected: timedelta) -> None:
    bucket = pick_bucket(T0, T0 + span, 5000)
    assert bucket == expected
    assert span / bucket <= 5000


def test_a_year_is_bucketed_in_sql_and_loses_nothing(
    warehouse: Warehouse, dash_db: DbSettings
) -> None:
    lo, hi = day_bounds(*YEAR, TZ)
    bars = warehouse.bars(YEAR_SYMBOL, lo, hi, max_candles=5000)
    with db.connect(dash_db) as conn:
        raw_n, raw_volume, first_open, last_close = conn.execute(
            "SELECT count(*), sum(volume), first(open, ts), last(close, ts) FROM market.bars_1m"
            " WHERE symbol = %s",
            (YEAR_SYMBOL,),
        ).fetchone()  # type: ignore[misc]
    frame = bars.frame
    assert raw_n > 95_000
    assert bars.bucket == timedelta(hours=2)
    assert 900 < frame.height <= 5000
    assert frame["bars"].sum() == raw_n
    assert frame["volume"].sum() == pytest.approx(raw_volume)
    assert frame["open"][0] == pytest.approx(first_open)
    assert frame["close"][-1] == pytest.approx(last_close)
    assert (frame["high"] >= frame["low"]).all()
    # intraday buckets start at the 09:30 session open, so none straddles the open
    local = frame["ts"].dt.convert_time_zone(TZ)
    assert set(local.dt.strftime("%H:%M").unique()) <= {"09:30", "11:30", "13:30", "15:30"}


def test_one_day_is_raw_minute_bars(warehouse: Warehouse) -> None:
    lo, hi = day_bounds(date(2024, 12, 18), date(2024, 12, 18), TZ)
    bars = warehouse.bars(YEAR_SYMBOL, lo, hi)
    assert bars.bucket == timedelta(minutes=1)
    assert bars.frame.height == 390
    assert bars.frame["ts"].is_sorted()


def test_parameters_are_bound_never_interpolated(warehouse: Warehouse) -> None:
    hostile = "AAPL' OR '1'='1'; DROP TABLE market.bars_1m; --"
    lo, hi = day_bounds(*YEAR, TZ)
    assert warehouse.bars(hostile, lo, hi).frame.is_empty()
    assert warehouse.signals(hostile, date(2000, 1, 1), date(2100, 1, 1)).is_empty()
    assert warehouse.alerts(hostile, date(2000, 1, 1), date(2100, 1, 1)).is_empty()
    query, params = bars_query(hostile, lo, hi, timedelta(hours=2))
    assert hostile not in json.dumps(str(query))
    assert params["symbol"] == hostile
    with pytest.raises(ValueError, match="unknown bar table"):
        bars_query("X", lo, hi, timedelta(hours=2), table="market.bars_1m; --")


def _plan(dash_db: DbSettings, query: object, params: dict) -> str:
    with db.connect(dash_db) as conn:
        rendered = query.as_string(conn)  # type: ignore[attr-defined]
        rows = conn.execute("EXPLAIN " + rendered, params).fetchall()
    return "\n".join(r[0] for r in rows)


@pytest.mark.parametrize(
    "span", [(date(2024, 12, 18), date(2024, 12, 18)), (date(2024, 11, 1), date(2024, 11, 30))]
)
def test_bar_queries_use_the_symbol_ts_index_and_chunk_exclusion(
    dash_db: DbSettings, span: tuple[date, date]
) -> None:
    lo, hi = day_bounds(*span, TZ)
    query, params = bars_query(YEAR_SYMBOL, lo, hi, pick_bucket(lo, hi, 5000))
    plan = _plan(dash_db, query, params)
    assert "Seq Scan" not in plan, plan
    # (symbol, ts) primary key or the hypertable's ts index, whichever the planner prefers
    assert "Index Scan" in plan or "Index Only Scan" in plan, plan
    # a day or a month touches one to six of the year's ~53 weekly chunks
    assert plan.count(" on _hyper_") <= 6, plan


def test_symbols_range_and_live_bars(warehouse: Warehouse) -> None:
    assert warehouse.symbols() == sorted(warehouse.symbols())
    assert {REPLAY_SYMBOL, YEAR_SYMBOL} <= set(warehouse.symbols())
    first, last = warehouse.bar_range(REPLAY_SYMBOL)  # type: ignore[misc]
    assert first < last
    live = warehouse.live_bars(REPLAY_SYMBOL, timedelta(hours=2))
    assert live.bucket == timedelta(minutes=1)
    assert 0 < live.frame.height <= 120
    assert warehouse.bar_range("NOPE") is None


def test_signals_carry_reasons(warehouse: Warehouse) -> None:
    signals = warehouse.signals(REPLAY_SYMBOL, date(2026, 7, 1), date(2026, 8, 31))
    assert signals["side"].to_list() == ["buy", "sell"]
    assert "RSI(14)" in signals["reason"][0]


def test_portfolio_queries(warehouse: Warehouse) -> None:
    assert warehouse.accounts() == [ACCOUNT]
    equity = warehouse.equity(ACCOUNT)
    assert equity.height == 8 and equity["ts"].is_sorted()
    assert warehouse.positions(ACCOUNT)[0]["symbol"] == REPLAY_SYMBOL
    orders = warehouse.orders(ACCOUNT)
    assert orders[0]["fill_price"] == pytest.approx(301.5)


def test_alerts_of_the_symbol_and_range_newest_first(warehouse: Warehouse) -> None:
    alerts = warehouse.alerts(REPLAY_SYMBOL, date(2026, 7, 29), date(2026, 8, 6))
    expected = sorted((a for a in ALERTS if a[1] == REPLAY_SYMBOL), key=lambda a: a[2])[::-1]
    assert alerts.rows() == [(a[2], a[1], a[3], a[4], a[5], a[6], a[8]) for a in expected]
    assert warehouse.alerts(REPLAY_SYMBOL, date(2026, 8, 4), date(2026, 8, 4)).is_empty()
    assert warehouse.alerts(OTHER_SYMBOL, date(2026, 8, 4), date(2026, 8, 4))["rule"].to_list() == [
        "daily_move_5pct"
    ]


def test_backtests_are_the_latest_per_strategy_and_symbol_with_explicit_columns(
    warehouse: Warehouse,
) -> None:
    rows = warehouse.backtests()
    assert all(tuple(r) == data.BACKTEST_COLUMNS for r in rows)
    assert [(r["strategy"], r["symbol"]) for r in rows] == [
        ("macd_cross", OTHER_SYMBOL),
        ("sma_crossover", REPLAY_SYMBOL),
    ]
    latest = {(b[0], b[1]): b for b in BACKTESTS if b[2] != "old"}
    metrics = data.BACKTEST_COLUMNS[2:9]  # total_return .. win_rate, in the seed's order
    for row in rows:
        _, _, _, run_at, values = latest[(row["strategy"], row["symbol"])]
        assert row["run_at"] == run_at
        assert [row[c] for c in metrics] == pytest.approx(list(values))


def test_progress_and_ledger(warehouse: Warehouse, kafka_settings: KafkaSettings) -> None:
    deadline = time.monotonic() + 30
    # the session's topics are new: their partitions may still be electing leaders
    while (found := pipeline_progress(warehouse, kafka_settings, 5.0)).kafka_error:
        assert time.monotonic() < deadline, found.kafka_error
        time.sleep(0.5)
    by = {s.stage: s for s in found.stages}
    # the newest bar of the fixtures: AAPL/MSFT minute bars of 2026-08-07 (GBM) end 16:00 NY
    assert by["bars_1m"].event_time == datetime(2026, 8, 7, 20, tzinfo=UTC)
    assert by["raw_ticks"].event_time is None  # empty table: no data, not an error
    assert by["signals"].event_time == datetime(2026, 8, 4, 20, tzinfo=UTC)
    assert {p.partition for p in found.partitions} == set(range(6))
    assert found.kind == "replay"  # no tick names a live provider
    ledger = warehouse.ledger()
    assert ledger[0]["topic"] == "market.ticks" and ledger[0]["loaded_offset"] == 500


def test_kafka_status_against_the_real_broker(kafka_settings: KafkaSettings) -> None:
    from stock_assets.lib.topics import TICKS, topic_name

    topic = topic_name(TICKS, kafka_settings.topic_prefix)
    deadline = time.monotonic() + 30
    while True:  # the session's topics are new: their partitions may still be electing leaders
        status = kafka.kafka_status(kafka_settings, [topic], timeout_s=5)
        assert status.reachable, status.error
        if all(p.error is None for p in status.partitions) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert all(p.lag is not None and p.lag >= 0 for p in status.partitions if not p.error)


def test_kafka_status_unreachable_is_a_state_not_an_exception() -> None:
    settings = KafkaSettings.load(bootstrap_servers="127.0.0.1:1")
    status = kafka.kafka_status(settings, ["market.ticks"], timeout_s=1)
    assert not status.reachable
    assert "Kafka unreachable" in (status.error or "")


def test_dagster_unreachable_is_a_state_not_an_exception() -> None:
    from bench.harness import free_port

    status = dagster.dagster_status(f"http://127.0.0.1:{free_port()}/graphql", 1.0)
    assert not status.reachable
    assert "Dagster unreachable" in (status.error or "")


def test_dagster_query_is_valid_for_the_installed_dagster_schema() -> None:
    from dagster_graphql.schema import create_schema
    from graphql import parse, validate

    schema = create_schema()
    for query in (dagster.DAGSTER_QUERY, dagster.MATERIALIZED_QUERY):
        assert validate(schema.graphql_schema, parse(query)) == []


def test_parse_dagster_status() -> None:
    payload = {
        "data": {
            "repositoriesOrError": {
                "__typename": "RepositoryConnection",
                "nodes": [
                    {
                        "name": "__repository__",
                        "location": {"name": "stock_assets"},
                        "sensors": [
                            {
                                "name": "kafka_ticks_sensor",
                                "sensorState": {
                                    "status": "RUNNING",
                                    "ticks": [
                                        {
                                            "status": "SKIPPED",
                                            "timestamp": 1_790_000_000.0,
                                            "error": None,
                                            "skipReason": "no new offsets",
                                        }
                                    ],
                                },
                            }
                        ],
                        "assetNodes": [
                            {
                                "assetKey": {"path": ["market", "bars_1m"]},
                                "assetChecksOrError": {
                                    "__typename": "AssetChecks",
                                    "checks": [
                                        {
                                            "name": "ohlc_consistent",
                                            "executionForLatestMaterialization": {
                                                "status": "FAILED",
                                                "timestamp": 1_790_000_100.0,
                                                "evaluation": {
                                                    "severity": "ERROR",
                                                    "description": "3 bars with high < low",
                                                },
                                            },
                                        }
                                    ],
                                },
                            }
                        ],
                    }
                ],
            }
        }
    }
    status = parse_dagster_status(payload)
    assert status.reachable and status.error is None
    assert status.sensors[0].last_tick_status == "SKIPPED"
    assert status.sensors[0].error == "no new offsets"
    check = status.checks[0]
    assert (check.asset, check.check, check.status) == (
        "market/bars_1m",
        "ohlc_consistent",
        "FAILED",
    )
    assert parse_dagster_status({"errors": [{"message": "boom"}]}).error == "boom"


def test_recent_sessions_and_density_of_a_replayed_daily_symbol(warehouse: Warehouse) -> None:
    from dash_app.ranges import density

    sessions = warehouse.recent_sessions(DAILY_SYMBOL, 120)
    assert len(sessions) == 120 and sessions[0] == DAILY_LAST_SESSION
    assert sessions == sorted(sessions, reverse=True)
    assert len(set(sessions)) == 120
    assert density(warehouse.newest_bar_times(DAILY_SYMBOL), TZ) == "daily"
    assert density(warehouse.newest_bar_times(YEAR_SYMBOL), TZ) == "intraday"
    assert warehouse.recent_sessions("NOPE", 5) == []


def test_parse_materialized_through() -> None:
    payload = {
        "data": {
            "assetNodeOrError": {
                "__typename": "AssetNode",
                "assetPartitionStatuses": {
                    "__typename": "TimePartitionStatuses",
                    "ranges": [
                        {"endKey": "2004-03-01", "status": "MATERIALIZED"},
                        {"endKey": "2004-03-09", "status": "FAILED"},
                        {"endKey": "2004-03-05", "status": "MATERIALIZED"},
                    ],
                },
            }
        }
    }
    assert dagster.parse_materialized_through(payload) == date(2004, 3, 5)
    assert dagster.parse_materialized_through({"data": {"assetNodeOrError": {}}}) is None


def test_progress_with_kafka_unreachable_is_a_state_not_an_exception(
    warehouse: Warehouse,
) -> None:
    settings = KafkaSettings.load(bootstrap_servers="127.0.0.1:1")
    found = pipeline_progress(warehouse, settings, 1.0)
    assert found.kafka_error and "KafkaException" in found.kafka_error
    assert found.partitions == []
    assert found.stage("bars_1m").event_time is not None  # the warehouse side still measured
