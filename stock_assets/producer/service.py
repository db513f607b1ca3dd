"""The producer service: valid market data into Kafka, invalid records into the dead-letter topic.

Guarantees: idempotent producer (acks=all, enable.idempotence) with lz4 compression and a short
linger; every record either gets a delivery report or is counted as failed (including what is still
queued when the flush at shutdown times out), so nothing disappears silently. Records that fail
`marketdata.validate` (or raw payloads that fail `decode`) go to DEAD_LETTER with the original
payload bytes as value and headers dlq.reason / dlq.stage / dlq.source / dlq.topic.

With `track_acks`, the service remembers per symbol the highest acknowledged position (tick seq,
bar ts_us) and persists it in a checkpoint file; a restarted producer resumes after it. A symbol
whose delivery failed stops advancing, so a resume re-sends rather than skips.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import msgspec
from confluent_kafka import KafkaError, Message, Producer

from stock_assets.lib.kafka_admin import client_config
from stock_assets.lib.marketdata import InvalidRecord, Record, Tick, decode, encode, validate
from stock_assets.lib.settings import ConfigError, KafkaSettings
from stock_assets.lib.topics import BARS, DEAD_LETTER, TICKS, topic_name

log = logging.getLogger("stock_assets.producer")

STAGE = b"producer"
POLL_EVERY = 1_000  # serve delivery callbacks every N sends
STOP_CHECK_EVERY = 64  # look at the stop flag every N records
TIME_CHECK_EVERY = 4_096  # look at the clock every N sends


class _Position(msgspec.Struct):
    """What a delivery report needs from a record's JSON to advance the checkpoint."""

    type: str
    symbol: str
    ts_us: int
    seq: int = -1


_position_decoder = msgspec.json.Decoder(_Position)


def producer_config(settings: KafkaSettings, **overrides: Any) -> dict[str, Any]:
    """The service's librdkafka configuration (the benchmark's bare loop uses the same)."""
    return client_config(
        settings,
        **{
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": "lz4",
            "linger.ms": 10,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 500_000,
            "delivery.timeout.ms": 120_000,
            **overrides,
        },
    )


