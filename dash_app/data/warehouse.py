"""The warehouse (TimescaleDB) for the dashboard: read-only queries through a psycopg 3 pool.
Bound parameters only; identifiers come from fixed whitelists.

Bars are bucketed by the *server*: `pick_bucket` chooses the smallest bucket that keeps the visible
range under `max_candles` calendar buckets, and `time_bucket` aggregates in SQL, so a year of
1-minute bars arrives as ~1k two-hour candles, never as 100k raw rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from stock_assets.lib import indicators, signals, tables
from stock_assets.lib.calendar import TIMEZONE
from stock_assets.lib.settings import DbSettings

STATEMENT_TIMEOUT_MS = 15_000
READ_ONLY_OPTIONS = (
    f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c default_transaction_read_only=on"
)
BUCKETS: tuple[timedelta, ...] = tuple(
    timedelta(minutes=m)
    for m in (1, 2, 5, 10, 15, 30, 60, 120, 240, 24 * 60, 7 * 24 * 60, 30 * 24 * 60)
)
# Intraday buckets start at the session open (09:30 exchange time), so every candle of a 2-hour
# bucket lies inside the session; daily/weekly buckets start at exchange-local midnight/Monday.
SESSION_ORIGIN = "2000-01-03 09:30:00"
BAR_TABLES = {"bars_1m": "market.bars_1m", "live_bars_1m": "market.live_bars_1m"}
# Column names and types come from the table specs (stock_assets/lib/tables.py); a name that is
# not a column of its table fails at import.
BAR_SCHEMA = tables.BARS_1M.schema(["ts", "open", "high", "low", "close", "volume", "vwap"]) | {
    "bars": pl.Int64  # candles aggregated into the bucket
}
BAR_COLUMNS = tuple(BAR_SCHEMA)
# The chart's overlays and panes: every stored indicator but ATR and OBV.
INDICATOR_COLUMNS = tuple(c for c in indicators.INDICATOR_COLUMNS if c not in ("atr_14", "obv"))
INDICATOR_SCHEMA = tables.INDICATORS.schema(["session_date", "close", *INDICATOR_COLUMNS])
SIGNAL_SCHEMA = {k: v for k, v in signals.SIGNAL_SCHEMA.items() if k != "symbol"}
ALERT_SCHEMA = tables.ALERTS.schema(
    ["session_date", "symbol", "rule", "kind", "direction", "value", "message"]
)
EQUITY_SCHEMA = tables.EQUITY.schema(["ts", "cash", "positions_value", "equity"])
# trading.backtests (migration 0006): what the portfolio page shows per strategy x symbol
BACKTEST_COLUMNS = (
    "strategy",
    "symbol",
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "trades",
    "win_rate",
    "first_session",
    "last_session",
    "run_at",
)
tables.BACKTESTS.schema(BACKTEST_COLUMNS)  # every name is a column


def _columns(names: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, names))


def pick_bucket(
    start: datetime, end: datetime, max_candles: int, min_bucket: timedelta = BUCKETS[0]
) -> timedelta:
    """The smallest bucket in BUCKETS, at least `min_bucket`, that splits [start, end) into at
    most `max_candles`."""
    span = max(end - start, timedelta(minutes=1))
    for bucket in BUCKETS:
        if bucket >= min_bucket and math.ceil(span / bucket) <= max_candles:
            return bucket
    return BUCKETS[-1]


def bucket_label(bucket: timedelta) -> str:
    minutes = int(bucket.total_seconds() // 60)
    for unit, size in (("month", 30 * 1440), ("week", 7 * 1440), ("day", 1440), ("h", 60)):
        if minutes >= size and minutes % size == 0:
            n = minutes // size
            return f"{n} {unit}" + ("s" if n > 1 and unit != "h" else "")
    return f"{minutes} min"


@dataclass(frozen=True)
class Bars:
    """Bars of one symbol over [start, end), bucketed by `bucket` (1 minute = raw rows)."""

    symbol: str
    start: datetime
    end: datetime
    bucket: timedelta
    frame: pl.DataFrame  # BAR_COLUMNS; ts = bucket start, UTC

    @property
    def label(self) -> str:
        return bucket_label(self.bucket)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _frame(rows: Sequence[Sequence[Any]], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=schema, orient="row")


class Warehouse:
    """Read-only queries against the warehouse through a small connection pool."""

    def __init__(
        self, settings: DbSettings, *, exchange_tz: str = TIMEZONE, open_pool: bool = True
    ) -> None:
        self.settings = settings
        self.exchange_tz = exchange_tz
        conninfo = make_conninfo(
            settings.conninfo(),
            application_name="stock-dashboard",
            options=READ_ONLY_OPTIONS,
        )
        self.pool = ConnectionPool(
            conninfo,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            kwargs={"autocommit": True},
            open=open_pool,
            name="dashboard",
        )

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with self.pool.connection(timeout=10) as conn:
            yield conn

    def _rows(
        self, query: sql.Composable | str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list:
        with self.connection() as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    # --- market -----------------------------------------------------------------------------

    def symbols(self) -> list[str]:
        """Distinct symbols of market.bars_1m by a skip scan over the (symbol, ts) index."""
        rows = self._rows(
            "WITH RECURSIVE s(symbol) AS ("
            "  (SELECT symbol FROM market.bars_1m ORDER BY symbol LIMIT 1)"
            "  UNION ALL"
            "  SELECT (SELECT b.symbol FROM market.bars_1m b WHERE b.symbol > s.symbol"
            "          ORDER BY b.symbol LIMIT 1) FROM s WHERE s.symbol IS NOT NULL"
            ") SELECT symbol FROM s WHERE symbol IS NOT NULL"
        )
        return [r[0] for r in rows]

    def bar_range(self, symbol: str, table: str = "bars_1m") -> tuple[datetime, datetime] | None:
        """(first, last) bar start of `symbol`, or None without bars."""
        query = sql.SQL(
            "SELECT (SELECT ts FROM {t} WHERE symbol = %(s)s ORDER BY ts LIMIT 1),"
            "       (SELECT ts FROM {t} WHERE symbol = %(s)s ORDER BY ts DESC LIMIT 1)"
        ).format(t=_table(table))
        first, last = self._rows(query, {"s": symbol})[0]
        return None if first is None else (first, last)

    def bars(
        self,
        symbol: str,
        start: datetime,
        end: datetime,
        *,
        max_candles: int = 5000,
        table: str = "bars_1m",
        min_bucket: timedelta = BUCKETS[0],
    ) -> Bars:
        """OHLCV of `symbol` in [start, end), bucketed in SQL to at most `max_candles` candles
        of at least `min_bucket` each."""
        start, end = _utc(start), _utc(end)
        bucket = pick_bucket(start, end, max_candles, min_bucket)
        query, params = bars_query(symbol, start, end, bucket, table, self.exchange_tz)
        rows = self._rows(query, params)
        return Bars(symbol, start, end, bucket, _frame(rows, BAR_SCHEMA))

    def newest_bar_times(self, symbol: str, limit: int = 400) -> list[datetime]:
        """The start times of the newest `limit` bars of `symbol` (an index scan), newest first."""
        rows = self._rows(
            "SELECT ts FROM market.bars_1m WHERE symbol = %s ORDER BY ts DESC LIMIT %s",
            (symbol, limit),
        )
        return [r[0] for r in rows]

    def recent_sessions(self, symbol: str, n: int) -> list[date]:
        """The newest `n` exchange-local days holding bars of `symbol`, newest first: one index
        probe per day (a recursive skip scan), however dense the bars are."""
        rows = self._rows(
            "WITH RECURSIVE d(day) AS ("
            "  (SELECT (ts AT TIME ZONE %(tz)s)::date FROM market.bars_1m"
            "   WHERE symbol = %(s)s ORDER BY ts DESC LIMIT 1)"
            "  UNION ALL"
            "  SELECT (SELECT (b.ts AT TIME ZONE %(tz)s)::date FROM market.bars_1m b"
            "          WHERE b.symbol = %(s)s AND b.ts < (d.day::timestamp AT TIME ZONE %(tz)s)"
            "          ORDER BY b.ts DESC LIMIT 1)"
            "  FROM d WHERE d.day IS NOT NULL"
            ") SELECT day FROM d WHERE day IS NOT NULL LIMIT %(n)s",
            {"s": symbol, "tz": self.exchange_tz, "n": n},
        )
        return [r[0] for r in rows]

    def live_bars(self, symbol: str, window: timedelta = timedelta(hours=6)) -> Bars:
        """The last `window` of live 1-minute bars (Spark streaming) up to the newest one."""
        rng = self.bar_range(symbol, "live_bars_1m")
        if rng is None:
            now = datetime.now(UTC)
            return Bars(symbol, now - window, now, BUCKETS[0], _frame([], BAR_SCHEMA))
        end = rng[1] + BUCKETS[0]
        return self.bars(symbol, end - window, end, table="live_bars_1m")

    def indicators(self, symbol: str, start: date, end: date) -> pl.DataFrame:
        """analytics.indicators (daily) of `symbol` for sessions in [start, end]."""
        query = sql.SQL(
            "SELECT {cols} FROM analytics.indicators"
            " WHERE symbol = %s AND session_date BETWEEN %s AND %s ORDER BY session_date"
        ).format(cols=_columns(INDICATOR_SCHEMA))
        return _frame(self._rows(query, (symbol, start, end)), INDICATOR_SCHEMA)

    def signals(self, symbol: str, start: date, end: date) -> pl.DataFrame:
        """analytics.signals of `symbol` for sessions in [start, end], with their reasons."""
        query = sql.SQL(
            "SELECT {cols} FROM analytics.signals"
            " WHERE symbol = %s AND session_date BETWEEN %s AND %s"
            " ORDER BY session_date, strategy"
        ).format(cols=_columns(SIGNAL_SCHEMA))
        rows = self._rows(query, (symbol, start, end))
        return _frame(rows, SIGNAL_SCHEMA)

    def alerts(self, symbol: str, start: date, end: date, limit: int = 200) -> pl.DataFrame:
        """analytics.alerts of `symbol` for sessions in [start, end], newest first."""
        query = sql.SQL(
            "SELECT {cols} FROM analytics.alerts WHERE symbol = %s"
            " AND session_date BETWEEN %s AND %s ORDER BY session_date DESC, rule LIMIT %s"
        ).format(cols=_columns(ALERT_SCHEMA))
        rows = self._rows(query, (symbol, start, end, limit))
        return _frame(rows, ALERT_SCHEMA)

    # --- portfolio ----------------------------------------------------------------------------

    def accounts(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT account_id FROM trading.accounts ORDER BY 1")]

    def equity(self, account_id: str) -> pl.DataFrame:
        query = sql.SQL(
            "SELECT {cols} FROM trading.equity WHERE account_id = %s ORDER BY ts"
        ).format(cols=_columns(EQUITY_SCHEMA))
        return _frame(self._rows(query, (account_id,)), EQUITY_SCHEMA)

    def positions(self, account_id: str) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT symbol, quantity, avg_price, quantity * avg_price AS cost_basis, updated_at"
            " FROM trading.positions WHERE account_id = %s AND quantity <> 0 ORDER BY symbol",
            (account_id,),
        )

    def orders(self, account_id: str, limit: int = 200) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT o.order_id, o.session_date, o.symbol, o.strategy, o.side, o.quantity, o.status,"
            "       f.price AS fill_price, f.commission, o.created_at"
            " FROM trading.orders o LEFT JOIN trading.fills f USING (order_id)"
            " WHERE o.account_id = %s ORDER BY o.created_at DESC, o.order_id DESC LIMIT %s",
            (account_id, limit),
        )

    def backtests(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The latest backtest of each strategy x symbol (trading.backtests), sorted by both."""
        query = sql.SQL(
            "SELECT DISTINCT ON (strategy, symbol) {cols} FROM trading.backtests"
            " ORDER BY strategy, symbol, run_at DESC LIMIT %s"
        ).format(cols=_columns(BACKTEST_COLUMNS))
        return self._dicts(query, (limit,))

    def _dicts(self, query: sql.Composable | str, params: Sequence[Any] = ()) -> list[dict]:
        with self.connection() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            return cur.execute(query, params).fetchall()  # type: ignore[arg-type]

    # --- pipeline ----------------------------------------------------------------------------

    def ledger(self) -> list[dict[str, Any]]:
        """The Kafka ingest ledger per (topic, partition): loaded end offset, rows, last load."""
        return self._dicts(
            "SELECT topic, partition, max(end_offset) AS loaded_offset, sum(row_count) AS rows,"
            "       count(*) AS ranges, max(loaded_at) AS last_loaded_at"
            " FROM ingest.kafka_offsets GROUP BY topic, partition ORDER BY topic, partition"
        )


