"""Broker data for the Portfolio page: orders, fills, positions by source, audit, kill switch.

Reads go through the dashboard's read-only pool; the kill switch is the one write, on its own
short connection (trading.kill_switch, the same row the orders run reads).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from dash_app.data.warehouse import Warehouse
from stock_assets.lib import db
from stock_assets.lib.trading.broker import store as bstore


def _dicts(wh: Warehouse, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with wh.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def orders(wh: Warehouse, limit: int = 200) -> list[dict[str, Any]]:
    return _dicts(
        wh,
        "SELECT created_at, source, symbol, side, quantity, reason, status, filled_qty,"
        " filled_avg_price, strategy, reject_reason, client_order_id FROM trading.broker_orders"
        " ORDER BY created_at DESC, client_order_id LIMIT %s",
        (limit,),
    )


def fills(wh: Warehouse, limit: int = 200) -> list[dict[str, Any]]:
    return _dicts(
        wh,
        "SELECT f.ts, o.source, o.symbol, o.side, f.event, f.quantity, f.price, f.position_qty,"
        " f.client_order_id FROM trading.broker_fills f JOIN trading.broker_orders o"
        " USING (client_order_id) ORDER BY f.ts DESC LIMIT %s",
        (limit,),
    )


def positions(wh: Warehouse) -> list[dict[str, Any]]:
    """The broker positions per source (as last read by a run) and the paper accounts'."""
    return _dicts(
        wh,
        "SELECT source, symbol, quantity, avg_entry_price, market_value, updated_at"
        " FROM trading.broker_positions"
        " UNION ALL SELECT 'paper:' || account_id, symbol, quantity, avg_price,"
        " NULL::double precision, updated_at FROM trading.positions WHERE quantity <> 0"
        " ORDER BY 1, 2",
    )


def audit(wh: Warehouse, limit: int = 100) -> list[dict[str, Any]]:
    return _dicts(
        wh,
        "SELECT ts, source, decision, symbol, reason, client_order_id FROM trading.order_audit"
        " ORDER BY audit_id DESC LIMIT %s",
        (limit,),
    )


def kill_switch(wh: Warehouse) -> dict[str, Any]:
    rows = _dicts(
        wh, "SELECT engaged, reason, changed_by, changed_at FROM trading.kill_switch LIMIT 1"
    )
    return (
        rows[0] if rows else {"engaged": False, "reason": "", "changed_by": "", "changed_at": None}
    )


def set_kill_switch(wh: Warehouse, engaged: bool, user: str) -> None:
    """Engage or release the switch (audited); the next orders run cancels and blocks."""
    reason = "engaged from the dashboard" if engaged else "released from the dashboard"
    conn: psycopg.Connection
    with db.connect(wh.settings) as conn:
        bstore.set_kill_switch(conn, engaged, reason, user)
        conn.commit()
