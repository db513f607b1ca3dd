"""The Forecast page: forecasts with intervals over the price, the out-of-sample evaluation table,
and the backtest of the forecast-driven strategy against its baselines and buy-and-hold.

Self-contained: `layout()` builds the components, `register(app, warehouse)` the callbacks; its
queries (bound parameters) go through `warehouse.connection()`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date, timedelta
from typing import Any, Protocol

import numpy as np
import plotly.graph_objects as go
import polars as pl
import psycopg
from dash import Input, Output, dash_table, dcc, html

from dash_app.components import CARD
from stock_assets.lib.forecast import evaluate, models
from stock_assets.lib.trading.backtest import BacktestConfig

PATH = "/forecast"
TITLE = "Forecast"
STRATEGY_MODELS = (models.MODEL, models.AR1, models.ETS, models.HIST_MEAN)
TABLE_COLUMNS = (
    "symbol",
    "model",
    "n",
    "rmse_vs_random_walk",
    "mae",
    "rmse",
    "hit_rate",
    "p_value",
    "coverage",
    "strategy_return",
    "buy_hold_return",
    "trades",
    "model_version",
)


class _Warehouse(Protocol):
    def connection(self) -> AbstractContextManager[psycopg.Connection]: ...


def _frame(conn: psycopg.Connection, query: str, params: tuple, schema: dict) -> pl.DataFrame:
    rows = conn.execute(query.encode(), params).fetchall()
    return pl.DataFrame(rows, schema=schema, orient="row")


def load_symbols(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute("SELECT DISTINCT symbol FROM forecast.evaluation WHERE symbol <> '*'")
    return sorted(r[0] for r in rows.fetchall())


def load_page_data(
    conn: psycopg.Connection, symbol: str, horizon: int, days: int | None = None
) -> dict[str, pl.DataFrame]:
    """bars, forecasts (walk-forward + live, every model) and the evaluation rows of one symbol."""
    last = conn.execute(
        "SELECT max(session_date) FROM market.bars_daily WHERE symbol = %s", (symbol,)
    ).fetchone()
    end = last[0] if last and last[0] else date.today()
    start = end - timedelta(days=days) if days else date(1900, 1, 1)
    bars = _frame(
        conn,
        "SELECT session_date, open, high, low, close FROM market.bars_daily"
        " WHERE symbol = %s AND session_date >= %s ORDER BY session_date",
        (symbol, start),
        {
            "session_date": pl.Date,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
        },
    )
    preds = _frame(
        conn,
        "SELECT session_date, target_date, model, kind, model_version, pred_return, lower_return,"
        " upper_return FROM forecast.predictions WHERE symbol = %s AND horizon = %s"
        " AND session_date >= %s ORDER BY session_date",
        (symbol, horizon, start),
        {
            "session_date": pl.Date,
            "target_date": pl.Date,
            "model": pl.String,
            "kind": pl.String,
            "model_version": pl.String,
            "pred_return": pl.Float64,
            "lower_return": pl.Float64,
            "upper_return": pl.Float64,
        },
    )
    table = _frame(
        conn,
        "SELECT symbol, model, n, rmse_vs_random_walk, mae, rmse, hit_rate, p_value, coverage,"
        " strategy_return, buy_hold_return, trades, model_version FROM forecast.evaluation"
        " WHERE horizon = %s AND symbol IN (%s, '*') ORDER BY symbol DESC, rmse",
        (horizon, symbol),
        {
            "symbol": pl.String,
            "model": pl.String,
            "n": pl.Int64,
            "rmse_vs_random_walk": pl.Float64,
            "mae": pl.Float64,
            "rmse": pl.Float64,
            "hit_rate": pl.Float64,
            "p_value": pl.Float64,
            "coverage": pl.Float64,
            "strategy_return": pl.Float64,
            "buy_hold_return": pl.Float64,
            "trades": pl.Int64,
            "model_version": pl.String,
        },
    )
    return {"bars": bars, "predictions": preds, "evaluation": table}


def _empty(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(xaxis_visible=False, yaxis_visible=False, height=360)
    return fig


def forecast_prices(bars: pl.DataFrame, preds: pl.DataFrame) -> pl.DataFrame:
    """The model's forecasts as prices at their target date: issue close x exp(return)."""
    lgbm = preds.filter(pl.col("model") == models.MODEL)
    return (
        lgbm.join(bars.select("session_date", "close"), on="session_date", how="inner")
        .select(
            "target_date",
            "kind",
            "model_version",
            (pl.col("close") * pl.col("pred_return").exp()).alias("forecast"),
            (pl.col("close") * pl.col("lower_return").exp()).alias("lower"),
            (pl.col("close") * pl.col("upper_return").exp()).alias("upper"),
        )
        .sort("target_date")
    )


def price_figure(bars: pl.DataFrame, preds: pl.DataFrame, symbol: str, horizon: int) -> go.Figure:
    """Close prices with the model's forecasts and their intervals at the target dates."""
    if bars.is_empty():
        return _empty(f"no daily bars for {symbol}")
    fig = go.Figure(
        go.Scatter(x=bars["session_date"], y=bars["close"], name="close", line={"color": "#222"})
    )
    fc = forecast_prices(bars, preds)
    for kind, color in (("walk_forward", "#1f77b4"), ("live", "#d62728")):
        part = fc.filter(pl.col("kind") == kind)
        if part.is_empty():
            continue
        x = part["target_date"].to_list()
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=part["upper"].to_list() + part["lower"].to_list()[::-1],
                fill="toself",
                fillcolor=color,
                opacity=0.15,
                line={"width": 0},
                name=f"{kind} {int(models.INTERVAL * 100)} % interval",
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(x=x, y=part["forecast"], name=f"{kind} forecast", line={"color": color})
        )
    fig.update_layout(
        title=f"{symbol}: {horizon}-session forecasts (price at target date)",
        height=420,
        margin={"l": 40, "r": 10, "t": 40, "b": 30},
    )
    return fig


