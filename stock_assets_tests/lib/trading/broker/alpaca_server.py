"""A local Alpaca-compatible trading server: REST (/v2/...) and the trade_updates websocket.

It answers in Alpaca's documented JSON formats (orders, positions, account, clock, errors as
{"code", "message"}), enforces client_order_id uniqueness (HTTP 422, code 40010001), checks the
APCA-API-KEY-ID / APCA-API-SECRET-KEY headers, and streams trade_updates events (new,
partial_fill, fill, canceled, rejected) to authenticated listeners, like Alpaca without replay of
events sent while nobody listened. Faults are injected per request: an HTTP status, a delay longer
than the client's timeout, or a delay *after* the order was accepted (the ambiguous case).
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

KEY_ID = "PKTEST7Q2ZEXAMPLE"
SECRET = "s3cr3t-ALPACA-never-logged-9f1c"
OPEN = ("new", "accepted", "pending_new", "partially_filled")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Fault:
    """What to do instead of (or after) serving one matching request."""

    status: int = 0  # answer this HTTP status with an Alpaca error body
    message: str = "internal server error"
    code: int | None = None
    delay_s: float = 0.0  # sleep before answering (a timeout when > the client's timeout)
    after_accept: bool = False  # process the request, then delay / fail the answer
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None
    headers: dict[str, str]


class AlpacaServer:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.orders: dict[str, dict[str, Any]] = {}  # id -> order JSON
        self.positions: dict[str, tuple[float, float]] = {}  # symbol -> (qty, avg price)
        self.prices: dict[str, float] = {"AAPL": 100.0, "MSFT": 50.0, "IBM": 80.0}
        self.cash = 100_000.0
        self.last_equity = 100_000.0
        self.market_open = True
        self.fill_mode = "fill"  # fill | partial (half, stays open) | hold (stays new)
        self.reject_symbols: dict[str, tuple[int, int, str]] = {}
        self.faults: dict[tuple[str, str], list[Fault]] = {}
        self.requests: list[Seen] = []
        self.listening = threading.Event()
        self._clients: set[Any] = set()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._loop = asyncio.new_event_loop()
        self._ws_ready = threading.Event()
        self.stream_url = ""

    # --- control ---------------------------------------------------------------------------

    def start(self) -> None:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        threading.Thread(target=self._run_ws, daemon=True).start()
        assert self._ws_ready.wait(10), "websocket server did not start"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._loop.call_soon_threadsafe(self._loop.stop)

    def fail(self, method: str, path: str, *faults: Fault) -> None:
        """Queue faults for the next requests `method path` (path without the query)."""
        self.faults.setdefault((method, path), []).extend(faults)

    def posted_orders(self) -> list[dict[str, Any]]:
        return [
            r.body or {} for r in self.requests if r.method == "POST" and r.path == "/v2/orders"
        ]

    def accepted_client_ids(self) -> list[str]:
        return [o["client_order_id"] for o in self.orders.values()]

    def execute(self, order_id: str, qty: float, price: float | None = None) -> None:
        """Fill `qty` more shares of an open order (partial_fill, or fill when complete)."""
        with self.lock:
            order = self.orders[order_id]
            px = price if price is not None else self.prices[order["symbol"]]
            filled = float(order["filled_qty"]) + qty
            done = filled >= float(order["qty"]) - 1e-9
            prev_avg = float(order["filled_avg_price"] or 0.0)
            avg = (prev_avg * float(order["filled_qty"]) + px * qty) / filled
            order.update(
                filled_qty=_num(filled),
                filled_avg_price=_num(avg),
                status="filled" if done else "partially_filled",
                updated_at=_now(),
                filled_at=_now() if done else None,
            )
            sign = 1.0 if order["side"] == "buy" else -1.0
            held, held_avg = self.positions.get(order["symbol"], (0.0, 0.0))
            new = held + sign * qty
            if abs(new) < 1e-9:
                self.positions.pop(order["symbol"], None)
            else:
                same_way = held * sign > 0
                new_avg = (abs(held) * held_avg + qty * px) / abs(new) if same_way else px
                self.positions[order["symbol"]] = (
                    new,
                    new_avg if abs(new) > abs(held) else held_avg,
                )
            self.cash -= sign * qty * px
            event = {
                "event": "fill" if done else "partial_fill",
                "execution_id": str(uuid.uuid4()),
                "order": dict(order),
                "position_qty": _num(new),
                "price": _num(px),
                "qty": _num(qty),
                "timestamp": _now(),
            }
        self.broadcast(event)

    def set_position(self, symbol: str, qty: float, avg: float) -> None:
        with self.lock:
            if qty:
                self.positions[symbol] = (qty, avg)
            else:
                self.positions.pop(symbol, None)

    def broadcast(self, data: dict[str, Any]) -> None:
        message = json.dumps({"stream": "trade_updates", "data": data})
        for ws in list(self._clients):
            asyncio.run_coroutine_threadsafe(ws.send(message), self._loop)

    # --- websocket -------------------------------------------------------------------------

    def _run_ws(self) -> None:
        from websockets.asyncio.server import serve

        asyncio.set_event_loop(self._loop)

        async def session(ws: Any) -> None:
            try:
                async for raw in ws:
                    msg = json.loads(raw)
                    data = msg.get("data") or {}
                    if msg.get("action") == "authenticate":
                        ok = data.get("key_id") == KEY_ID and data.get("secret_key") == SECRET
                        status = "authorized" if ok else "unauthorized"
                        await ws.send(
                            json.dumps(
                                {
                                    "stream": "authorization",
                                    "data": {"action": "authenticate", "status": status},
                                }
                            )
                        )
                        if not ok:
                            await ws.close()
                            return
                    elif msg.get("action") == "listen":
                        streams = [s for s in data.get("streams", []) if s == "trade_updates"]
                        await ws.send(
                            json.dumps({"stream": "listening", "data": {"streams": streams}})
                        )
                        if streams:
                            self._clients.add(ws)
                            self.listening.set()
            finally:
                self._clients.discard(ws)
                if not self._clients:
                    self.listening.clear()

        async def main() -> None:
            server = await serve(session, "127.0.0.1", 0)
            port = next(iter(server.sockets)).getsockname()[1]
            self.stream_url = f"ws://127.0.0.1:{port}/stream"
            self._ws_ready.set()

        self._loop.run_until_complete(main())
        self._loop.run_forever()

    # --- REST ------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                outer.requests.append(Seen(method, parts.path, query, body, dict(self.headers)))
                if (
                    self.headers.get("APCA-API-KEY-ID") != KEY_ID
                    or self.headers.get("APCA-API-SECRET-KEY") != SECRET
                ):
                    self._reply(401, {"code": 40110000, "message": "request is not authorized"})
                    return
                queue = outer.faults.get((method, parts.path))
                fault = queue.pop(0) if queue else None
                if fault and not fault.after_accept:
                    threading.Event().wait(fault.delay_s)
                    if fault.status:
                        self._error(fault)
                        return
                status, payload = outer._route(method, parts.path, query, body)
                if fault and fault.after_accept:
                    threading.Event().wait(fault.delay_s)
                    if fault.status:
                        self._error(fault)
                        return
                self._reply(status, payload)

            def _error(self, fault: Fault) -> None:
                payload = {"code": fault.code or fault.status * 100000, "message": fault.message}
                self._reply(fault.status, payload, fault.headers)

            def _reply(
                self, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
                data = b"" if payload is None else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def _route(
        self, method: str, path: str, query: dict[str, str], body: dict[str, Any] | None
    ) -> tuple[int, Any]:
        with self.lock:
            if path == "/v2/account" and method == "GET":
                return 200, self._account()
            if path == "/v2/clock" and method == "GET":
                return 200, {
                    "timestamp": "2024-01-05T10:00:00-05:00",
                    "is_open": self.market_open,
                    "next_open": "2024-01-08T09:30:00-05:00",
                    "next_close": "2024-01-05T16:00:00-05:00",
                }
            if path == "/v2/positions" and method == "GET":
                return 200, [self._position(s) for s in sorted(self.positions)]
            if path == "/v2/orders" and method == "POST":
                return self._submit(body or {})
            if path == "/v2/orders" and method == "GET":
                wanted = query.get("status", "open")
                rows = [
                    o
                    for o in self.orders.values()
                    if wanted == "all" or (o["status"] in OPEN) == (wanted == "open")
                ]
                return 200, rows
            if path == "/v2/orders:by_client_order_id" and method == "GET":
                cid = query.get("client_order_id")
                for o in self.orders.values():
                    if o["client_order_id"] == cid:
                        return 200, o
                return 404, {"code": 40410000, "message": f"order not found for {cid}"}
            if path.startswith("/v2/orders/") and method == "DELETE":
                return self._cancel(path.rsplit("/", 1)[1])
            return 404, {"code": 40410000, "message": "endpoint not found"}

    def _submit(self, body: dict[str, Any]) -> tuple[int, Any]:
        cid = body.get("client_order_id") or str(uuid.uuid4())
        if any(o["client_order_id"] == cid for o in self.orders.values()):
            return 422, {"code": 40010001, "message": "client_order_id must be unique"}
        symbol = body["symbol"]
        if symbol in self.reject_symbols:
            status, code, message = self.reject_symbols[symbol]
            return status, {"code": code, "message": message}
        now = _now()
        order = {
            "id": str(uuid.uuid4()),
            "client_order_id": cid,
            "created_at": now,
            "updated_at": now,
            "submitted_at": now,
            "filled_at": None,
            "expired_at": None,
            "canceled_at": None,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)),
            "symbol": symbol,
            "asset_class": "us_equity",
            "notional": None,
            "qty": str(body["qty"]),
            "filled_qty": "0",
            "filled_avg_price": None,
            "order_class": "",
            "order_type": body.get("type", "market"),
            "type": body.get("type", "market"),
            "side": body["side"],
            "time_in_force": body.get("time_in_force", "day"),
            "limit_price": None,
            "stop_price": None,
            "status": "accepted",
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
            "position_intent": "buy_to_open" if body["side"] == "buy" else "sell_to_close",
        }
        self.orders[order["id"]] = order
        answer = dict(order)
        order["status"] = "new"
        self.broadcast({"event": "new", "order": dict(order), "timestamp": now})
        if self.fill_mode == "fill":
            self.execute(order["id"], float(order["qty"]))
        elif self.fill_mode == "partial":
            self.execute(order["id"], float(order["qty"]) / 2)
        return 200, answer

    def _cancel(self, order_id: str) -> tuple[int, Any]:
        order = self.orders.get(order_id)
        if order is None:
            return 404, {"code": 40410000, "message": "order not found"}
        if order["status"] not in OPEN:
            return 422, {
                "code": 42210000,
                "message": f"order is not cancelable ({order['status']})",
            }
        order.update(status="canceled", canceled_at=_now(), updated_at=_now())
        self.broadcast({"event": "canceled", "order": dict(order), "timestamp": _now()})
        return 204, None

    def _position(self, symbol: str) -> dict[str, Any]:
        qty, avg = self.positions[symbol]
        price = self.prices.get(symbol, avg)
        return {
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)),
            "symbol": symbol,
            "exchange": "NASDAQ",
            "asset_class": "us_equity",
            "asset_marginable": True,
            "qty": _num(qty),
            "avg_entry_price": _num(avg),
            "side": "long" if qty > 0 else "short",
            "market_value": _num(qty * price),
            "cost_basis": _num(qty * avg),
            "unrealized_pl": _num(qty * (price - avg)),
            "unrealized_plpc": _num((price - avg) / avg if avg else 0.0),
            "unrealized_intraday_pl": "0",
            "unrealized_intraday_plpc": "0",
            "current_price": _num(price),
            "lastday_price": _num(price),
            "change_today": "0",
            "qty_available": _num(qty),
        }

    def _account(self) -> dict[str, Any]:
        value = sum(q * self.prices.get(s, a) for s, (q, a) in self.positions.items())
        equity = self.cash + value
        return {
            "id": "e6fe16f3-64a4-4921-8928-cadf02f92f98",
            "account_number": "PA3TESTLOCAL",
            "status": "ACTIVE",
            "crypto_status": "ACTIVE",
            "currency": "USD",
            "buying_power": _num(self.cash),
            "regt_buying_power": _num(self.cash),
            "non_marginable_buying_power": _num(self.cash),
            "cash": _num(self.cash),
            "accrued_fees": "0",
            "portfolio_value": _num(equity),
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "created_at": "2024-01-02T15:00:00Z",
            "trade_suspended_by_user": False,
            "multiplier": "1",
            "shorting_enabled": False,
            "equity": _num(equity),
            "last_equity": _num(self.last_equity),
            "long_market_value": _num(max(value, 0.0)),
            "short_market_value": "0",
            "initial_margin": "0",
            "maintenance_margin": "0",
            "last_maintenance_margin": "0",
            "sma": "0",
        }


def _num(x: float) -> str:
    """Alpaca sends decimals as strings."""
    return f"{x:.9f}".rstrip("0").rstrip(".") or "0"


def running_server() -> Iterator[AlpacaServer]:
    server = AlpacaServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
