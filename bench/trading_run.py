"""The trading run (backtests, paper portfolio, orders) end to end, as a run worker executes it.

`dagster job execute` in a fresh process — what DefaultRunLauncher's run worker does after its
launch: start Python, load the code location, open the instance (a private DAGSTER_HOME with
the project's run settings and SQLite storage), execute — over a private warehouse holding the
bundled real history (bokeh_sampledata daily bars of AAPL, FB, GOOG, IBM, MSFT, 2000-2013, and
the signals the platform computes from them for config/trading.json):

- `history`: the first run, trading tables empty (13 years to backtest and to paper-trade);
- `live`: the next run after one more session's bars and signals arrive;
- `idle`: a run that finds nothing new.

Measured path: the `trading` job (in_process executor; launched by `trading_after_signals`).
Baseline: the same three assets on Dagster's default multiprocess executor, which is how the
former `trading_automation` (an AutomationConditionSensorDefinition) ran them: its runs use the
implicit asset job, whose executor is the Definitions' default — one subprocess per step, each
loading the code location again. Each variant gets a fresh database per round. Also printed:
each step's own duration (Dagster's "Finished execution of step ... in N ms").

Prints the ratios; writes bench/results/trading_run.json (`ratio` = baseline / measured, the
live run).
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from bokeh_sampledata import stocks

from bench.runs import instance_home
from stock_assets.defs import trading
from stock_assets.defs.resources import WarehouseResource
from stock_assets.defs.trading.assets import backtests, paper_portfolio
from stock_assets.defs.trading.orders import orders
from stock_assets.defs.trading.resources import TradingConfigResource
from stock_assets.lib import db, frames, migrations, signals, tables
from stock_assets.lib.settings import DbSettings
from stock_assets.lib.trading.config import TradingSettings

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "trading_run.json"
ROUNDS = 2
SYMBOLS = ("AAPL", "FB", "GOOG", "IBM", "MSFT")
STEP_DONE = re.compile(r'Finished execution of step "(\w+)" in ([\d.]+)(ms|s)')

# The baseline: the trading assets as the former automation sensor ran them (default executor).
baseline_defs = dg.Definitions.merge(
    trading.defs,
    dg.Definitions(
        jobs=[
            dg.define_asset_job(
                "trading_multiprocess",
                selection=[backtests, paper_portfolio, orders],
                executor_def=dg.multiprocess_executor,
            )
        ],
        resources={"warehouse": WarehouseResource(), "trading_config": TradingConfigResource()},
    ),
)


def daily_bars() -> pl.DataFrame:
    """Real daily bars (adjusted with adj_close/close) of the bundled history."""
    out = []
    for symbol in SYMBOLS:
        raw = pl.DataFrame(getattr(stocks, symbol))
        factor = pl.col("adj_close") / pl.col("close")
        out.append(
            raw.select(
                pl.lit(symbol).alias("symbol"),
                pl.col("date").str.to_date().alias("session_date"),
                *(pl.col(c) * factor for c in ("open", "high", "low", "close")),
                (pl.col("volume") / factor).alias("volume"),
                pl.lit(None, dtype=pl.Float64).alias("vwap"),
                pl.lit(None, dtype=pl.Float64).alias("return_1d"),
                pl.lit(None, dtype=pl.Float64).alias("realized_vol"),
                pl.lit(1, dtype=pl.Int64).alias("trade_count"),
            )
        )
    return pl.concat(out).sort("symbol", "session_date")


def deliver(settings: DbSettings, bars: pl.DataFrame, sigs: pl.DataFrame, days: Any) -> None:
    spec = tables.BARS_DAILY
    window = pl.col("session_date").is_between(*days)
    with db.connect(settings) as conn, conn.transaction():
        frames.copy_frame(conn, spec.name, spec.conform(bars.filter(window)))
        frames.copy_frame(conn, tables.SIGNALS.name, sigs.filter(window))


def execute(argv: list[str], env: dict[str, str]) -> tuple[float, dict[str, float]]:
    """Wall time of one `dagster job execute`, and each step's own duration (s)."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed: {done.stderr[-3000:]}")
    steps = {
        name: float(value) / (1000 if unit == "ms" else 1)
        for name, value, unit in STEP_DONE.findall(done.stdout + done.stderr)
    }
    return elapsed, steps


