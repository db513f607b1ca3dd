"""Warehouse reads and writes of the broker integration (psycopg 3, bound parameters only).

Callers own the connection and its commits (the runner commits after every order it sends).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import psycopg

from stock_assets.lib import calendar
from stock_assets.lib.trading import strategies
from stock_assets.lib.trading.broker.base import BrokerOrder, BrokerPosition, TradeUpdate
from stock_assets.lib.trading.broker.lifecycle import Intent, SignalState
from stock_assets.lib.trading.config import BookEntry

NOT_FINAL = (
    "pending_submit",
    "new",
    "accepted",
    "pending_new",
    "partially_filled",
    "pending_cancel",
    "done_for_day",
)
KNOWN_STATUS = frozenset(
    {
        "dry_run",
        "pending_submit",
        "new",
        "accepted",
        "pending_new",
        "partially_filled",
        "filled",
        "pending_cancel",
        "canceled",
        "expired",
        "rejected",
        "done_for_day",
        "replaced",
    }
)


def status_of(broker_status: str) -> str:
    return broker_status if broker_status in KNOWN_STATUS else "other"


# --- inputs ---------------------------------------------------------------------------------


def latest_signals(conn: psycopg.Connection, entries: Sequence[BookEntry]) -> list[SignalState]:
    """The newest stored signal of every configured (symbol, strategy, params)."""
    if not entries:
        return []
    keys = [strategies.params_key(e.params) for e in entries]
    rows = conn.execute(
        "SELECT DISTINCT ON (s.symbol, s.strategy, s.params) s.symbol, s.strategy, s.params,"
        " s.side, s.session_date FROM analytics.signals s"
        " JOIN unnest(%s::text[], %s::text[], %s::text[]) AS b(symbol, strategy, params)"
        " USING (symbol, strategy, params)"
        " ORDER BY s.symbol, s.strategy, s.params, s.session_date DESC",
        ([e.symbol for e in entries], [e.strategy for e in entries], keys),
    ).fetchall()
    long_only = {(e.symbol, e.strategy): e.config.long_only for e in entries}
    return [
        SignalState(sym, f"{strat}{params}", side, day, long_only[(sym, strat)])
        for sym, strat, params, side, day in rows
    ]


def latest_closes(conn: psycopg.Connection, symbols: Sequence[str]) -> dict[str, float]:
    rows = conn.execute(
        "SELECT DISTINCT ON (symbol) symbol, close FROM market.bars_daily"
        " WHERE symbol = ANY(%s) ORDER BY symbol, session_date DESC",
        (list(symbols),),
    ).fetchall()
    return {sym: float(close) for sym, close in rows}


# --- kill switch ------------------------------------------------------------------------------


def kill_switch(conn: psycopg.Connection) -> tuple[bool, str, str, datetime | None]:
    """(engaged, reason, changed_by, changed_at) of the dashboard's switch."""
    row = conn.execute(
        "SELECT engaged, reason, changed_by, changed_at FROM trading.kill_switch"
    ).fetchone()
    return (bool(row[0]), row[1], row[2], row[3]) if row else (False, "", "", None)


def set_kill_switch(conn: psycopg.Connection, engaged: bool, reason: str, by: str) -> None:
    conn.execute(
        "INSERT INTO trading.kill_switch (singleton, engaged, reason, changed_by)"
        " VALUES (true, %s, %s, %s) ON CONFLICT (singleton) DO UPDATE SET"
        " engaged = EXCLUDED.engaged, reason = EXCLUDED.reason,"
        " changed_by = EXCLUDED.changed_by, changed_at = now()",
        (engaged, reason, by),
    )
    audit(
        conn,
        "-",
        "kill_switch",
        None,
        None,
        f"{'engaged' if engaged else 'released'}: {reason}",
        {"by": by},
    )


# --- audit --------------------------------------------------------------------------------------