def _table(name: str) -> sql.Composable:
    if name not in BAR_TABLES:
        raise ValueError(f"unknown bar table {name!r}; choose from {', '.join(BAR_TABLES)}")
    schema, table = BAR_TABLES[name].split(".")
    return sql.Identifier(schema, table)


def bars_query(
    symbol: str,
    start: datetime,
    end: datetime,
    bucket: timedelta,
    table: str = "bars_1m",
    exchange_tz: str = TIMEZONE,
) -> tuple[sql.Composable, dict[str, Any]]:
    """The SQL (and its parameters) for `Warehouse.bars`; 1-minute buckets read rows as they are."""
    params: dict[str, Any] = {"symbol": symbol, "start": start, "end": end}
    where = sql.SQL("WHERE symbol = %(symbol)s AND ts >= %(start)s AND ts < %(end)s")
    if bucket == BUCKETS[0]:
        query = sql.SQL(
            "SELECT ts, open, high, low, close, volume, vwap, 1::bigint AS bars"
            " FROM {t} {where} ORDER BY ts"
        ).format(t=_table(table), where=where)
        return query, params
    params |= {"bucket": bucket, "tz": exchange_tz}
    if bucket < timedelta(days=1):
        params["origin"] = f"{SESSION_ORIGIN} {exchange_tz}"
        bucket_expr = sql.SQL("time_bucket(%(bucket)s, ts, %(tz)s, %(origin)s::timestamptz)")
    else:
        bucket_expr = sql.SQL("time_bucket(%(bucket)s, ts, %(tz)s)")
    query = sql.SQL(
        "SELECT {b} AS bucket, first(open, ts), max(high), min(low), last(close, ts),"
        " sum(volume), sum(vwap * volume) / nullif(sum(volume), 0), count(*)"
        " FROM {t} {where} GROUP BY bucket ORDER BY bucket"
    ).format(b=bucket_expr, t=_table(table), where=where)
    return query, params
