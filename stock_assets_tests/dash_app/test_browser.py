"""The dashboard in real headless Chromium (Debian chromium + chromedriver, selenium 4) against the
real app, TimescaleDB, Kafka and search engine. Every logged-in test ends with no SEVERE message
in the browser console (the `logged_in` fixture checks)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from bench import harness
from dash_app.app import create_app
from dash_app.services import Services
from dash_app.settings import DEV_PASSWORD, DashSettings
from stock_assets.lib.search import indexing, templates
from stock_assets.lib.settings import DbSettings
from stock_assets_tests.dash_app.conftest import (
    DAILY_LAST_SESSION,
    DAILY_SYMBOL,
    OTHER_SYMBOL,
    REPLAY_SYMBOL,
    YEAR_SYMBOL,
)

pytestmark = pytest.mark.timeout(300)


def wait(driver: webdriver.Chrome, timeout: float = 20) -> WebDriverWait:
    return WebDriverWait(driver, timeout)


def test_pages_require_login(browser: webdriver.Chrome, served: harness.ServedApp) -> None:
    browser.get(f"{served.url}/logout")
    for path in ("/", "/market?symbol=AAPL", "/signals", "/pipeline"):
        browser.get(served.url + path)
        wait(browser).until(ec.presence_of_element_located((By.ID, "login-form")))
        assert "/login" in browser.current_url
    # no Dash endpoint answers before a login
    status = browser.execute_script("return fetch('/_dash-layout').then(r => r.status)")
    assert status == 401
    browser.get_log("browser")  # the deliberate 401 above is the only expected console error


def test_bad_password_is_rejected(
    browser: webdriver.Chrome, served: harness.ServedApp, dash_settings: DashSettings
) -> None:
    browser.get(f"{served.url}/logout")
    harness.login(browser, served.url, dash_settings.username, "not-the-password")
    error = wait(browser).until(ec.presence_of_element_located((By.ID, "login-error")))
    assert "Invalid username or password" in error.text
    browser.get(served.url + "/market")
    assert "/login" in browser.current_url
    browser.get_log("browser")  # the rejected POST answers 401, which Chromium logs


def test_market_page_renders_replayed_candles(logged_in: webdriver.Chrome) -> None:
    state = harness.wait_for_chart(logged_in, REPLAY_SYMBOL)
    meta = state["meta"]
    assert meta["candles"] > 100
    assert state["boxes"] >= meta["candles"]
    assert REPLAY_SYMBOL in state["status"]
    # the signals of the range are drawn as markers carrying their reasons
    names = logged_in.execute_script(
        "return document.querySelector('#market-chart .js-plotly-plot').data.map(t => t.name)"
    )
    assert {"buy signals", "sell signals", "SMA 20", "RSI 14", "MACD"} <= set(names)
    hover = logged_in.execute_script(
        "const d = document.querySelector('#market-chart .js-plotly-plot').data;"
        "return d.find(t => t.name === 'buy signals').hovertext[0]"
    )
    assert "RSI(14) crossed up through 30" in hover
    # the range's alerts: a table under the chart and star markers on it
    wait(logged_in).until(
        lambda d: "rule daily_move_5pct: +5%" in d.find_element(By.ID, "market-alerts").text
    )
    table = logged_in.find_element(By.ID, "market-alerts").text
    assert "aapl_300" in table and "2026-08-03" in table and "MSFT" not in table
    assert "alerts" in names


def test_changing_symbol_and_range_updates_the_chart(logged_in: webdriver.Chrome) -> None:
    first = harness.wait_for_chart(logged_in, REPLAY_SYMBOL)
    logged_in.find_element(By.ID, "market-symbol").click()
    option = wait(logged_in).until(
        ec.element_to_be_clickable(
            (By.XPATH, f"//*[@role='option'][normalize-space()='{OTHER_SYMBOL}']")
        )
    )
    option.click()
    other = harness.wait_for_chart(logged_in, OTHER_SYMBOL, different_from=first)
    assert OTHER_SYMBOL in other["status"]
    # quick range "1D" moves the date pickers to the last session, then the chart follows
    logged_in.find_element(By.XPATH, "//label[normalize-space()='1D']").click()
    one_day = harness.wait_for_chart(logged_in, OTHER_SYMBOL, different_from=other)
    assert one_day["meta"]["bucket"] == "1 min"
    assert 300 <= one_day["meta"]["candles"] <= 390
    start = logged_in.find_element(By.CSS_SELECTOR, "#market-dates").get_attribute("value")
    end = logged_in.find_element(By.CSS_SELECTOR, ".dash-datepicker-end-date").get_attribute(
        "value"
    )
    assert start == end == "2026-08-07"


def test_a_year_of_minute_bars_arrives_bucketed(
    logged_in: webdriver.Chrome, served: harness.ServedApp
) -> None:
    logged_in.get(f"{served.url}/market?symbol={YEAR_SYMBOL}&start=2024-01-01&end=2024-12-31")
    state = harness.wait_for_chart(logged_in, YEAR_SYMBOL)
    assert state["meta"]["bucket"] == "2 h"
    assert 500 < state["meta"]["candles"] <= 5000  # ~98k raw bars never reach the browser


def test_live_mode_follows_live_bars(logged_in: webdriver.Chrome) -> None:
    harness.wait_for_chart(logged_in, REPLAY_SYMBOL)
    logged_in.find_element(By.XPATH, "//label[contains(., 'Live')]").click()
    wait(logged_in).until(lambda d: "live candles" in d.find_element(By.ID, "market-status").text)
    state = harness.wait_for_chart(logged_in, REPLAY_SYMBOL)
    assert state["meta"]["candles"] > 0


@pytest.fixture(scope="module")
def indexed_signals(
    app_services: Services, dash_db: DbSettings, search_prefix: str
) -> Iterator[Elasticsearch]:
    """The module's analytics.signals indexed into the real engine under a private prefix."""
    from datetime import date

    from stock_assets.lib import db

    client: Elasticsearch = app_services.search
    try:
        client.info()
    except Exception as exc:  # the engine is a shared service; say how to start it
        pytest.skip(f"search engine not reachable ({exc}); ./infra/services.sh up search")
    templates.apply_templates(client, search_prefix)
    with db.connect(dash_db) as conn:
        docs = indexing.read_signal_docs(conn, date(2026, 1, 1), date(2026, 12, 31))
    report = indexing.index_docs(client, templates.SIGNALS, search_prefix, docs)
    assert report.failed == 0
    yield client
    client.indices.delete(index=f"{search_prefix}-*", ignore_unavailable=True)
    for dataset in templates.DATASETS:
        client.indices.delete_index_template(
            name=dataset.template_name(search_prefix), ignore=[404]
        )


