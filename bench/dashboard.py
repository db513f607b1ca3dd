"""Dashboard: time to the first complete market chart for a year of 1-minute bars vs one day.

One symbol, one NYSE year of GBM 1-minute bars (~98k, XNYS calendar) COPYed into a bench-private
database. The real app (login, router, market callback, server-side time_bucket) is served as in
production — `python -m dash_app`, gunicorn with 2 workers — on loopback and driven by real
headless Chromium (Debian chromium + chromedriver). One round =
navigate to /market?symbol=..&start=..&end=.. and wait until plotly has drawn every candle of the
figure Dash received. Rounds alternate day/year after one warm-up of each; the medians are
compared. Targets: year_s <= 1.5 and ratio = year_s / day_s <= 2. Writes
bench/results/dashboard.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from bench import harness
from dash_app.data.warehouse import Warehouse
from dash_app.settings import DEV_PASSWORD, DashSettings
from stock_assets.lib import db, migrations
from stock_assets.lib.settings import DbSettings

RESULTS = Path(__file__).resolve().parent / "results" / "dashboard.json"
SYMBOL = "BENCH"
YEAR = (date(2024, 1, 1), date(2024, 12, 31))
DAY = (date(2024, 12, 18), date(2024, 12, 18))
TARGET_YEAR_S, TARGET_RATIO = 1.5, 2.0


def load_chart(driver: Any, base: str, span: tuple[date, date]) -> tuple[float, dict[str, Any]]:
    url = f"{base}/market?symbol={SYMBOL}&start={span[0]}&end={span[1]}"
    driver.get("about:blank")
    t0 = time.perf_counter()
    driver.get(url)
    try:
        state = harness.wait_for_chart(driver, SYMBOL, timeout_s=60, poll_s=0.005)
    except Exception as exc:
        raise RuntimeError(f"no complete chart at {url}: {harness.chart_state(driver)}") from exc
    return time.perf_counter() - t0, state


def run(rounds: int) -> dict[str, Any]:
    base_settings = DbSettings.load()
    name = f"stocks_bench_dash_{uuid.uuid4().hex[:8]}"
    db_settings = db.create_database(base_settings, name)
    try:
        with db.connect(db_settings) as conn:
            migrations.apply(conn)
            bars = harness.gbm_minute_bars(SYMBOL, *YEAR)
            t_copy, _ = harness.timed(harness.copy_bars, conn, bars)
            conn.execute("ANALYZE market.bars_1m")
            conn.commit()
        print(f"loaded {bars.height} 1-minute bars of {SYMBOL} in {t_copy:.2f}s (COPY)")
        settings = DashSettings.load()
        warehouse = Warehouse(db_settings, exchange_tz=settings.display_tz)

        # the server side alone, for the record
        from dash_app.ranges import day_bounds

        server_s = {}
        for label, span in (("year", YEAR), ("day", DAY)):
            lo, hi = day_bounds(*span, settings.display_tz)
            warehouse.bars(SYMBOL, lo, hi, max_candles=settings.max_candles)
            t, got = harness.timed(warehouse.bars, SYMBOL, lo, hi, max_candles=settings.max_candles)
            server_s[label] = {
                "query_s": round(t, 4),
                "candles": got.frame.height,
                "bucket": got.label,
            }

        driver = harness.make_driver()
        try:
            env = {"STOCK_DB_DBNAME": name, "STOCK_DASH_WORKERS": "2"}
            with harness.serve_dashboard(env) as served:
                harness.login(driver, served.url, settings.username, DEV_PASSWORD)
                for span in (DAY, YEAR):  # warm-up: browser cache, Python imports, pool
                    load_chart(driver, served.url, span)
                times: dict[str, list[float]] = {"day": [], "year": []}
                states: dict[str, dict[str, Any]] = {}
                for _ in range(rounds):
                    for label, span in (("day", DAY), ("year", YEAR)):
                        seconds, state = load_chart(driver, served.url, span)
                        times[label].append(seconds)
                        states[label] = state
                errors = harness.severe_console_errors(driver)
        finally:
            driver.quit()
            warehouse.close()
    finally:
        db.drop_database(base_settings, name)

    year_s, day_s = statistics.median(times["year"]), statistics.median(times["day"])
    return {
        "benchmark": "dashboard: first complete market chart, year vs day of 1-minute bars",
        "symbol": SYMBOL,
        "bars_in_year": bars.height,
        "year_range": [str(d) for d in YEAR],
        "day_range": [str(d) for d in DAY],
        "rounds": rounds,
        "year_s": round(year_s, 4),
        "day_s": round(day_s, 4),
        "ratio": round(year_s / day_s, 3),
        "targets": {"year_s_max": TARGET_YEAR_S, "ratio_max": TARGET_RATIO},
        "meets_targets": year_s <= TARGET_YEAR_S and year_s / day_s <= TARGET_RATIO,
        "year_runs_s": [round(t, 4) for t in times["year"]],
        "day_runs_s": [round(t, 4) for t in times["day"]],
        "charts": {k: v["meta"] for k, v in states.items()},
        "server": server_s,
        "browser_console_errors": [e["message"] for e in errors],
        "browser": "Debian chromium (headless) via selenium + /usr/bin/chromedriver",
        "web_server": "gunicorn (python -m dash_app), 2 workers x 4 threads",
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    result = run(args.rounds)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("year_s", "day_s", "ratio", "meets_targets")}))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
