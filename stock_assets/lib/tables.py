"""One spec per warehouse table: columns (PostgreSQL type, polars dtype), primary key, time column.

The single source for column lists: COPY column lists, polars schemas of frames read from or
written to a table, SELECT lists, window replaces. `stock_assets_tests/lib/test_tables.py` checks
every spec against the migrated database (information_schema), so a migration that changes a table
fails until its spec follows. Columns with a server default (`ingested_at`, `created_at`, identity
ids) are `written=False`: the loaders leave them to the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl

# PostgreSQL type (as information_schema.columns.data_type names it) → polars dtype
PG_TYPES: dict[str, Any] = {
    "text": pl.String,
    "double precision": pl.Float64,
    "integer": pl.Int32,
    "bigint": pl.Int64,
    "boolean": pl.Boolean,
    "date": pl.Date,
    "timestamp with time zone": pl.Datetime("us", "UTC"),
    "jsonb": pl.String,
}


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str
    nullable: bool = False
    written: bool = True  # False: filled by the database (default/identity), never COPYed

    @property
    def dtype(self) -> Any:
        return PG_TYPES[self.pg_type]


@dataclass(frozen=True)
class TableSpec:
    """A warehouse table. `time_column` is what its windows (partitions) are cut on."""

    name: str  # schema.table
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    time_column: str | None = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        unknown = {*self.primary_key, *([self.time_column] if self.time_column else [])} - {*names}
        if unknown or len(set(names)) != len(names):
            raise ValueError(f"{self.name}: bad spec (unknown {sorted(unknown)} or duplicates)")

    @property
    def schema_name(self) -> str:
        return self.name.split(".")[0]

    @property
    def table_name(self) -> str:
        return self.name.split(".")[1]

    @property
    def names(self) -> tuple[str, ...]:
        """Every column, in table order."""
        return tuple(c.name for c in self.columns)

    @property
    def written(self) -> tuple[str, ...]:
        """The columns a loader writes (COPY column list): all but the database-filled ones."""
        return tuple(c.name for c in self.columns if c.written)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    def schema(self, columns: Iterable[str] | None = None) -> dict[str, Any]:
        """polars schema of `columns` (default: the written ones), in the order given."""
        return {n: self.column(n).dtype for n in (self.written if columns is None else columns)}

    def empty(self, columns: Iterable[str] | None = None) -> pl.DataFrame:
        return pl.DataFrame(schema=self.schema(columns))

    def conform(self, frame: pl.DataFrame, columns: Iterable[str] | None = None) -> pl.DataFrame:
        """`frame` reduced to `columns` (default: the written ones) in table order and dtypes."""
        schema = self.schema(columns)
        return frame.select(pl.col(n).cast(t) for n, t in schema.items())


def _c(spec: str, **flags: bool) -> tuple[Column, ...]:
    """Columns from "name type, name type?, ..." (`?` = nullable)."""
    out = []
    for part in spec.split(","):
        name, pg_type = part.strip().split(" ", 1)
        nullable = pg_type.endswith("?")
        out.append(Column(name, pg_type.rstrip("?"), nullable=nullable, **flags))
    return tuple(out)


OHLCV = "open double precision, high double precision, low double precision, close double precision"

# --- market ----------------------------------------------------------------------------------
RAW_TICKS = TableSpec(
    "market.raw_ticks",
    _c(
        "ts timestamp with time zone, symbol text, price double precision, size double precision,"
        " source text, seq bigint, kafka_partition integer, kafka_offset bigint"
    )
    + _c("ingested_at timestamp with time zone", written=False),
    primary_key=("kafka_partition", "kafka_offset", "ts"),
    time_column="ts",
)
_BAR_1M = _c(
    f"symbol text, ts timestamp with time zone, {OHLCV}, volume double precision,"
    " vwap double precision, trade_count integer"
)
BARS_1M = TableSpec("market.bars_1m", _BAR_1M, ("symbol", "ts"), "ts")
LIVE_BARS_1M = TableSpec(
    "market.live_bars_1m",
    _BAR_1M + _c("updated_at timestamp with time zone", written=False),
    ("symbol", "ts"),
    "ts",
)
LIVE_BARS_BATCHES = TableSpec(
    "market.live_bars_batches",
    _c(
        "query_id text, batch_id bigint, input_rows bigint, valid_ticks bigint, late_ticks bigint,"
        " malformed bigint, bars_upserted integer?, late_watermark timestamp with time zone?,"
        " first_late_ts timestamp with time zone?, last_late_ts timestamp with time zone?"
    )
    + _c("recorded_at timestamp with time zone", written=False),
    ("query_id", "batch_id"),
)
BARS_DAILY = TableSpec(
    "market.bars_daily",
    _c(
        f"symbol text, session_date date, {OHLCV}, volume double precision,"
        " vwap double precision?, return_1d double precision?, realized_vol double precision?,"
        " trade_count integer"
    ),
    ("symbol", "session_date"),
    "session_date",
)
SPLITS = TableSpec(
    "market.splits",
    _c("symbol text, ex_date date, ratio double precision, source text")
    + _c("updated_at timestamp with time zone", written=False),
    ("symbol", "ex_date"),
    "ex_date",
)

# --- ingest ----------------------------------------------------------------------------------
KAFKA_OFFSETS = TableSpec(
    "ingest.kafka_offsets",
    _c(
        "topic text, partition integer, start_offset bigint, end_offset bigint, row_count bigint,"
        " run_id text?"
    )
    + _c("loaded_at timestamp with time zone", written=False),
    ("topic", "partition", "start_offset"),
)

# --- analytics -------------------------------------------------------------------------------
INDICATORS = TableSpec(
    "analytics.indicators",
    _c(
        "symbol text, session_date date, close double precision, sma_20 double precision?,"
        " sma_50 double precision?, ema_12 double precision?, ema_26 double precision?,"
        " rsi_14 double precision?, macd double precision?, macd_signal double precision?,"
        " macd_hist double precision?, bb_upper double precision?, bb_middle double precision?,"
        " bb_lower double precision?, atr_14 double precision?, obv double precision?"
    ),
    ("symbol", "session_date"),
    "session_date",
)
SIGNALS = TableSpec(
    "analytics.signals",
    _c(
        "symbol text, session_date date, strategy text, side text, strength double precision,"
        " price double precision, reason text, params text"
    ),
    ("symbol", "session_date", "strategy", "params"),
    "session_date",
)
ALERTS = TableSpec(
    "analytics.alerts",
    _c(
        "alert_id text, symbol text, session_date date, rule text, kind text, direction text,"
        " value double precision, threshold double precision, message text"
    )
    + _c("created_at timestamp with time zone", written=False)
    + _c("delivered_at timestamp with time zone?", written=False),
    ("alert_id",),
    "session_date",
)
ROLLING_BETA = TableSpec(
    "analytics.rolling_beta",
    _c(
        "symbol text, session_date date, window_days integer, beta double precision?,"
        " correlation double precision?, volatility double precision?,"
        " market_return double precision, n_obs integer"
    ),
    ("symbol", "session_date", "window_days"),
    "session_date",
)

# --- trading ---------------------------------------------------------------------------------
ACCOUNTS = TableSpec(
    "trading.accounts",
    _c("account_id text, initial_cash double precision")
    + _c("created_at timestamp with time zone", written=False),
    ("account_id",),
)
ORDERS = TableSpec(
    "trading.orders",
    _c("order_id bigint", written=False)
    + _c(
        "account_id text, symbol text, session_date date, strategy text, side text,"
        " quantity double precision, status text"
    )
    + _c("created_at timestamp with time zone", written=False),
    ("order_id",),
    "session_date",
)
FILLS = TableSpec(
    "trading.fills",
    _c(
        "order_id bigint, ts timestamp with time zone, price double precision,"
        " quantity double precision, commission double precision"
    ),
    ("order_id",),
    "ts",
)
POSITIONS = TableSpec(
    "trading.positions",
    _c("account_id text, symbol text, quantity double precision, avg_price double precision")
    + _c("updated_at timestamp with time zone", written=False),
    ("account_id", "symbol"),
)
EQUITY = TableSpec(
    "trading.equity",
    _c(
        "account_id text, ts timestamp with time zone, cash double precision,"
        " positions_value double precision, equity double precision"
    ),
    ("account_id", "ts"),
    "ts",
)
BACKTESTS = TableSpec(
    "trading.backtests",
    _c("backtest_id bigint", written=False)
    + _c(
        "strategy text, symbol text, params_hash text, params jsonb, first_session date,"
        " last_session date, sessions integer, initial_cash double precision,"
        " final_equity double precision, total_return double precision, cagr double precision,"
        " sharpe double precision, sortino double precision, max_drawdown double precision,"
        " max_drawdown_duration integer, win_rate double precision, trades integer,"
        " exposure double precision"
    )
    + _c("run_at timestamp with time zone", written=False),
    ("backtest_id",),
)
BACKTEST_TRADES = TableSpec(
    "trading.backtest_trades",
    _c(
        "backtest_id bigint, trade_no integer, direction text, entry_date date,"
        " entry_price double precision, quantity double precision, exit_date date,"
        " exit_price double precision, exit_reason text, commission double precision,"
        " pnl double precision, trade_return double precision"
    ),
    ("backtest_id", "trade_no"),
)

# --- forecast --------------------------------------------------------------------------------
PREDICTIONS = TableSpec(
    "forecast.predictions",
    _c(
        "issued_at timestamp with time zone, symbol text, horizon integer, model text, kind text,"
        " session_date date, target_date date, target_at timestamp with time zone,"
        " model_version text, pred_return double precision, lower_return double precision?,"
        " upper_return double precision?, actual_return double precision?"
    )
    + _c("created_at timestamp with time zone", written=False),
    ("symbol", "horizon", "model", "kind", "issued_at"),
    "session_date",
)
EVALUATION = TableSpec(
    "forecast.evaluation",
    _c(
        "symbol text, horizon integer, model text, n bigint, first_date date, last_date date,"
        " mae double precision, rmse double precision, rmse_vs_random_walk double precision?,"
        " hit_rate double precision?, hits bigint?, directional_n bigint,"
        " p_value double precision?, coverage double precision?,"
        " strategy_return double precision?, strategy_sharpe double precision?,"
        " buy_hold_return double precision?, trades bigint?, model_version text?"
    )
    + _c("evaluated_at timestamp with time zone", written=False),
    ("symbol", "horizon", "model"),
)

# --- dashboard (dash_app/auth_store.py) ------------------------------------------------------
LOGIN_FAILURES = TableSpec(
    "dashboard.login_failures",
    _c(
        "scope text, key text, failures integer, last_failure timestamp with time zone,"
        " locked_until timestamp with time zone?"
    ),
    ("scope", "key"),
)
SESSIONS = TableSpec(
    "dashboard.sessions",
    _c("token_hash text, username text, credential text")
    + _c("created_at timestamp with time zone", written=False)
    + _c("expires_at timestamp with time zone"),
    ("token_hash",),
)
CREDENTIALS = TableSpec(
    "dashboard.credentials",
    _c("username text, password_hash text")
    + _c("changed_at timestamp with time zone", written=False),
    ("username",),
)

# --- trading: broker orders (migration 0014) ---------------------------------------------------
BROKER_ORDERS = TableSpec(
    "trading.broker_orders",
    _c(
        "client_order_id text, source text, strategy text, symbol text, signal_date date,"
        " side text, quantity double precision, reason text, status text,"
        " broker_order_id text?, filled_qty double precision, filled_avg_price double precision?,"
        " reject_reason text?"
    )
    + _c("created_at timestamp with time zone, updated_at timestamp with time zone", written=False),
    ("client_order_id",),
    "signal_date",
)
BROKER_FILLS = TableSpec(
    "trading.broker_fills",
    _c(
        "execution_id text, client_order_id text, ts timestamp with time zone, event text,"
        " price double precision, quantity double precision, position_qty double precision?"
    ),
    ("execution_id",),
    "ts",
)
BROKER_POSITIONS = TableSpec(
    "trading.broker_positions",
    _c(
        "source text, symbol text, quantity double precision, avg_entry_price double precision,"
        " market_value double precision?"
    )
    + _c("updated_at timestamp with time zone", written=False),
    ("source", "symbol"),
)
KILL_SWITCH = TableSpec(
    "trading.kill_switch",
    _c("singleton boolean, engaged boolean, reason text, changed_by text")
    + _c("changed_at timestamp with time zone", written=False),
    ("singleton",),
)
ORDER_AUDIT = TableSpec(
    "trading.order_audit",
    _c("audit_id bigint, ts timestamp with time zone", written=False)
    + _c(
        "source text, decision text, client_order_id text?, symbol text?, reason text,"
        " details jsonb"
    ),
    ("audit_id",),
    "ts",
)

ALL: tuple[TableSpec, ...] = (
    RAW_TICKS,
    BARS_1M,
    LIVE_BARS_1M,
    LIVE_BARS_BATCHES,
    BARS_DAILY,
    SPLITS,
    KAFKA_OFFSETS,
    INDICATORS,
    SIGNALS,
    ALERTS,
    ROLLING_BETA,
    ACCOUNTS,
    ORDERS,
    FILLS,
    POSITIONS,
    EQUITY,
    BACKTESTS,
    BACKTEST_TRADES,
    BROKER_ORDERS,
    BROKER_FILLS,
    BROKER_POSITIONS,
    KILL_SWITCH,
    ORDER_AUDIT,
    PREDICTIONS,
    EVALUATION,
    LOGIN_FAILURES,
    SESSIONS,
    CREDENTIALS,
)
BY_NAME: dict[str, TableSpec] = {t.name: t for t in ALL}
