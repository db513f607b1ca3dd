"""Trading domain: backtests per strategy x symbol, paper accounts, and alerts on new bars.

Backtests are one unpartitioned asset: a backtest is a function of a symbol's whole history (a
daily partition of it means nothing), the full universe takes well under a second, and a static
strategy x symbol partitioning would need the configured symbols at import time. Each
(strategy, symbol, parameters) row is upserted on its natural key, so re-runs replace results.
The paper portfolio is an unpartitioned ledger that advances from its own watermark. Alerts follow
the daily partitions of the bars they read, so a backfill or a re-run of a day is idempotent.
"""

import math
from collections import defaultdict
from datetime import date, timedelta

import dagster as dg
import polars as pl

from stock_assets.defs.catch_up import newest_partition
from stock_assets.defs.kernel import (
    ALERTS,
    BACKTESTS,
    BARS_DAILY,
    PAPER_PORTFOLIO,
    SIGNALS,
    session_asset,
    window,
)
from stock_assets.defs.resources import WarehouseResource
from stock_assets.defs.trading.resources import TradingConfigResource
from stock_assets.lib import frames, tables
from stock_assets.lib.trading import alerts as alerts_lib
from stock_assets.lib.trading import store
from stock_assets.lib.trading.backtest import Bars, backtest_strategy
from stock_assets.lib.trading.config import BookEntry

# bars before the watermark seed each symbol's last close (positions are marked at it)
CLOSE_LOOKBACK = timedelta(days=10)
EQUITY_CHECK = "cash_plus_positions_equals_equity"


def signals_through(instance: dg.DagsterInstance) -> date | None:
    """The newest day whose signals were materialized: the paper portfolio applies no session
    after it. A sessions run writes a window's daily bars before its signals, so without this
    bound a trading run between the two would apply a day before its signals exist, and those
    signals (arriving after the watermark) would be ignored for good. None when this instance
    never materialized signals (a warehouse filled outside Dagster): no bound."""
    return newest_partition(instance, SIGNALS)


@dg.asset(
    key=BACKTESTS,
    deps=[BARS_DAILY],
    group_name="trading",
    kinds={"numpy", "talib", "timescaledb"},
)
def backtests(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    trading_config: TradingConfigResource,
) -> dg.MaterializeResult:
    """Backtest of every configured strategy x symbol over the symbol's full daily history."""
    settings = trading_config.settings()
    book = trading_config.book(settings)
    rows: list[dict[str, object]] = []
    skipped: list[str] = []
    with warehouse.connection() as conn:
        bars = store.read_bars(conn, sorted({e.symbol for e in book}))
        by_symbol = {key[0]: df for key, df in bars.partition_by("symbol", as_dict=True).items()}
        with conn.transaction():
            frames.lock_table(conn, "trading.backtests")
            for entry in book:
                history = by_symbol.get(entry.symbol)
                if history is None or history.height < 2:
                    skipped.append(f"{entry.symbol}/{entry.strategy}")
                    continue
                result = backtest_strategy(
                    Bars.from_frame(history), entry.strategy, entry.params, entry.config
                )
                store.save_backtest(conn, entry, result, history["session_date"])
                m = result.metrics
                rows.append(
                    {
                        "symbol": entry.symbol,
                        "strategy": entry.strategy,
                        "total_return": m.total_return,
                        "sharpe": m.sharpe,
                        "max_drawdown": m.max_drawdown,
                        "trades": m.trades,
                    }
                )
    if skipped:
        context.log.warning(f"no daily bars for {', '.join(skipped)}")
    table = pl.DataFrame(rows) if rows else pl.DataFrame()
    best = table.sort("sharpe", descending=True).head(10) if rows else table
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "trades": int(table["trades"].sum()) if rows else 0,
            "skipped": skipped,
            "best_by_sharpe": dg.MetadataValue.md(_markdown(best)),
        }
    )


def _markdown(df: pl.DataFrame) -> str:
    if df.is_empty():
        return "_no backtests_"
    header = "| " + " | ".join(df.columns) + " |\n|" + "---|" * df.width + "\n"
    body = "".join(
        "| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |\n"
        for row in df.iter_rows()
    )
    return header + body


