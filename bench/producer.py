"""Producer service vs a bare confluent-kafka loop: messages/s for the same ticks, same config.

Both sides produce the same 300k simulated ticks into a bench-private topic prefix (deleted at the
end). The bare loop gets the ticks already serialized (encode + key done outside the timing) and
only counts delivery reports; the service gets Tick structs and does its full path: validate,
encode, route, produce with a delivery callback. Rounds alternate (bare, service, …) and the
median of each side is compared. Target: service / bare >= 0.7. Writes bench/results/producer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaError, Message, Producer

from stock_assets.lib import kafka_admin
from stock_assets.lib.marketdata import Tick, encode, key
from stock_assets.lib.settings import KafkaSettings
from stock_assets.lib.sources.simulator import simulate_ticks
from stock_assets.lib.topics import ALL_TOPICS, TICKS, topic_name
from stock_assets.producer.service import MarketDataProducer, producer_config

RESULTS = Path(__file__).resolve().parent / "results" / "producer.json"
TARGET = 0.7


def bare_loop(settings: KafkaSettings, values: list[bytes], keys: list[bytes]) -> dict[str, Any]:
    """Plain produce/poll/flush over pre-serialized messages, delivery reports counted."""
    topic = topic_name(TICKS, settings.topic_prefix)
    counts = {"delivered": 0, "failed": 0}

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        counts["failed" if err else "delivered"] += 1

    producer = Producer(producer_config(settings, on_delivery=on_delivery))

    started = time.perf_counter()
    for i, (k, v) in enumerate(zip(keys, values, strict=True)):
        while True:
            try:
                producer.produce(topic, v, k)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    left = producer.flush(60)
    elapsed = time.perf_counter() - started
    return {**counts, "undelivered": left, "seconds": elapsed, "msgs_per_s": len(values) / elapsed}


def service_run(settings: KafkaSettings, ticks: list[Tick]) -> dict[str, Any]:
    """The producer service's full path over Tick structs."""
    service = MarketDataProducer(settings, source="bench", progress_every_s=3600)
    started = time.perf_counter()
    for tick in ticks:
        service.send(tick)
    stats = service.close()
    elapsed = time.perf_counter() - started
    return {
        "delivered": stats.delivered,
        "failed": stats.failed,
        "undelivered": stats.undelivered_at_close,
        "seconds": elapsed,
        "msgs_per_s": len(ticks) / elapsed,
    }


def delete_topics(settings: KafkaSettings) -> None:
    names = [topic_name(spec, settings.topic_prefix) for spec in ALL_TOPICS]
    client = kafka_admin.admin(settings)  # keep a reference: futures fail if it is collected
    futures = client.delete_topics(names, operation_timeout=30)
    for future in futures.values():
        future.result(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    settings = KafkaSettings.load(topic_prefix=f"bench-{uuid.uuid4().hex[:8]}.")
    kafka_admin.ensure_topics(settings)
    ticks = list(simulate_ticks(seed=42, limit=args.messages))
    values = [encode(t) for t in ticks]
    keys = [key(t) for t in ticks]
    bare: list[dict[str, Any]] = []
    service: list[dict[str, Any]] = []
    try:
        for round_ in range(args.rounds):
            bare.append(bare_loop(settings, values, keys))
            service.append(service_run(settings, ticks))
            print(
                f"round {round_ + 1}: bare {bare[-1]['msgs_per_s']:,.0f} msgs/s, "
                f"service {service[-1]['msgs_per_s']:,.0f} msgs/s"
            )
    finally:
        delete_topics(settings)

    for run in bare + service:
        if run["delivered"] != args.messages or run["failed"] or run["undelivered"]:
            print(f"incomplete delivery: {run}", file=sys.stderr)
            return 1
    bare_rate = statistics.median(r["msgs_per_s"] for r in bare)
    service_rate = statistics.median(r["msgs_per_s"] for r in service)
    ratio = service_rate / bare_rate
    result = {
        "benchmark": "producer",
        "messages": args.messages,
        "rounds": args.rounds,
        "bare_msgs_per_s": round(bare_rate),
        "service_msgs_per_s": round(service_rate),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET,
        "meets_target": ratio >= TARGET,
        "config": {k: v for k, v in producer_config(settings).items() if k != "bootstrap.servers"},
        "runs": {"bare": bare, "service": service},
        "environment": {
            "python": platform.python_version(),
            "confluent_kafka": confluent_kafka.version()[0],
            "librdkafka": confluent_kafka.libversion()[0],
            "cpus": os.cpu_count(),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"bare {bare_rate:,.0f} msgs/s | service {service_rate:,.0f} msgs/s | "
        f"ratio {ratio:.2f} (target >= {TARGET}) -> {RESULTS}"
    )
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
