"""The Forecast page's data and figure functions against a real (private) warehouse holding a
walk-forward evaluation of real bars, written by the forecast library's own store functions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import dash
import numpy as np
import polars as pl
import psycopg
import pytest

from dash_app.pages import forecast as forecast_page
from stock_assets.lib import db, indicators
from stock_assets.lib.forecast import evaluate, models, store
from stock_assets.lib.forecast.features import build_features
from stock_assets.lib.settings import DbSettings
from stock_assets.lib.trading.backtest import BacktestConfig
from stock_assets_tests.conftest import private_database
from stock_assets_tests.lib.trading.data import insert_daily_bars, real_daily_bars

SYMBOL = "IBM"
CFG = evaluate.WalkForwardConfig(
    horizons=(1,),
    test_size=126,
    min_train=252,
    spec=models.ModelSpec(n_estimators=20, min_child_samples=50),
)


@pytest.fixture(scope="module")
def page_db(base_db_settings: DbSettings) -> Iterator[tuple[DbSettings, pl.DataFrame]]:
    bars = real_daily_bars().filter(
        (pl.col("symbol") == SYMBOL)
        & pl.col("session_date").is_between(date(2005, 1, 1), date(2008, 12, 31))
    )
    feats = build_features(bars, indicators.compute_indicators(bars), CFG.horizons)
    preds = evaluate.walk_forward_predictions(feats, 1, CFG)
    table = evaluate.metrics(preds, bars)
    with private_database(base_db_settings) as settings:
        with db.connect(settings) as conn, conn.transaction():
            insert_daily_bars(conn, bars)
            store.replace_walk_forward(conn, store.long_predictions(preds, "walk_forward", {}))
            store.replace_evaluation(conn, table, {1: "forecast-lgbm-h1/1"})
        yield settings, table


@pytest.fixture
def conn(page_db: tuple[DbSettings, pl.DataFrame]) -> Iterator[psycopg.Connection]:
    with db.connect(page_db[0]) as c:
        yield c


def test_page_data_and_table(conn: psycopg.Connection, page_db) -> None:
    assert forecast_page.load_symbols(conn) == [SYMBOL]
    data = forecast_page.load_page_data(conn, SYMBOL, 1)
    assert set(data["predictions"]["model"]) == {"lgbm", "random_walk", "hist_mean", "ar1", "ets"}
    rows = forecast_page.table_rows(data["evaluation"])
    assert {r["symbol"] for r in rows} == {SYMBOL, "all symbols"} and len(rows) == 10
    lgbm = next(r for r in rows if r["symbol"] == SYMBOL and r["model"] == "lgbm")
    expected = page_db[1].filter((pl.col("symbol") == SYMBOL) & (pl.col("model") == "lgbm"))
    assert lgbm["rmse"] == round(expected["rmse"][0], 5)
    assert lgbm["model_version"] == "forecast-lgbm-h1/1"
    # the horizon and symbol are bound parameters: another horizon has nothing
    assert forecast_page.load_page_data(conn, SYMBOL, 5)["predictions"].is_empty()


def test_price_figure_draws_forecasts_with_intervals(conn: psycopg.Connection) -> None:
    data = forecast_page.load_page_data(conn, SYMBOL, 1)
    prices = forecast_page.forecast_prices(data["bars"], data["predictions"])
    assert (prices["lower"] <= prices["forecast"]).all() and (
        prices["forecast"] <= prices["upper"]
    ).all()
    # forecast price = issue close x exp(forecast return), spot-checked on one row
    p = data["predictions"].filter(pl.col("model") == "lgbm").row(0, named=True)
    close = data["bars"].filter(pl.col("session_date") == p["session_date"])["close"][0]
    first = prices.filter(pl.col("target_date") == p["target_date"])
    assert first["forecast"][0] == pytest.approx(close * np.exp(p["pred_return"]))
    fig = forecast_page.price_figure(data["bars"], data["predictions"], SYMBOL, 1)
    names = [t.name for t in fig.data]
    assert names == ["close", "walk_forward 80 % interval", "walk_forward forecast"]


def test_strategy_curves_match_the_evaluation(conn: psycopg.Connection, page_db) -> None:
    data = forecast_page.load_page_data(conn, SYMBOL, 1)
    curves = forecast_page.strategy_curves(
        data["bars"], data["predictions"], BacktestConfig(commission=0.0005)
    )
    assert curves.columns == ["session_date", "lgbm", "ar1", "ets", "hist_mean", "buy_and_hold"]
    table = page_db[1].filter(pl.col("symbol") == SYMBOL)
    lgbm = table.filter(pl.col("model") == "lgbm").row(0, named=True)
    # the page's equity curves end where the evaluation's backtests ended
    assert curves["lgbm"][-1] - 1 == pytest.approx(lgbm["strategy_return"])
    assert curves["buy_and_hold"][-1] - 1 == pytest.approx(lgbm["buy_hold_return"])
    fig = forecast_page.strategy_figure(curves, SYMBOL)
    assert [t.name for t in fig.data] == curves.columns[1:]


def test_layout_and_callbacks_register(page_db) -> None:
    class Warehouse:
        def connection(self):
            return db.connect(page_db[0])

    app = dash.Dash(__name__)
    app.layout = forecast_page.layout()
    forecast_page.register(app, Warehouse())
    outputs = set(app.callback_map)
    assert any("forecast-price.figure" in k for k in outputs)
    assert any("forecast-symbol.options" in k for k in outputs)


def test_page_in_the_browser(page_db) -> None:  # type: ignore[no-untyped-def]
    """The page served for real, rendered by headless Chromium: the symbol is picked, the charts
    draw their traces and the evaluation table fills."""
    from selenium.webdriver.support.ui import WebDriverWait

    from bench import harness
    from dash_app.data.warehouse import Warehouse

    warehouse = Warehouse(page_db[0])
    app = dash.Dash(__name__)
    app.layout = forecast_page.layout()
    forecast_page.register(app, warehouse)
    driver = harness.make_driver()
    try:
        with harness.serve(app.server) as served:
            driver.get(served.url)
            traces_js = (
                "const g = document.querySelector('#%s .js-plotly-plot');"
                " return g && g.data ? g.data.map(t => t.name) : null;"
            )

            def drawn(d):  # type: ignore[no-untyped-def]
                price = d.execute_script(traces_js % "forecast-price")
                strategy = d.execute_script(traces_js % "forecast-strategy")
                cells = d.find_elements("css selector", "#forecast-evaluation td")
                return (price, strategy, len(cells)) if price and strategy and cells else False

            price, strategy, cells = WebDriverWait(driver, 60).until(drawn)
            assert price == ["close", "walk_forward 80 % interval", "walk_forward forecast"]
            assert strategy == ["lgbm", "ar1", "ets", "hist_mean", "buy_and_hold"]
            assert cells >= 10 * 4  # 10 evaluation rows
            assert not harness.severe_console_errors(driver)
    finally:
        driver.quit()
        warehouse.close()