def audit(
    conn: psycopg.Connection,
    source: str,
    decision: str,
    client_order_id: str | None,
    symbol: str | None,
    reason: str,
    details: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        "INSERT INTO trading.order_audit (source, decision, client_order_id, symbol, reason,"
        " details) VALUES (%s, %s, %s, %s, %s, %s)",
        (source, decision, client_order_id, symbol, reason, json.dumps(details or {}, default=str)),
    )


# --- orders -----------------------------------------------------------------------------------


def find_order(conn: psycopg.Connection, client_order_id: str) -> tuple[str, str] | None:
    """(status, source) of a stored order."""
    row = conn.execute(
        "SELECT status, source FROM trading.broker_orders WHERE client_order_id = %s",
        (client_order_id,),
    ).fetchone()
    return (row[0], row[1]) if row else None


def upsert_intent(
    conn: psycopg.Connection, source: str, cid: str, intent: Intent, status: str
) -> None:
    conn.execute(
        "INSERT INTO trading.broker_orders (client_order_id, source, strategy, symbol,"
        " signal_date, side, quantity, reason, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (client_order_id) DO UPDATE SET status = EXCLUDED.status,"
        " updated_at = now()",
        (
            cid,
            source,
            intent.strategy,
            intent.symbol,
            intent.signal_date,
            intent.side,
            intent.quantity,
            intent.reason,
            status,
        ),
    )


def mark_rejected(conn: psycopg.Connection, cid: str, message: str) -> None:
    conn.execute(
        "UPDATE trading.broker_orders SET status = 'rejected', reject_reason = %s,"
        " updated_at = now() WHERE client_order_id = %s",
        (message, cid),
    )


def update_order(conn: psycopg.Connection, order: BrokerOrder) -> bool:
    """Write the broker's view of one of our orders; False when it is not ours."""
    # a late event never moves a final order back (e.g. a stream 'new' after the polled 'filled')
    cur = conn.execute(
        "UPDATE trading.broker_orders SET status = CASE WHEN status IN"
        " ('filled', 'canceled', 'expired', 'rejected', 'replaced') THEN status ELSE %s END,"
        " broker_order_id = %s,"
        " filled_qty = greatest(filled_qty, %s), filled_avg_price = coalesce(%s, filled_avg_price),"
        " updated_at = now() WHERE client_order_id = %s",
        (
            status_of(order.status),
            order.broker_order_id,
            order.filled_qty,
            order.filled_avg_price,
            order.client_order_id,
        ),
    )
    return cur.rowcount == 1


