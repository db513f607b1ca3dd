"""One orders run: sync the broker, honour the kill switch, send what the signals ask, reconcile.

Steps (each committed before the next, so a crash anywhere loses nothing):
1. sync: every order of ours whose final state is unknown is looked up at the broker by client id
   (a `pending_submit` the broker never saw becomes sendable again); fills are recorded;
2. kill switch (the dashboard's row, the config flag or STOCK_BROKER_KILL_SWITCH): cancel every
   open order at the broker, send nothing;
3. intents (lifecycle.py) -> per intent: an id already stored and sent = "duplicate" (skipped);
   risk checks (risk.py) -> "blocked" with the reason; dry-run -> stored as `dry_run`; live ->
   stored as `pending_submit` and committed, *then* sent, then the broker's answer stored;
   a reject is terminal (`rejected` + reason); a transient error stops the batch and re-raises
   (the run is retried; step 1 of the next run resolves the unknown order);
4. trade updates (the stream) and a final poll update statuses, partial fills and fills;
5. reconcile: the broker's positions against the fills ledger; a drift is an audit row, an alert
   and a failed asset check.
Every decision is written to trading.order_audit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from stock_assets.lib import calendar
from stock_assets.lib.trading.broker import lifecycle, risk
from stock_assets.lib.trading.broker import store as bstore
from stock_assets.lib.trading.broker.base import (
    Broker,
    BrokerTransientError,
    OrderRejected,
    OrderRequest,
    TradeUpdate,
)
from stock_assets.lib.trading.broker.config import BrokerConfig
from stock_assets.lib.trading.config import BookEntry

_LOCK = "trading.broker_orders"


@dataclass
class Drift:
    symbol: str
    broker: float
    warehouse: float


@dataclass
class RunReport:
    source: str
    mode: str
    kill_switch: bool = False
    intents: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    cancelled: int = 0
    fills: int = 0
    drift: list[Drift] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def count(self, decision: str) -> None:
        self.decisions[decision] = self.decisions.get(decision, 0) + 1


def reconcile(
    broker_positions: dict[str, float], ledger: dict[str, float], tolerance: float
) -> list[Drift]:
    """Symbols whose broker quantity differs from the ledger's by more than `tolerance`."""
    out = []
    for symbol in sorted(set(broker_positions) | set(ledger)):
        b, w = broker_positions.get(symbol, 0.0), ledger.get(symbol, 0.0)
        if abs(b - w) > tolerance:
            out.append(Drift(symbol, b, w))
    return out


def _apply(conn: psycopg.Connection, updates: Sequence[TradeUpdate], report: RunReport) -> None:
    for u in updates:
        if bstore.update_order(conn, u.order) and bstore.record_fill(conn, u) > 0:
            report.fills += 1
    conn.commit()


def sync(conn: psycopg.Connection, broker: Broker, report: RunReport) -> None:
    """Look up every unfinished order of ours at the broker (authoritative after a restart)."""
    now = datetime.now(UTC)
    for cid, status in bstore.unfinished_orders(conn, broker.source):
        order = broker.get_order(cid)
        if order is None:
            if status == "pending_submit":  # the crash came before the broker saw it
                bstore.audit(
                    conn,
                    broker.source,
                    "reconciled",
                    cid,
                    None,
                    "pending order never reached the broker: sendable again",
                )
            else:
                bstore.audit(
                    conn,
                    broker.source,
                    "error",
                    cid,
                    None,
                    f"order {status} locally but unknown to the broker",
                )
            conn.commit()
            continue
        event = "fill" if order.status == "filled" else "partial_fill"
        _apply(conn, [TradeUpdate(event, order, now)], report)
        if status == "pending_submit":
            bstore.audit(
                conn,
                broker.source,
                "reconciled",
                cid,
                order.symbol,
                f"found at the broker after a restart: {order.status}",
            )
            conn.commit()


