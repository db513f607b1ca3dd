"""Real market history for the search tests, loaded into a private warehouse database.

bokeh_sampledata's daily prices (Quandl WIKI) for four symbols, 2003-01..2005-06, put on today's
share basis with its adj_close/close factor, become market.bars_daily; the platform's own
indicator and signal code turns them into analytics.indicators and analytics.signals. The
search engine is then compared with SQL over exactly these rows.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import date

import polars as pl
import psycopg
from bokeh_sampledata import stocks

from stock_assets.lib import frames, indicators, signals
from stock_assets.lib.search.client import make_client
from stock_assets.lib.search.templates import DATASETS
from stock_assets.lib.settings import SearchSettings
from stock_assets_tests.conftest import SESSION_ID

SYMBOLS = ("AAPL", "GOOG", "IBM", "MSFT")
FIRST = date(2003, 1, 2)
LAST = date(2005, 6, 30)


def daily_bars() -> pl.DataFrame:
    parts = []
    for symbol in SYMBOLS:
        raw = pl.DataFrame(getattr(stocks, symbol)).with_columns(
            symbol=pl.lit(symbol), session_date=pl.col("date").str.to_date()
        )
        parts.append(raw.filter(pl.col("session_date").is_between(FIRST, LAST)))
    df = pl.concat(parts).sort("symbol", "session_date")
    factor = pl.col("adj_close") / pl.col("close")
    df = df.select(
        "symbol",
        "session_date",
        *[(pl.col(c) * factor).alias(c) for c in ("open", "high", "low", "close")],
        (pl.col("volume") / factor).alias("volume"),
    )
    return df.with_columns(
        vwap=(pl.col("high") + pl.col("low") + pl.col("close")) / 3,
        return_1d=pl.col("close") / pl.col("close").shift(1).over("symbol") - 1,
        realized_vol=pl.lit(None, dtype=pl.Float64),
        trade_count=pl.lit(0, dtype=pl.Int32),
    )


def load_history(conn: psycopg.Connection) -> dict[str, int]:
    """Fill bars_daily, indicators and signals; returns row counts."""
    bars = daily_bars()
    ind = indicators.compute_indicators(bars)
    sig = signals.generate_signals(ind)
    with conn.transaction():
        counts = {
            "bars_daily": frames.copy_frame(conn, "market.bars_daily", bars),
            "indicators": frames.copy_frame(conn, "analytics.indicators", ind),
            "signals": frames.copy_frame(conn, "analytics.signals", sig),
        }
    return counts


def private_search_settings() -> SearchSettings:
    """The real engine with an index prefix no other test (or session) uses."""
    return SearchSettings.load(index_prefix=f"test-{SESSION_ID}-{uuid.uuid4().hex[:6]}")


def drop_prefix(settings: SearchSettings) -> None:
    """Delete the prefix's indices and templates (by name: wildcard deletes may be refused)."""
    client = make_client(settings)
    prefix = settings.index_prefix
    for name in client.indices.get(index=f"{prefix}-*", allow_no_indices=True):
        client.indices.delete(index=name)
    for dataset in DATASETS:
        client.indices.delete_index_template(name=dataset.template_name(prefix), ignore=404)


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers: a hung engine."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with suppress(OSError):
                accepted.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        server.close()
        for conn in accepted:
            conn.close()


class StoppingProxy:
    """Forwards to the real engine until the client starts its Nth bulk request, then goes away.

    At that moment every connection is closed and the listening socket too, so the request in
    flight fails and every retry is refused: the engine "stopped" in the middle of a run.
    """

    def __init__(self, target_port: int, stop_at_bulk: int) -> None:
        self.target_port = target_port
        self.stop_at_bulk = stop_at_bulk
        self.bulks = 0
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        self.port = int(self._server.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client = self._server.accept()[0]
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                if from_client and b"/_bulk" in data:
                    self.bulks += 1
                    if self.bulks >= self.stop_at_bulk:
                        self.stop()
                        return
                dst.sendall(data)
        with suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        self.stopped.set()
        self._server.close()
        with self._lock:
            for sock in self._sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
