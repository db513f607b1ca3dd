"""`produce --source history` through the real broker (private topic prefix) and a private
warehouse: the whole bundled history arrives once, whatever is restarted or wiped."""

from __future__ import annotations

import itertools
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, Producer

from stock_assets import cli
from stock_assets.lib import db, kafka_admin, tick_loader
from stock_assets.lib.calendar import TIMEZONE
from stock_assets.lib.marketdata import decode
from stock_assets.lib.settings import DbSettings, KafkaSettings
from stock_assets.lib.sources import history
from stock_assets.lib.topics import DEAD_LETTER, TICKS, topic_name
from stock_assets_tests.conftest import private_database, private_kafka
from stock_assets_tests.producer.conftest import high_watermark, read_topic

NY = TIMEZONE


@pytest.fixture
def warehouse(base_db_settings: DbSettings) -> Iterator[DbSettings]:
    with private_database(base_db_settings) as settings:
        yield settings


@pytest.fixture
def kafka() -> KafkaSettings:
    return private_kafka()


@pytest.fixture
def env(kafka: KafkaSettings, warehouse: DbSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCK_KAFKA_TOPIC_PREFIX", kafka.topic_prefix)
    monkeypatch.setenv("STOCK_DB_DBNAME", warehouse.dbname)


def produce_history(checkpoint: Path) -> None:
    assert (
        cli.main(["produce", "--source", "history", "--no-live", "--checkpoint", str(checkpoint)])
        == 0
    )


def ends(kafka: KafkaSettings) -> dict[int, int]:
    topic = topic_name(TICKS, kafka.topic_prefix)
    consumer = Consumer(kafka_admin.client_config(kafka, **{"group.id": uuid.uuid4().hex}))
    try:
        return {p: high_watermark(consumer, topic, p) for p in range(TICKS.partitions)}
    finally:
        consumer.close()


def load_warehouse(kafka: KafkaSettings, warehouse: DbSettings) -> int:
    """The raw_ticks asset's loader over every offset not in the ledger yet; rows loaded."""
    topic = topic_name(TICKS, kafka.topic_prefix)
    with db.connect(warehouse) as conn:
        loaded = dict(
            conn.execute(
                "SELECT partition, max(end_offset) FROM ingest.kafka_offsets"
                " WHERE topic = %s GROUP BY partition",
                (topic,),
            ).fetchall()
        )
        ranges = [
            tick_loader.OffsetRange(p, loaded.get(p, 0), end)
            for p, end in ends(kafka).items()
            if end > loaded.get(p, 0)
        ]
        conn.commit()  # end the ledger read: load_ranges begins and commits its own transaction
        if not ranges:
            return 0
        consumer = Consumer(
            kafka_admin.client_config(
                kafka, **{"group.id": uuid.uuid4().hex, "enable.auto.commit": False}
            )
        )
        try:
            result = tick_loader.load_ranges(
                conn,
                consumer,
                topic,
                ranges,
                tick_loader.DeadLetters(
                    Producer(kafka_admin.client_config(kafka)),
                    topic_name(DEAD_LETTER, kafka.topic_prefix),
                ),
            )
        finally:
            consumer.close()
        return result.rows


def warehouse_counts(warehouse: DbSettings) -> dict[str, int]:
    with db.connect(warehouse) as conn:
        rows = conn.execute("SELECT symbol, count(*) FROM market.raw_ticks GROUP BY symbol")
        return {str(s): int(n) for s, n in rows.fetchall()}


def per_symbol_day(frame: pl.DataFrame) -> Counter[tuple[str, str]]:
    days = frame.select(
        "symbol",
        day=pl.col("ts_us").cast(pl.Datetime("us", "UTC")).dt.convert_time_zone(NY).dt.date(),
    )
    return Counter((s, d.isoformat()) for s, d in days.iter_rows())


def test_history_covers_every_bundled_dataset(env, kafka: KafkaSettings, tmp_path: Path) -> None:
    started = time.time()
    produce_history(tmp_path / "history.ckpt")
    messages = read_topic(kafka, TICKS)
    ticks = [decode(m.value()) for m in messages]
    published = pl.DataFrame(
        {"symbol": [t.symbol for t in ticks], "ts_us": [t.ts_us for t in ticks]}
    )
    # the source frames, independently: every dataset's replay in its window
    sources = history.source_frames()
    expected = pl.concat([f.select("symbol", "ts_us") for f in sources.values()])
    assert per_symbol_day(published) == per_symbol_day(expected)
    assert sorted(sources) == ["daily", "hourly", "minute"]
    assert {t.source for t in ticks} == {"replay"}
    assert {t.symbol for t in ticks} == {"AAPL", "FB", "GOOG", "IBM", "MSFT"}
    # 2000-era event time must not become the Kafka timestamp (7-day retention would drop it)
    kinds = {m.timestamp()[0] for m in messages}
    stamps = [m.timestamp()[1] / 1000 for m in messages]
    assert kinds == {TIMESTAMP_CREATE_TIME}
    assert min(stamps) >= started - 5
    # per symbol: seq 1..n in event-time order (one checkpoint position covers all datasets)
    by_symbol: dict[str, list[tuple[int, int, int]]] = {}
    for m, t in zip(messages, ticks, strict=True):
        by_symbol.setdefault(t.symbol, []).append((m.offset(), t.seq, t.ts_us))
    for rows in by_symbol.values():
        rows.sort()
        assert [seq for _, seq, _ in rows] == list(range(1, len(rows) + 1))
        assert all(a[2] <= b[2] for a, b in itertools.pairwise(rows))


def test_history_is_published_and_loaded_once(
    env, kafka: KafkaSettings, warehouse: DbSettings, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "history.ckpt"
    produce_history(checkpoint)
    first = ends(kafka)
    total = history.history_frame().height
    assert sum(first.values()) == total
    assert load_warehouse(kafka, warehouse) == total
    counts = warehouse_counts(warehouse)

    produce_history(checkpoint)  # a restart: the checkpoint says everything is there
    assert ends(kafka) == first
    assert load_warehouse(kafka, warehouse) == 0
    assert warehouse_counts(warehouse) == counts

    checkpoint.unlink()  # the checkpoint wiped: the warehouse still says it
    produce_history(checkpoint)
    assert ends(kafka) == first
    assert warehouse_counts(warehouse) == counts

    # raw ticks expired (retention), the daily bars of the last history sessions kept
    end = history.history_end(history.history_frame())
    with db.connect(warehouse) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM market.raw_ticks")
        cur.executemany(
            "INSERT INTO market.bars_daily"
            " (symbol, session_date, open, high, low, close, volume, trade_count)"
            " VALUES (%s, %s, 1, 1, 1, 1, 1, 1)",
            [(s, end.last_session[s]) for s in end.symbols],
        )
        conn.commit()
    checkpoint.unlink()
    produce_history(checkpoint)
    assert ends(kafka) == first

    # nothing says it any more (checkpoint and warehouse both gone): published again
    with db.connect(warehouse) as conn:
        conn.execute("DELETE FROM market.bars_daily")
        conn.commit()
    checkpoint.unlink()
    produce_history(checkpoint)
    assert sum(ends(kafka).values()) == 2 * total


def test_an_interrupted_history_resumes_where_it_stopped(
    env, kafka: KafkaSettings, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "history.ckpt"
    code = cli.main(
        ["produce", "--source", "history", "--no-live", "--limit", "50000",
         "--checkpoint", str(checkpoint)]
    )  # fmt: skip
    assert code == 0
    assert sum(ends(kafka).values()) == 50_000
    produce_history(checkpoint)
    ticks = [decode(m.value()) for m in read_topic(kafka, TICKS)]
    assert len(ticks) == history.history_frame().height
    assert len({(t.symbol, t.seq) for t in ticks}) == len(ticks)