def one_round(
    base: DbSettings, variant: str, bars: pl.DataFrame, sigs: pl.DataFrame
) -> dict[str, Any]:
    dagster = str(Path(sys.executable).with_name("dagster"))
    execute_job = [dagster, "job", "execute"]
    argv = {
        "measured": [*execute_job, "-m", "stock_assets.definitions", "-a", "defs", "-j", "trading"],
        "baseline": [
            *execute_job,
            "-f",
            __file__,
            "-a",
            "baseline_defs",
            "-j",
            "trading_multiprocess",
        ],
    }[variant]
    days = sorted(bars["session_date"].unique().to_list())
    first, before_last, last = days[0], days[-2], days[-1]
    name = f"bench_trading_{uuid.uuid4().hex[:8]}"
    settings = db.create_database(base, name)
    out: dict[str, Any] = {}
    try:
        with db.connect(settings) as conn:
            migrations.apply(conn)
        deliver(settings, bars, sigs, (first, before_last))
        with tempfile.TemporaryDirectory(prefix="bench-trading-") as tmp:
            env = os.environ | {
                "DAGSTER_HOME": str(instance_home(Path(tmp))),
                "STOCK_DB_DBNAME": name,
                "PYTHONWARNINGS": "ignore",
            }
            out["history"] = execute(argv, env)
            deliver(settings, bars, sigs, (last, last))
            out["live"] = execute(argv, env)
            out["idle"] = execute(argv, env)
        with db.connect(settings) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM trading.backtests),"
                " (SELECT count(*) FROM trading.equity),"
                " (SELECT max((ts AT TIME ZONE 'America/New_York')::date) FROM trading.equity)"
            ).fetchone()
        assert row is not None and row[2] == last, row
        out["rows"] = {"backtests": row[0], "equity": row[1], "last_session": str(row[2])}
    finally:
        db.drop_database(base, name)
    return out


def main() -> None:
    base = DbSettings.load()
    bars = daily_bars()
    book = TradingSettings.load().book()
    sigs = signals.generate_signals(bars.select("symbol", "session_date", "close"), book)
    rounds: dict[str, list[dict[str, Any]]] = {"measured": [], "baseline": []}
    loads = [os.getloadavg()[0]]
    for _ in range(ROUNDS):
        for variant in rounds:
            rounds[variant].append(one_round(base, variant, bars, sigs))
            loads.append(os.getloadavg()[0])

    def med(variant: str, phase: str) -> float:
        return statistics.median(r[phase][0] for r in rounds[variant])

    def steps(variant: str, phase: str) -> dict[str, float]:
        names = rounds[variant][0][phase][1]
        return {
            n: round(statistics.median(r[phase][1].get(n, 0.0) for r in rounds[variant]), 3)
            for n in names
        }

    phases = ("history", "live", "idle")
    days = sorted(bars["session_date"].unique().to_list())
    result: dict[str, Any] = {
        "ratio": round(med("baseline", "live") / med("measured", "live"), 3),
        **{f"{p}_run_s": round(med("measured", p), 3) for p in phases},
        **{f"{p}_run_baseline_s": round(med("baseline", p), 3) for p in phases},
        "steps_s": {v: {p: steps(v, p) for p in phases} for v in rounds},
        "rows": rounds["measured"][0]["rows"],
        "history": f"{days[0]}..{days[-1]}",
        "book_entries": len(book),
        "raw_s": {v: {p: [r[p][0] for r in rs] for p in phases} for v, rs in rounds.items()},
        "rounds": ROUNDS,
        "load_average_1m": {"min": min(loads), "max": max(loads), "samples": loads},
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "dagster": dg.__version__,
        "measured_on": date.today().isoformat(),
    }
    for p in phases:
        print(
            f"{p:8s} run: trading job (in process) {result[f'{p}_run_s']:.1f} s vs former"
            f" automation run (multiprocess) {result[f'{p}_run_baseline_s']:.1f} s;"
            f" steps {result['steps_s']['measured'][p]}"
        )
    print(f"ratio (live run, baseline / measured) {result['ratio']}; load average {loads}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