def strategy_curves(
    bars: pl.DataFrame, preds: pl.DataFrame, config: BacktestConfig | None = None
) -> pl.DataFrame:
    """Equity of each model's forecast strategy and buy-and-hold over the walk-forward sessions
    every model covers (the project's backtester, same costs as the trading bot)."""
    config = config or BacktestConfig(commission=0.0005)
    wide = (
        preds.filter(pl.col("kind") == "walk_forward")
        .pivot(on="model", index="session_date", values="pred_return")
        .sort("session_date")
    )
    present = [m for m in STRATEGY_MODELS if m in wide.columns]
    if not present:
        return pl.DataFrame()
    rows = wide.drop_nulls(subset=present).join(bars, on="session_date", how="inner")
    if rows.height < 2:
        return pl.DataFrame()
    curves = {"session_date": rows["session_date"]}
    for model in present:
        result = evaluate.strategy_result(rows, rows[model].to_numpy(), config)
        curves[model] = pl.Series(result.equity / config.initial_cash)
    held = evaluate.strategy_result(rows, np.ones(rows.height), config)
    curves[evaluate.BUY_AND_HOLD] = pl.Series(held.equity / config.initial_cash)
    return pl.DataFrame(curves)


def strategy_figure(curves: pl.DataFrame, symbol: str) -> go.Figure:
    if curves.is_empty():
        return _empty(f"no walk-forward forecasts for {symbol}")
    fig = go.Figure()
    for name in curves.columns[1:]:
        fig.add_trace(go.Scatter(x=curves["session_date"], y=curves[name], name=name))
    fig.update_layout(
        title=f"{symbol}: forecast-driven strategy vs buy-and-hold (growth of 1, after costs)",
        height=380,
        margin={"l": 40, "r": 10, "t": 40, "b": 30},
    )
    return fig


def table_rows(evaluation: pl.DataFrame) -> list[dict[str, Any]]:
    """Evaluation rows for the DataTable (floats rounded, '*' shown as 'all symbols')."""
    out = []
    for row in evaluation.iter_rows(named=True):
        rec: dict[str, Any] = {}
        for k, v in row.items():
            rec[k] = round(v, 5) if isinstance(v, float) else v
        rec["symbol"] = "all symbols" if row["symbol"] == evaluate.ALL_SYMBOLS else row["symbol"]
        out.append(rec)
    return out


def layout() -> html.Div:
    return html.Div(
        [
            html.H2("Forecast"),
            html.Div(
                [
                    html.Label("Symbol"),
                    dcc.Dropdown(id="forecast-symbol", clearable=False, style={"width": "160px"}),
                    html.Label("Horizon"),
                    dcc.Dropdown(
                        id="forecast-horizon",
                        options=[
                            {"label": "1 session", "value": 1},
                            {"label": "5 sessions", "value": 5},
                        ],
                        value=1,
                        clearable=False,
                        style={"width": "160px"},
                    ),
                    html.Span(id="forecast-status", style={"color": "#666"}),
                ],
                style={**CARD, "display": "flex", "gap": "12px", "alignItems": "center"},
            ),
            html.Div(dcc.Graph(id="forecast-price"), style=CARD),
            html.Div(
                [
                    html.H4("Out-of-sample evaluation (walk-forward)"),
                    dash_table.DataTable(  # type: ignore[attr-defined]
                        id="forecast-evaluation",
                        columns=[{"name": c, "id": c} for c in TABLE_COLUMNS],
                        style_table={"overflowX": "auto"},
                        style_cell={"fontSize": "13px", "padding": "4px 8px"},
                        page_size=12,
                    ),
                ],
                style=CARD,
            ),
            html.Div(dcc.Graph(id="forecast-strategy"), style=CARD),
        ]
    )


def register(app: Any, warehouse: _Warehouse) -> None:
    @app.callback(
        Output("forecast-symbol", "options"),
        Output("forecast-symbol", "value"),
        Input("forecast-horizon", "value"),
    )
    def _symbols(_: int) -> tuple[list[str], str | None]:
        with warehouse.connection() as conn:
            symbols = load_symbols(conn)
        return symbols, (symbols[0] if symbols else None)

    @app.callback(
        Output("forecast-price", "figure"),
        Output("forecast-evaluation", "data"),
        Output("forecast-strategy", "figure"),
        Output("forecast-status", "children"),
        Input("forecast-symbol", "value"),
        Input("forecast-horizon", "value"),
    )
    def _page(symbol: str | None, horizon: int) -> tuple[go.Figure, list, go.Figure, str]:
        if not symbol:
            msg = "no forecasts yet: materialize forecast/evaluation"
            return _empty(msg), [], _empty(msg), msg
        with warehouse.connection() as conn:
            data = load_page_data(conn, symbol, int(horizon))
        preds = data["predictions"]
        curves = strategy_curves(data["bars"], preds)
        status = f"{preds.filter(pl.col('kind') == 'live').height} live forecast(s)"
        return (
            price_figure(data["bars"], preds, symbol, int(horizon)),
            table_rows(data["evaluation"]),
            strategy_figure(curves, symbol),
            status,
        )