def test_signals_search_returns_results_from_the_engine(
    logged_in: webdriver.Chrome, served: harness.ServedApp, indexed_signals: Elasticsearch
) -> None:
    logged_in.get(f"{served.url}/signals")
    wait(logged_in).until(
        lambda d: "3 matching signals" in d.find_element(By.ID, "signals-status").text
    )
    box = logged_in.find_element(By.ID, "signals-text")
    box.send_keys("golden cross", Keys.ENTER)
    wait(logged_in).until(
        lambda d: "1 matching signals" in d.find_element(By.ID, "signals-status").text
    )
    table = logged_in.find_element(By.ID, "signals-table").text
    assert OTHER_SYMBOL in table
    assert "golden" in table
    # the facets offer the engine's strategy counts
    logged_in.find_element(By.ID, "signals-strategies").click()
    option = wait(logged_in).until(
        ec.presence_of_element_located(
            (By.XPATH, "//*[@role='option'][contains(., 'macd_cross (1)')]")
        )
    )
    assert option is not None
    logged_in.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)


def test_portfolio_page_shows_equity_positions_and_orders(
    logged_in: webdriver.Chrome, served: harness.ServedApp
) -> None:
    logged_in.get(f"{served.url}/portfolio")
    wait(logged_in).until(
        lambda d: REPLAY_SYMBOL in d.find_element(By.ID, "portfolio-positions").text
    )
    assert "rsi_reversal" in logged_in.find_element(By.ID, "portfolio-orders").text
    traces = logged_in.execute_script(
        "return document.querySelector('#portfolio-equity .js-plotly-plot').data.length"
    )
    assert traces == 2
    backtests = logged_in.find_element(By.ID, "portfolio-backtests").text
    assert "sma_crossover" in backtests and "sharpe" in backtests and "1.25" in backtests
    wait(logged_in).until(lambda d: d.find_element(By.ID, "kill-switch-state").text)
    assert logged_in.find_element(By.ID, "kill-switch-state").text.startswith("Kill switch off")


