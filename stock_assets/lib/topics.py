"""Kafka topics: the one place that names them, with their partition counts and retention."""

from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    description: str

    def config(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": "delete"}


TICKS = TopicSpec("market.ticks", 6, 7 * DAY_MS, "trades/quotes keyed by symbol")
BARS = TopicSpec("market.bars", 3, 30 * DAY_MS, "provider OHLCV bars keyed by symbol")
DEAD_LETTER = TopicSpec("market.dlq", 1, 30 * DAY_MS, "records that failed validation, with reason")

ALL_TOPICS: tuple[TopicSpec, ...] = (TICKS, BARS, DEAD_LETTER)


def topic_name(spec: TopicSpec, prefix: str = "") -> str:
    """Physical topic name: the configured prefix (namespaces tests and environments) + name."""
    return f"{prefix}{spec.name}"