def run_orders(
    conn: psycopg.Connection,
    broker: Broker,
    config: BrokerConfig,
    entries: Sequence[BookEntry],
    *,
    now: datetime | None = None,
    market_open: Callable[[datetime], bool] = risk.market_open_at,
    crash_after: int | None = None,
) -> RunReport:
    """One run (see the module docstring). `crash_after` = n raises after n sends (tests only)."""
    now = now or datetime.now(UTC)
    source = broker.source
    report = RunReport(source, config.mode)
    conn.commit()
    conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (_LOCK,))  # one run at a time
    try:
        _run(conn, broker, config, entries, now, market_open, crash_after, report)
    finally:
        conn.rollback()
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_LOCK,))
        conn.commit()
    return report


def _order_id(
    conn: psycopg.Connection, source: str, intent: lifecycle.Intent
) -> tuple[str, tuple[str, str] | None]:
    """The intent's id and stored (status, source): the first attempt not ended unfilled."""
    for attempt in range(100):
        cid = lifecycle.client_order_id(source, intent, attempt)
        stored = bstore.find_order(conn, cid)
        if stored is None or stored[0] not in ("canceled", "expired"):
            return cid, stored
    raise RuntimeError(f"{intent.symbol}: 100 unfilled attempts of the same order")


def _run(
    conn: psycopg.Connection,
    broker: Broker,
    config: BrokerConfig,
    entries: Sequence[BookEntry],
    now: datetime,
    market_open: Callable[[datetime], bool],
    crash_after: int | None,
    report: RunReport,
) -> None:
    source, live = broker.source, config.mode == "live"
    sync(conn, broker, report)

    engaged, why, by, _ = bstore.kill_switch(conn)
    if config.kill_switch and not engaged:
        engaged, why, by = True, "broker.kill_switch set in config/env", "config"
    report.kill_switch = engaged
    if engaged:
        for order in broker.open_orders():
            broker.cancel_order(order)
            bstore.audit(
                conn,
                source,
                "cancelled",
                order.client_order_id,
                order.symbol,
                f"kill switch ({by}): {why}",
            )
            report.cancelled += 1
            report.count("cancelled")
            conn.commit()
        sync(conn, broker, report)  # our cancelled orders' final states

    symbols = sorted({e.symbol for e in entries})
    prices = bstore.latest_closes(conn, symbols)
    account = broker.account()
    positions = {p.symbol: p for p in broker.positions()}
    open_orders = broker.open_orders()
    wanted = lifecycle.targets(
        bstore.latest_signals(conn, entries),
        prices,
        account.equity,
        config.position_fraction,
        whole_shares=config.whole_shares,
    )
    rules = {
        e.symbol: lifecycle.ExitRule(e.config.stop_loss, e.config.take_profit) for e in entries
    }
    intents = lifecycle.intents(
        wanted,
        positions,
        open_orders,
        prices,
        rules,
        bstore.exits(conn, source),
        config.rebalance_band,
    )
    report.intents = len(intents)
    pending = lifecycle.pending_quantity(open_orders)
    today = now.astimezone(calendar.ZONE).date()
    state = risk.RiskState(
        positions={
            s: (positions[s].quantity if s in positions else 0.0) + pending.get(s, 0.0)
            for s in set(positions) | set(pending)
        },
        prices=prices,
        equity=account.equity,
        last_equity=account.last_equity,
        orders_today=bstore.orders_sent_on(conn, source, today),
        market_open=market_open(now),
        kill_switch=engaged,
        kill_reason=f"{why} ({by})",
    )
    sent = 0
    for intent in intents:
        cid, stored = _order_id(conn, source, intent)
        details: dict[str, Any] = {
            "side": intent.side,
            "quantity": intent.quantity,
            "reason": intent.reason,
            "signal_date": intent.signal_date,
            "price": prices.get(intent.symbol),
        }
        if stored is not None and stored[0] == "dry_run" and not live:
            continue  # already shown in an earlier dry run
        if stored is not None and stored[0] not in ("dry_run", "pending_submit"):
            bstore.audit(
                conn,
                source,
                "duplicate",
                cid,
                intent.symbol,
                f"already sent ({stored[0]}): not sent again",
                details,
            )
            report.count("duplicate")
            conn.commit()
            continue
        decision = risk.evaluate(intent, state, config.risk)
        if not decision.allowed:
            bstore.audit(
                conn,
                source,
                "blocked",
                cid,
                intent.symbol,
                f"{decision.rule}: {decision.reason}",
                details,
            )
            report.count("blocked")
            report.blocked.append(f"{intent.symbol} {decision.rule}")
            conn.commit()
            continue
        if not live:
            bstore.upsert_intent(conn, source, cid, intent, "dry_run")
            bstore.audit(
                conn, source, "dry_run", cid, intent.symbol, "dry run: computed, not sent", details
            )
            report.count("dry_run")
            state = state.after(intent)
            conn.commit()
            continue
        bstore.upsert_intent(conn, source, cid, intent, "pending_submit")
        conn.commit()  # the intent is durable before the broker can see it
        if crash_after is not None and sent >= crash_after:
            raise RuntimeError(f"simulated crash after {sent} order(s)")
        request = OrderRequest(cid, intent.symbol, intent.side, intent.quantity)
        try:
            order = broker.submit_order(request)
        except OrderRejected as exc:
            bstore.mark_rejected(conn, cid, str(exc))
            bstore.audit(conn, source, "rejected", cid, intent.symbol, str(exc), details)
            report.count("rejected")
            conn.commit()
            continue
        except BrokerTransientError as exc:
            bstore.audit(
                conn,
                source,
                "error",
                cid,
                intent.symbol,
                f"{exc}; state unknown, resolved by client id next run",
                details,
            )
            conn.commit()
            raise
        event = "fill" if order.status == "filled" else "partial_fill"
        _apply(conn, [TradeUpdate(event, order, datetime.now(UTC))], report)
        bstore.audit(
            conn,
            source,
            "sent",
            cid,
            intent.symbol,
            f"sent: {intent.reason} ({order.status})",
            details,
        )
        report.count("sent")
        sent += 1
        state = state.after(intent)
        conn.commit()

    if live or report.cancelled:
        waiting = {cid for cid, _ in bstore.unfinished_orders(conn, source)}

        def settled(updates: list[TradeUpdate]) -> bool:
            final = {u.order.client_order_id for u in updates if not u.order.is_open}
            return waiting <= final

        if waiting:
            _apply(
                conn, broker.trade_updates(max_wait_s=config.stream_wait_s, until=settled), report
            )
        else:
            _apply(conn, broker.trade_updates(max_wait_s=0.0), report)
        sync(conn, broker, report)

    held = broker.positions()
    bstore.replace_positions(conn, source, held)
    report.drift = reconcile(
        {p.symbol: p.quantity for p in held},
        bstore.ledger_positions(conn, source),
        config.drift_tolerance,
    )
    day = now.astimezone(calendar.ZONE).date()
    for d in report.drift:
        bstore.audit(
            conn,
            source,
            "drift",
            None,
            d.symbol,
            f"broker holds {d.broker:g}, ledger {d.warehouse:g}",
        )
        bstore.insert_drift_alert(
            conn, source, d.symbol, day, d.broker, d.warehouse, config.drift_tolerance
        )
    if not report.drift:
        bstore.audit(
            conn,
            source,
            "reconciled",
            None,
            None,
            f"{len(held)} broker position(s) match the ledger",
        )
    conn.commit()


def make_broker(
    config: BrokerConfig,
    conn: psycopg.Connection,
    *,
    initial_cash: float,
    commission: float,
    symbols: Sequence[str],
) -> Broker:
    """The configured broker: the simulator rebuilt from its fills ledger, or Alpaca."""
    if config.source == "simulator":
        from stock_assets.lib.trading.broker.simulator import SimulatorBroker

        return SimulatorBroker.from_ledger(
            initial_cash,
            bstore.fills_ledger(conn, "simulator"),
            bstore.latest_closes(conn, symbols),
            commission=commission,
        )
    from stock_assets.lib.trading.broker.alpaca import AlpacaBroker
    from stock_assets.lib.trading.broker.config import AlpacaKeys

    key_id, secret = AlpacaKeys.load().require()
    return AlpacaBroker(
        key_id,
        secret,
        paper=config.paper,
        base_url=config.base_url,
        stream_url=config.stream_url,
        timeout_s=config.timeout_s,
        max_attempts=config.max_attempts,
        base_delay_s=config.base_delay_s,
        max_delay_s=config.max_delay_s,
    )