def test_pipeline_page_reports_event_time_progress_gaps_and_unreachable_dagster(
    logged_in: webdriver.Chrome, served: harness.ServedApp
) -> None:
    logged_in.get(f"{served.url}/pipeline")
    wait(logged_in, 30).until(
        lambda d: "bars_daily" in d.find_element(By.ID, "pipeline-progress").text
    )
    progress = logged_in.find_element(By.ID, "pipeline-progress").text
    assert "lag (producer event time)" in progress  # no live provider: event time
    assert "2026-08-07 20:00:00" in progress  # the newest bar's end, bars_1m's event time
    summary = logged_in.find_element(By.ID, "pipeline-summary").text
    assert "replay stream" in summary and "lags" in summary
    wait(logged_in, 30).until(
        lambda d: "gap offsets" in d.find_element(By.ID, "pipeline-offsets").text
    )
    assert "market.ticks" in logged_in.find_element(By.ID, "pipeline-ledger").text
    wait(logged_in, 30).until(
        lambda d: "Dagster unreachable" in d.find_element(By.ID, "pipeline-dagster-status").text
    )


def test_market_default_view_shows_daily_candles_of_replayed_daily_data(
    logged_in: webdriver.Chrome, served: harness.ServedApp
) -> None:
    logged_in.get(f"{served.url}/market?symbol={DAILY_SYMBOL}")
    state = harness.wait_for_chart(logged_in, DAILY_SYMBOL)
    assert state["meta"]["bucket"] == "1 day"
    assert state["meta"]["candles"] == 120  # the newest 120 sessions that hold data
    end = logged_in.find_element(By.CSS_SELECTOR, ".dash-datepicker-end-date").get_attribute(
        "value"
    )
    assert end == DAILY_LAST_SESSION.isoformat()
    # an explicit resolution still wins: hourly candles of the same sessions
    logged_in.find_element(By.ID, "market-resolution").click()
    wait(logged_in).until(
        ec.element_to_be_clickable((By.XPATH, "//*[@role='option'][normalize-space()='1 h']"))
    ).click()
    hourly = harness.wait_for_chart(logged_in, DAILY_SYMBOL, different_from=state)
    assert hourly["meta"]["bucket"] == "1 h"


def test_a_saved_cookie_is_rejected_after_logout(
    logged_in: webdriver.Chrome, served: harness.ServedApp
) -> None:
    harness.wait_for_chart(logged_in, REPLAY_SYMBOL)
    saved = logged_in.get_cookie("stock_dash_session")
    assert saved is not None
    logged_in.find_element(By.ID, "nav-logout").click()
    wait(logged_in).until(ec.presence_of_element_located((By.ID, "login-form")))
    logged_in.delete_all_cookies()
    logged_in.add_cookie({k: saved[k] for k in ("name", "value", "path")})
    logged_in.get(f"{served.url}/market")
    wait(logged_in).until(ec.presence_of_element_located((By.ID, "login-form")))
    assert "/login" in logged_in.current_url
    status = logged_in.execute_script("return fetch('/_dash-layout').then(r => r.status)")
    assert status == 401
    logged_in.get_log("browser")  # the deliberate 401 above


@pytest.fixture
def lockable(
    dash_settings: DashSettings, app_services: Services, dash_db: DbSettings
) -> Iterator[harness.ServedApp]:
    """A second app with its own user on the same warehouse; its locks are removed afterwards
    (they hold the shared loopback address too)."""
    from stock_assets.lib import db

    settings = dash_settings.model_copy(update={"username": "lockme"})
    with harness.serve(create_app(settings, app_services).server) as served_app:
        yield served_app
    with db.connect(dash_db) as conn:
        conn.execute("DELETE FROM dashboard.login_failures")
        conn.commit()


def test_twenty_wrong_passwords_lock_the_login_with_a_clear_message(
    browser: webdriver.Chrome, lockable: harness.ServedApp
) -> None:
    browser.get(f"{lockable.url}/logout")
    for _ in range(20):
        harness.login(browser, lockable.url, "lockme", "not-the-password")
    error = wait(browser).until(ec.presence_of_element_located((By.ID, "login-error")))
    assert "Too many failed sign-in attempts for this user" in error.text
    assert "try again in" in error.text
    harness.login(browser, lockable.url, "lockme", DEV_PASSWORD)  # right password, still locked
    error = wait(browser).until(ec.presence_of_element_located((By.ID, "login-error")))
    assert "Sign-in is locked" in error.text
    assert "/login" in browser.current_url
    browser.get_log("browser")  # the refused POSTs answer 401/429, which Chromium logs
