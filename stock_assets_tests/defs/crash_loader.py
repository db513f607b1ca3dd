"""Run by test_ingest in a subprocess: load a range and SIGKILL ourselves mid-transaction.

Usage: python -m stock_assets_tests.defs.crash_loader DBNAME TOPIC_PREFIX PARTITION START END
The process dies after the first COPY chunk was written, before the commit: a real crash.
"""

from __future__ import annotations

import os
import signal
import sys

from confluent_kafka import Consumer, Producer

from stock_assets.defs.resources import KafkaResource
from stock_assets.lib import db, kafka_admin, tick_loader
from stock_assets.lib.settings import DbSettings
from stock_assets.lib.topics import DEAD_LETTER, TICKS


def main() -> None:
    dbname, prefix, partition, start, end = sys.argv[1:6]
    kafka = KafkaResource(topic_prefix=prefix)
    consumer = Consumer(kafka.consumer_config("crash-test"))
    producer = Producer(kafka_admin.client_config(kafka.settings()))
    rows_at_kill: list[int] = []

    def kill_after_first_chunk(rows: int) -> None:
        rows_at_kill.append(rows)
        sys.stdout.write(f"rows written before the kill: {rows}\n")
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    with db.connect(DbSettings.load(dbname=dbname)) as conn:
        tick_loader.load_ranges(
            conn,
            consumer,
            kafka.topic(TICKS),
            [tick_loader.OffsetRange(int(partition), int(start), int(end))],
            tick_loader.DeadLetters(producer, kafka.topic(DEAD_LETTER)),
            progress=kill_after_first_chunk,
        )


if __name__ == "__main__":
    main()
