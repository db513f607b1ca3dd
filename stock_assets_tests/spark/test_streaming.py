"""The live-bars streaming job end to end: real Kafka → Spark → real TimescaleDB.

One streaming history, checked at each step (ticks are AAPL's real minute bars replayed):
  1. run A (in-process, local[2], availableNow): sessions 1-2 and half of the first minute of
     session 3 → bars equal polars' bars of the same ticks;
  2. run B from the same checkpoint: the rest of that minute and session 3, out-of-order ticks
     still inside the watermark, late ticks behind it, malformed records → bars equal polars'
     bars of all on-time ticks (the split minute included: window state survived the restart),
     no trade counted twice, late and malformed ticks counted in the ledger, malformed in the DLQ;
  3. run C: `python -m spark.streaming --available-now` on the standalone cluster, same
     checkpoint, session 4 → still equal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence

import polars as pl
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from pyspark.sql import SparkSession

from spark.session import REPO_ROOT
from spark.streaming import LiveBarsJob, StreamingSettings
from stock_assets.lib import db, kafka_admin, marketdata
from stock_assets.lib.settings import DbSettings, KafkaSettings
from stock_assets.lib.sources.replay import replay_frame, ticks_from_frame
from stock_assets.lib.topics import DEAD_LETTER, TICKS, topic_name
from stock_assets_tests.conftest import private_database, private_kafka

RUN_TIMEOUT_S = 240
LATE_SEQ = 10**9
MALFORMED = [
    (b"AAPL", b"not json"),
    (
        b"AAPL",
        b'{"type":"tick","symbol":"aapl","ts_us":1,"price":1,"size":1,"source":"t",'
        b'"seq":1,"schema_version":1}',
    ),
    (
        b"AAPL",
        b'{"type":"tick","symbol":"AAPL","ts_us":1,"price":1,"size":1,"source":"t",'
        b'"seq":1,"schema_version":9}',
    ),
]


@pytest.fixture(scope="module")
def stream_db(base_db_settings: DbSettings) -> Iterator[DbSettings]:
    with private_database(base_db_settings) as settings:
        yield settings


@pytest.fixture(scope="module")
def stream_kafka() -> KafkaSettings:
    return private_kafka()


def produce(
    settings: KafkaSettings, frame: pl.DataFrame, raw: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    producer = Producer(kafka_admin.client_config(settings, **{"acks": "all", "linger.ms": 20}))
    topic = topic_name(TICKS, settings.topic_prefix)
    for tick in ticks_from_frame(frame):
        producer.produce(topic, key=marketdata.key(tick), value=marketdata.encode(tick))
        producer.poll(0)
    for key, value in raw:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def polars_bars(ticks: pl.DataFrame) -> pl.DataFrame:
    """The expected bars, computed independently of Spark."""
    return (
        ticks.sort("ts_us", "seq")
        .with_columns(ts=(pl.col("ts_us") // 60_000_000) * 60_000_000)
        .group_by("symbol", "ts")
        .agg(
            open=pl.col("price").first(),
            high=pl.col("price").max(),
            low=pl.col("price").min(),
            close=pl.col("price").last(),
            volume=pl.col("size").sum(),
            vwap=(pl.col("price") * pl.col("size")).sum() / pl.col("size").sum(),
            trade_count=pl.len().cast(pl.Int64),
        )
        .sort("symbol", "ts")
    )


def table_bars(settings: DbSettings) -> pl.DataFrame:
    with db.connect(settings) as conn:
        rows = conn.execute(
            "SELECT symbol, (extract(epoch FROM ts) * 1000000)::bigint, open, high, low, close,"
            " volume, vwap, trade_count FROM market.live_bars_1m ORDER BY symbol, ts"
        ).fetchall()
    return pl.DataFrame(
        rows,
        schema=["symbol", "ts", "open", "high", "low", "close", "volume", "vwap", "trade_count"],
        orient="row",
    ).with_columns(pl.col("trade_count").cast(pl.Int64))


def assert_bars_equal(actual: pl.DataFrame, expected: pl.DataFrame) -> None:
    assert actual.height == expected.height
    assert actual.select("symbol", "ts").equals(expected.select("symbol", "ts"))
    assert actual["trade_count"].equals(expected["trade_count"])
    for c in ("open", "high", "low", "close", "volume", "vwap"):
        diff = ((actual[c] - expected[c]).abs() / expected[c].abs().clip(1e-9)).max()
        assert diff is not None and diff < 1e-9, f"column {c} differs (max rel {diff})"


def ledger(settings: DbSettings) -> dict[str, int]:
    with db.connect(settings) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT query_id), count(*), sum(input_rows), sum(valid_ticks),"
            " sum(late_ticks), sum(malformed) FROM market.live_bars_batches"
        ).fetchone()
    assert row is not None
    keys = ("queries", "batches", "input_rows", "valid", "late", "malformed")
    return {k: int(v or 0) for k, v in zip(keys, row, strict=True)}


def run_available_now(job: LiveBarsJob) -> None:
    query = job.start(available_now=True)
    assert query.awaitTermination(RUN_TIMEOUT_S), "streaming run did not finish in time"
    assert query.exception() is None
    assert job.drain_ledger(RUN_TIMEOUT_S), "batches not recorded in time"
    assert not job.ledger_errors


@pytest.fixture(scope="module")
def history() -> dict[str, pl.DataFrame]:
    ticks = replay_frame("minute", ["AAPL"], seed=5, ticks_per_bar=8)
    day = pl.from_epoch("ts_us", time_unit="us").dt.date()
    days = ticks.select(day.unique().sort()).to_series().to_list()
    by_day = [ticks.filter(day == d) for d in days[:4]]
    sessions_12 = pl.concat(by_day[:2])
    # A ends in the middle of session 3's first minute; B starts in it
    part_a = pl.concat([sessions_12, by_day[2].head(4)])
    part_b = by_day[2].slice(4)
    last_a = part_a["ts_us"].max()
    assert isinstance(last_a, int)
    # re-prints of A's last minute (inside the watermark) and of its first hour (behind it)
    on_time = part_a.filter(pl.col("ts_us") >= last_a - 60_000_000).head(3)
    late = part_a.head(5)
    shift = pl.col("seq") + LATE_SEQ
    return {
        "a": part_a,
        "b": part_b,
        "on_time": on_time.with_columns(seq=shift, price=pl.col("price") * 1.001),
        "late": late.with_columns(seq=shift, price=pl.col("price") * 0.5),
        "c": by_day[3],
    }


@pytest.fixture(scope="module")
def job(
    spark: SparkSession,
    stream_db: DbSettings,
    stream_kafka: KafkaSettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveBarsJob]:
    settings = StreamingSettings(
        checkpoint_dir=tmp_path_factory.mktemp("checkpoint"), watermark="2 minutes"
    )
    live = LiveBarsJob(spark, settings, stream_db, stream_kafka)
    yield live
    live.stop_listening()


def test_run_a_bars_equal_polars(job: LiveBarsJob, history: dict[str, pl.DataFrame]) -> None:
    produce(job.kafka, history["a"])
    run_available_now(job)
    assert_bars_equal(table_bars(job.db_settings), polars_bars(history["a"]))
    counts = ledger(job.db_settings)
    assert counts["input_rows"] == counts["valid"] == history["a"].height
    assert counts["late"] == counts["malformed"] == 0
    assert any(p.numInputRows for p in job.listener.progress), "no progress was reported"


def test_restart_resumes_without_gaps_or_duplicates(
    job: LiveBarsJob, history: dict[str, pl.DataFrame]
) -> None:
    produce(job.kafka, pl.concat([history["b"], history["on_time"], history["late"]]), MALFORMED)
    run_available_now(job)
    on_time = pl.concat([history["a"], history["b"], history["on_time"]])
    assert_bars_equal(table_bars(job.db_settings), polars_bars(on_time))
    counts = ledger(job.db_settings)
    assert counts["queries"] == 1  # the checkpoint's query id survived the restart
    assert counts["late"] == history["late"].height
    assert counts["malformed"] == len(MALFORMED)
    total = on_time.height + history["late"].height + len(MALFORMED)
    assert counts["input_rows"] == total  # every record read exactly once
    with db.connect(job.db_settings) as conn:
        late_from, late_to = conn.execute(
            "SELECT min(first_late_ts), max(last_late_ts) FROM market.live_bars_batches"
        ).fetchone() or (None, None)
    assert late_from == marketdata.from_ts_us(history["late"]["ts_us"].min())  # type: ignore[arg-type]
    assert late_to == marketdata.from_ts_us(history["late"]["ts_us"].max())  # type: ignore[arg-type]


def test_malformed_records_reach_the_dead_letter_topic(job: LiveBarsJob) -> None:
    topic = topic_name(DEAD_LETTER, job.kafka.topic_prefix)
    consumer = Consumer(
        kafka_admin.client_config(
            job.kafka, **{"group.id": f"dlq-{uuid.uuid4().hex}", "enable.auto.commit": False}
        )
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    found: dict[bytes, str] = {}
    deadline = time.monotonic() + 30
    try:
        while len(found) < len(MALFORMED) and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            headers = dict(msg.headers() or [])
            found[msg.value()] = headers["dlq.reason"].decode()
            assert headers["dlq.stage"] == b"spark-live-bars"
            assert msg.key() == b"AAPL"
    finally:
        consumer.close()
    assert found == {
        MALFORMED[0][1]: "malformed JSON",
        MALFORMED[1][1]: "bad symbol aapl",
        MALFORMED[2][1]: "unsupported schema_version 9",
    }


def test_cli_on_the_cluster_resumes_the_same_checkpoint(
    job: LiveBarsJob, history: dict[str, pl.DataFrame], spark_cluster: str
) -> None:
    produce(job.kafka, history["c"])
    env = {
        **os.environ,
        "STOCK_DB_DBNAME": job.db_settings.dbname,
        "STOCK_KAFKA_TOPIC_PREFIX": job.kafka.topic_prefix,
        "STOCK_STREAMING_CHECKPOINT_DIR": str(job.settings.checkpoint()),
        "STOCK_STREAMING_MASTER": spark_cluster,
    }
    done = subprocess.run(
        [sys.executable, "-m", "spark.streaming", "--available-now"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "batch " in done.stderr and "rows/s in" in done.stderr  # the progress log line
    expected = pl.concat([history["a"], history["b"], history["on_time"], history["c"]])
    assert_bars_equal(table_bars(job.db_settings), polars_bars(expected))
    counts = ledger(job.db_settings)
    assert counts["queries"] == 1 and counts["late"] == history["late"].height
