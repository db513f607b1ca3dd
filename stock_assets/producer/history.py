"""`stockctl produce --source history`: the bundled history as one backfill, then live.

What is already published is decided per symbol by the highest seq known to be on the topic:
the producer's checkpoint (acknowledged deliveries) or, when that file is gone or behind, the
warehouse (`market.raw_ticks`, the newest replay/simulator tick per symbol; or, once raw ticks
have expired, the daily bar of the symbol's last history session). The higher one wins.
So a restart, or a wiped checkpoint next to a loaded warehouse, publishes nothing twice. (Were both
lost while Kafka still holds the history, it is published again: the offset ledger keeps the
tables exact, only Kafka traffic doubles.)

Then the live continuation (`history.live_ticks`) at the paced speed: same seq line per symbol,
event time strictly after the history's last bar, never ahead of the wall clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import psycopg

from stock_assets.lib import db
from stock_assets.lib.marketdata import Tick
from stock_assets.lib.settings import ConfigError, DbSettings
from stock_assets.lib.sources import history, replay
from stock_assets.producer.service import MarketDataProducer

log = logging.getLogger("stock_assets.producer")

SOURCES = (history.HISTORY_SOURCE, history.LIVE_SOURCE)


@dataclass(frozen=True)
class HistoryOptions:
    seed: int = 0
    ticks_per_bar: int = 8
    speed: float = 3600.0
    live_rate: float = history.DEFAULT_LIVE_RATE
    live: bool = True


def warehouse_positions(settings: DbSettings, end: history.HistoryEnd) -> dict[str, int]:
    """Per symbol, what the warehouse proves published: the seq of its newest history/live tick
    in market.raw_ticks (an index scan), or the whole history when the daily bar of its last
    history session exists (raw ticks expire after a year; the bars stay)."""
    symbols = end.symbols
    with db.connect(settings) as conn:
        rows = conn.execute(
            "SELECT s.symbol,"
            " (SELECT t.seq FROM market.raw_ticks t"
            "   WHERE t.symbol = s.symbol AND t.source = ANY(%s) ORDER BY t.ts DESC LIMIT 1),"
            " EXISTS (SELECT 1 FROM market.bars_daily b"
            "   WHERE b.symbol = s.symbol AND b.session_date = s.last_session)"
            " FROM unnest(%s::text[], %s::date[]) AS s(symbol, last_session)",
            (list(SOURCES), symbols, [end.last_session[s] for s in symbols]),
        ).fetchall()
    positions = {}
    for symbol, seq, has_last_bar in rows:
        known = max(-1 if seq is None else int(seq), end.last_seq[symbol] if has_last_bar else -1)
        if known >= 0:
            positions[str(symbol)] = known
    return positions


def published_positions(
    checkpoint: Mapping[str, int], settings: DbSettings | None, end: history.HistoryEnd
) -> tuple[dict[str, int], str]:
    """max(checkpoint, warehouse) per symbol, and which of them said so (for the log)."""
    symbols = end.symbols
    positions = {s: checkpoint[s] for s in symbols if s in checkpoint}
    origin = "checkpoint" if positions else "nothing"
    if settings is None:
        return positions, origin
    try:
        stored = warehouse_positions(settings, end)
    except (psycopg.Error, ConfigError) as exc:
        log.warning("warehouse not readable (%s): trusting the checkpoint alone", exc)
        return positions, origin
    if any(stored.get(s, -1) > positions.get(s, -1) for s in symbols):
        origin = "warehouse" if origin == "nothing" else "checkpoint+warehouse"
    for s, seq in stored.items():
        positions[s] = max(positions.get(s, -1), seq)
    return positions, origin


def history_records(
    producer: MarketDataProducer,
    options: HistoryOptions,
    warehouse: DbSettings | None = None,
) -> Iterator[Tick]:
    """The records to send: the unpublished part of the history (flat out), then live."""
    frame = history.history_frame(options.seed, options.ticks_per_bar)
    end = history.history_end(frame)
    positions, origin = published_positions(producer.checkpoint.ticks, warehouse, end)
    pending = history.unpublished(frame, positions)
    if pending.height == 0:
        log.info("history: all %d ticks already published (per %s)", frame.height, origin)
    else:
        log.info(
            "history: publishing %d of %d ticks (%s; already published per %s)",
            pending.height,
            frame.height,
            ", ".join(sorted(set(pending["symbol"].to_list()))),
            origin,
        )
        started = time.monotonic()
        yield from replay.ticks_from_frame(pending, history.HISTORY_SOURCE)
        remaining = producer.flush()
        producer.save_checkpoint()
        log.info(
            "history: %d ticks published in %.1fs (%d still in flight); HISTORY_PUBLISHED",
            pending.height,
            time.monotonic() - started,
            remaining,
        )
    if not options.live:
        return
    log.info(
        "live: simulator continuing %s from %s at %gx, %g trades per trading second",
        ", ".join(end.symbols),
        replay_time(end.end_us),
        options.speed,
        options.live_rate,
    )
    yield from history.live_ticks(
        end,
        positions,
        seed=options.seed,
        rate=options.live_rate,
        speed=options.speed,
        sleep=producer.wait,
        stopping=lambda: producer.stopping,
    )


def replay_time(stamp_us: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(stamp_us / 1e6, UTC).isoformat(timespec="seconds")