def unfinished_orders(conn: psycopg.Connection, source: str) -> list[tuple[str, str]]:
    """(client_order_id, status) of our orders whose final state is not known yet."""
    rows = conn.execute(
        "SELECT client_order_id, status FROM trading.broker_orders"
        " WHERE source = %s AND status = ANY(%s) ORDER BY created_at",
        (source, list(NOT_FINAL)),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def record_fill(conn: psycopg.Connection, update: TradeUpdate) -> float:
    """Record the part of a fill event not yet in the ledger; returns the shares added.

    Executions are cumulative-monotone: the order's filled_qty after the event bounds what the
    ledger may hold, so a fill seen twice (stream and poll, or a replayed event) counts once.
    """
    if update.event not in ("fill", "partial_fill") or update.order.filled_qty <= 0:
        return 0.0
    cid = update.order.client_order_id
    row = conn.execute(
        "SELECT coalesce(sum(quantity), 0), coalesce(sum(quantity * price), 0)"
        " FROM trading.broker_fills WHERE client_order_id = %s",
        (cid,),
    ).fetchone()
    have, value = (float(row[0]), float(row[1])) if row else (0.0, 0.0)
    missing = update.order.filled_qty - have
    if missing <= 1e-9:
        return 0.0
    qty = min(update.qty or missing, missing)
    price = update.price
    if price is None:  # polled: the increment's price from the cumulative average
        if update.order.filled_avg_price is None:
            return 0.0
        price = (update.order.filled_avg_price * update.order.filled_qty - value) / missing
    execution = update.execution_id or _synthetic_execution(cid, update.order.filled_qty)
    cur = conn.execute(
        "INSERT INTO trading.broker_fills (execution_id, client_order_id, ts, event, price,"
        " quantity, position_qty) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (execution_id) DO NOTHING",
        (execution, cid, update.timestamp, update.event, price, qty, update.position_qty),
    )
    return qty if cur.rowcount == 1 else 0.0


def _synthetic_execution(cid: str, cumulative: float) -> str:
    """A polled fill has no execution id: one per (order, cumulative quantity)."""
    digest = hashlib.sha256(f"{cid}|{cumulative:.9f}".encode()).hexdigest()[:24]
    return f"poll-{digest}"


def orders_sent_on(conn: psycopg.Connection, source: str, day: date) -> int:
    """Orders sent (not dry-run, not refused) on New York day `day`."""
    row = conn.execute(
        "SELECT count(*) FROM trading.order_audit WHERE source = %s AND decision = 'sent'"
        " AND (ts AT TIME ZONE %s)::date = %s",
        (source, calendar.TIMEZONE, day),
    ).fetchone()
    return int(row[0]) if row else 0


def exits(conn: psycopg.Connection, source: str) -> dict[str, date]:
    """Per symbol, the signal date the latest stop/target exit saw (not refused ones)."""
    rows = conn.execute(
        "SELECT symbol, max(signal_date) FROM trading.broker_orders WHERE source = %s"
        " AND reason <> 'signal' AND status NOT IN ('dry_run', 'rejected') GROUP BY symbol",
        (source,),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def fills_ledger(conn: psycopg.Connection, source: str) -> list[tuple[str, str, float, float]]:
    """(symbol, side, quantity, price) of every recorded fill of `source`, in time order."""
    rows = conn.execute(
        "SELECT o.symbol, o.side, f.quantity, f.price FROM trading.broker_fills f"
        " JOIN trading.broker_orders o USING (client_order_id) WHERE o.source = %s"
        " ORDER BY f.ts, f.execution_id",
        (source,),
    ).fetchall()
    return [(r[0], r[1], float(r[2]), float(r[3])) for r in rows]


def ledger_positions(conn: psycopg.Connection, source: str) -> dict[str, float]:
    """Signed shares per symbol from our recorded fills: the warehouse's view of the broker."""
    rows = conn.execute(
        "SELECT o.symbol, sum(CASE o.side WHEN 'buy' THEN f.quantity ELSE -f.quantity END)"
        " FROM trading.broker_fills f JOIN trading.broker_orders o USING (client_order_id)"
        " WHERE o.source = %s GROUP BY o.symbol",
        (source,),
    ).fetchall()
    return {r[0]: float(r[1]) for r in rows}


def replace_positions(
    conn: psycopg.Connection, source: str, positions: Iterable[BrokerPosition]
) -> None:
    conn.execute("DELETE FROM trading.broker_positions WHERE source = %s", (source,))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO trading.broker_positions (source, symbol, quantity, avg_entry_price,"
            " market_value) VALUES (%s, %s, %s, %s, %s)",
            [(source, p.symbol, p.quantity, p.avg_entry_price, p.market_value) for p in positions],
        )


def insert_drift_alert(
    conn: psycopg.Connection,
    source: str,
    symbol: str,
    day: date,
    broker: float,
    ours: float,
    tolerance: float,
) -> bool:
    """One alert per (source, symbol, day, drift); True when it is new."""
    drift = broker - ours
    alert_id = hashlib.sha256(
        f"position_drift|{source}|{symbol}|{day}|{drift:.6f}".encode()
    ).hexdigest()[:32]
    cur = conn.execute(
        "INSERT INTO analytics.alerts (alert_id, symbol, session_date, rule, kind, direction,"
        " value, threshold, message) VALUES (%s, %s, %s, %s, 'position_drift', %s, %s, %s, %s)"
        " ON CONFLICT (alert_id) DO NOTHING",
        (
            alert_id,
            symbol,
            day,
            f"{source}_position_drift",
            "up" if drift > 0 else "down",
            drift,
            tolerance,
            f"{symbol}: {source} holds {broker:g} shares, the warehouse ledger {ours:g}",
        ),
    )
    return cur.rowcount == 1