@dataclass
class ProducerStats:
    """Counters; `failed` > 0 means some record is not known to be on a topic."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    dead_lettered: int = 0
    dlq_delivered: int = 0
    undelivered_at_close: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.undelivered_at_close == 0

    def rate(self) -> float:
        elapsed = (self.finished or time.monotonic()) - self.started
        return self.delivered / elapsed if elapsed > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "msgs_per_s": round(self.rate(), 1)}


@dataclass
class Checkpoint:
    """Highest acknowledged position per symbol: tick seq and bar ts_us."""

    ticks: dict[str, int] = field(default_factory=dict)
    bars: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        return cls(ticks=dict(data.get("ticks", {})), bars=dict(data.get("bars", {})))

    def save(self, path: Path) -> None:
        """Atomic replace, so a crash never leaves a torn file."""
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps({"ticks": self.ticks, "bars": self.bars}, sort_keys=True))
        os.replace(tmp, path)

    def is_new(self, record: Record) -> bool:
        """True when `record` lies after the acknowledged position of its symbol."""
        if isinstance(record, Tick):
            return record.seq > self.ticks.get(record.symbol, -1)
        return record.ts_us > self.bars.get(record.symbol, -1)


class MarketDataProducer:
    """Wraps a confluent-kafka Producer: validate → route → produce, with delivery accounting."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        source: str,
        config: dict[str, Any] | None = None,
        progress_every_s: float = 10.0,
        checkpoint_path: Path | None = None,
        track_acks: bool = False,
        flush_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        prefix = settings.topic_prefix
        self.ticks_topic = topic_name(TICKS, prefix)
        self.bars_topic = topic_name(BARS, prefix)
        self.dlq_topic = topic_name(DEAD_LETTER, prefix)
        self.source = source
        self._source_header = source.encode()
        self._producer = Producer(
            producer_config(settings, on_delivery=self._on_delivery, **(config or {}))
        )
        self.stats = ProducerStats()
        self.progress_every_s = progress_every_s
        self.flush_timeout_s = flush_timeout_s
        self.clock = clock
        self.checkpoint_path = checkpoint_path
        self.track_acks = track_acks or checkpoint_path is not None
        self.checkpoint = Checkpoint.load(checkpoint_path) if checkpoint_path else Checkpoint()
        self._blocked: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._closed = False
        self._last_report = clock()
        self._last_delivered = 0
        self._errors_logged = 0

    def check_topics(self, timeout_s: float = 10.0) -> None:
        """Fail fast (ConfigError) when a target topic is missing: librdkafka would otherwise
        hold every message until delivery.timeout.ms expires."""
        metadata = self._producer.list_topics(timeout=timeout_s)
        wanted = (self.ticks_topic, self.bars_topic, self.dlq_topic)
        missing = [t for t in wanted if t not in metadata.topics]
        if missing:
            raise ConfigError(
                f"Kafka topics missing: {', '.join(missing)} (create them: `stockctl topics`)"
            )

    # ---- sending -------------------------------------------------------------------------------

    def send(self, record: Record) -> bool:
        """Validate and produce one record (invalid: to the DLQ); True if sent to its topic."""
        try:
            validate(record)
        except InvalidRecord as exc:
            self.dead_letter(encode(record), exc.reason, record.symbol.encode(), record)
            return False
        self._produce(self._topic_for(record), encode(record), record.symbol.encode())
        return True

    def send_raw(self, payload: bytes) -> bool:
        """Decode + validate a serialized record; the original bytes go to its topic or the DLQ."""
        try:
            record = decode(payload)
        except InvalidRecord as exc:
            self.dead_letter(payload, exc.reason, None, None)
            return False
        self._produce(self._topic_for(record), payload, record.symbol.encode())
        return True

    def send_all(self, records: Iterable[Record], limit: int | None = None) -> int:
        """The hot loop of `run`: `send` inlined with local bindings; stops on request/limit."""
        produce, poll = self._producer.produce, self._producer.poll
        ticks_topic, bars_topic = self.ticks_topic, self.bars_topic
        stopping = self._stop.is_set
        stats = self.stats
        budget = -1 if limit is None else limit
        count = 0
        for record in records:
            if count == budget or (count % STOP_CHECK_EVERY == 0 and stopping()):
                break
            count += 1
            try:
                validate(record)
            except InvalidRecord as exc:
                self.dead_letter(encode(record), exc.reason, record.symbol.encode(), record)
                continue
            topic = ticks_topic if type(record) is Tick else bars_topic
            try:
                produce(topic, encode(record), record.symbol.encode())
            except BufferError:  # local queue full: the slow path waits for delivery reports
                self._produce(topic, encode(record), record.symbol.encode())
                continue
            stats.sent += 1
            if count % POLL_EVERY == 0:
                poll(0)
                if count % TIME_CHECK_EVERY == 0:
                    self._maybe_report()
        return count

    def dead_letter(
        self, payload: bytes, reason: str, key: bytes | None, record: Record | None
    ) -> None:
        """Route a rejected payload to DEAD_LETTER with the reason in headers."""
        intended = self._topic_for(record) if record is not None else ""
        headers: list[tuple[str, str | bytes | None]] = [
            ("dlq.reason", reason.encode()),
            ("dlq.stage", STAGE),
            ("dlq.source", self._source_header),
            ("dlq.topic", intended.encode()),
        ]
        self.stats.dead_lettered += 1
        self._produce(self.dlq_topic, payload, key, headers, self._on_dlq_delivery)

    def _topic_for(self, record: Record) -> str:
        return self.ticks_topic if isinstance(record, Tick) else self.bars_topic

    def _produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        callback: Callable[[KafkaError | None, Message], None] | None = None,
    ) -> None:
        """produce() that waits out a full local queue; DLQ records count separately."""
        producer = self._producer
        extra: dict[str, Any] = {"on_delivery": callback} if callback else {}
        while True:
            try:
                producer.produce(topic, value, key, headers=headers, **extra)
                break
            except BufferError:
                producer.poll(0.05)
        if topic != self.dlq_topic:
            self.stats.sent += 1

    # ---- delivery reports ----------------------------------------------------------------------

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        """The producer-wide delivery callback (one per message, no per-message closure)."""
        if err is None:
            self.stats.delivered += 1
            if self.track_acks:
                self._ack(msg, ok=True)
        else:
            if self.track_acks:
                self._ack(msg, ok=False)
            self._failed(err, msg)

    def _ack(self, msg: Message, ok: bool) -> None:
        """Advance the symbol's acknowledged position; a failure freezes it."""
        position = _position_decoder.decode(msg.value() or b"{}")
        kind = "ticks" if position.type == "tick" else "bars"
        if not ok:
            self._blocked.add((kind, position.symbol))
            return
        if (kind, position.symbol) in self._blocked:
            return
        acked = self.checkpoint.ticks if kind == "ticks" else self.checkpoint.bars
        value = position.seq if kind == "ticks" else position.ts_us
        if value > acked.get(position.symbol, -1):
            acked[position.symbol] = value

    def _on_dlq_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.stats.dlq_delivered += 1
        else:
            self._failed(err, msg)

    def _failed(self, err: KafkaError, msg: Message) -> None:
        self.stats.failed += 1
        if self._errors_logged < 10:
            self._errors_logged += 1
            log.error("delivery failed to %s: %s", msg.topic(), err)

    # ---- lifecycle -----------------------------------------------------------------------------

    def request_stop(self, *_: object) -> None:
        """Ask `run` to stop after the current record (signal-handler compatible)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> None:
        """Sleep while serving delivery reports and progress; returns early on stop."""
        deadline = self.clock() + seconds
        while not self._stop.is_set():
            remaining = deadline - self.clock()
            if remaining <= 0:
                break
            self._producer.poll(min(remaining, 0.5))
            self._maybe_report()

    def run(
        self, records: Iterable[Record], limit: int | None = None, *, handle_signals: bool = True
    ) -> ProducerStats:
        """Send `records` (at most `limit`) until exhausted or stopped, then flush and close."""
        restore = self._install_signals() if handle_signals else {}
        try:
            self.send_all(records, limit)
        finally:
            self.close()
            for signum, handler in restore.items():
                signal.signal(signum, handler)
        return self.stats

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._on_signal)
        return previous

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("%s received: stopping, flushing in-flight messages", signal.Signals(signum).name)
        self._stop.set()

    def _maybe_report(self, force: bool = False) -> None:
        now = self.clock()
        elapsed = now - self._last_report
        if not force and elapsed < self.progress_every_s:
            return
        stats = self.stats
        rate = (stats.delivered - self._last_delivered) / elapsed if elapsed > 0 else 0.0
        log.info(
            "progress source=%s sent=%d delivered=%d failed=%d dlq=%d in_flight=%d "
            "rate=%.0f msgs/s",
            self.source,
            stats.sent,
            stats.delivered,
            stats.failed,
            stats.dead_lettered,
            len(self._producer),
            rate,
        )
        self._last_report, self._last_delivered = now, stats.delivered
        self.save_checkpoint()

    def save_checkpoint(self) -> None:
        if self.checkpoint_path is not None:
            self.checkpoint.save(self.checkpoint_path)

    def flush(self, timeout_s: float | None = None) -> int:
        """Wait for delivery reports; returns how many messages are still queued."""
        return int(self._producer.flush(self.flush_timeout_s if timeout_s is None else timeout_s))

    def close(self) -> ProducerStats:
        """Flush (bounded), count what is left as undelivered, persist the checkpoint."""
        if self._closed:
            return self.stats
        self._closed = True
        remaining = self.flush()
        self.stats.undelivered_at_close = remaining
        self.stats.finished = time.monotonic()
        if remaining:
            log.error(
                "%d messages still undelivered after %.0fs flush", remaining, self.flush_timeout_s
            )
        self.save_checkpoint()
        self._maybe_report(force=True)
        log.info("producer closed: %s", json.dumps(self.stats.as_dict()))
        return self.stats


def resume_filter(records: Iterable[Record], checkpoint: Checkpoint) -> Iterable[Record]:
    """Skip records at or before the checkpoint's acknowledged positions."""
    return (r for r in records if checkpoint.is_new(r))