@dg.asset(
    key=PAPER_PORTFOLIO,
    deps=[SIGNALS, BARS_DAILY],
    group_name="trading",
    kinds={"python", "timescaledb"},
    check_specs=[dg.AssetCheckSpec(EQUITY_CHECK, asset=PAPER_PORTFOLIO)],
)
def paper_portfolio(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    trading_config: TradingConfigResource,
) -> dg.MaterializeResult:
    """Paper accounts (one per strategy) applying new signals: orders, fills, positions, equity."""
    settings = trading_config.settings()
    by_strategy: dict[str, list[BookEntry]] = defaultdict(list)
    for entry in trading_config.book(settings):
        by_strategy[entry.strategy].append(entry)
    accounts: dict[str, dict[str, object]] = {}
    written = 0
    through = signals_through(context.instance)
    with warehouse.connection() as conn:
        for strategy, entries in sorted(by_strategy.items()):
            account_id = settings.paper_account_id(strategy)
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (account_id,))
                account = store.load_account(conn, account_id, strategy, settings.initial_cash)
                watermark = account.last_session
                bars = store.read_bars(
                    conn,
                    [e.symbol for e in entries],
                    watermark - CLOSE_LOOKBACK if watermark else None,
                    through,
                )
                # the signals asset stores every configured (symbol, strategy, params)
                signals = store.read_signals(conn, strategy, watermark, entries)
                run = account.apply(
                    bars,
                    signals,
                    commission={e.symbol: e.config.commission for e in entries},
                    fraction=settings.paper_position_fraction,
                    long_only={e.symbol: e.config.long_only for e in entries},
                )
                store.save_run(conn, account, run)
            written += len(run.equity)
            accounts[account_id] = {
                "sessions_applied": len(run.equity),
                "orders": len(run.orders),
                "fills": len(run.fills),
                "equity": round(account.equity(), 2),
                "cash": round(account.cash, 2),
                "open_positions": sum(1 for p in account.positions.values() if p.quantity),
            }
        worst = conn.execute(
            "SELECT count(*), coalesce(max(abs(cash + positions_value - equity)"
            " / greatest(abs(equity), 1)), 0) FROM trading.equity WHERE account_id = ANY(%s)",
            (list(accounts),),
        ).fetchone()
    assert worst is not None
    checked, max_error = int(worst[0]), float(worst[1])
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "accounts": accounts,
            "new_orders_and_updates": sum(int(str(a["orders"])) for a in accounts.values()),
            "signals_through": str(through) if through else "unbounded",
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=EQUITY_CHECK,
                passed=max_error <= 1e-9,
                metadata={"equity_rows": checked, "max_relative_error": max_error},
            )
        ],
    )


@session_asset(
    key=ALERTS,
    deps=[BARS_DAILY],
    group_name="trading",
    kinds={"polars", "timescaledb"},
)
def alerts(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    trading_config: TradingConfigResource,
) -> dg.MaterializeResult:
    """Price-movement alerts (percent move, level cross) on the window's daily bars; webhook."""
    w = window(context)
    settings = trading_config.settings()
    rules = settings.alert_rules
    # calendar days that surely hold the sessions the rules look back over (weekends, holidays)
    lookback = timedelta(days=math.ceil(alerts_lib.lookback_sessions(rules) * 1.5) + 10)
    with warehouse.connection() as conn:
        bars = frames.read_window(
            conn,
            tables.BARS_DAILY,
            w.first_date - lookback,
            w.end,
            columns=("symbol", "session_date", "close"),
        )
        events = alerts_lib.evaluate(bars, rules).filter(
            pl.col("session_date").is_between(w.first_date, w.last_date)
        )
        with conn.transaction():
            new_ids = store.insert_alerts(conn, events)
        delivered: list[str] = []
        pending: list[dict[str, object]] = []
        if settings.webhook_url is not None:
            pending = store.undelivered_alerts(conn, new_ids, settings.webhook_retry_hours)
            delivered = alerts_lib.post_alerts(
                settings.webhook_url,
                [alerts_lib.webhook_payload(row) for row in pending],
                timeout_s=settings.webhook_timeout_s,
                retries=settings.webhook_retries,
            )
            with conn.transaction():
                store.mark_delivered(conn, delivered)
    if len(delivered) < len(pending):
        context.log.warning(f"{len(pending) - len(delivered)} alert(s) not delivered; will retry")
    new = events.filter(pl.col("alert_id").is_in(new_ids))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(new_ids),
            "window": w.label(),
            "rules": [r.name for r in rules],
            "events_evaluated": events.height,
            "already_stored": events.height - len(new_ids),
            "webhook": (
                alerts_lib.redact_url(settings.webhook_url.get_secret_value())
                if settings.webhook_url
                else "not configured"
            ),
            "delivered": len(delivered),
            "undelivered": len(pending) - len(delivered),
            "latest": new.tail(5)["message"].to_list(),
        }
    )
