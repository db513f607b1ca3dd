"""raw_ticks and the Kafka sensor against the real Kafka and PostgreSQL.

Exactly-once: a loader killed (SIGKILL) after writing part of its range leaves nothing; the rerun
loads exactly the produced ticks; re-executing a loaded range is a no-op. Undecodable records go
to the dead-letter topic with their reason.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys

import dagster as dg
import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

from stock_assets.defs import ingest
from stock_assets.defs.ingest.sensors import kafka_ticks_sensor
from stock_assets.lib import db, marketdata, tick_loader
from stock_assets.lib.settings import DbSettings, KafkaSettings
from stock_assets.lib.sources import replay
from stock_assets.lib.topics import DEAD_LETTER, TICKS, topic_name
from stock_assets_tests.defs.conftest import add_run_in_flight, produce

MALFORMED = [(b"AAPL", b"{not json"), (b"AAPL", b'{"type":"tick","symbol":"aapl"}')]


@pytest.fixture(scope="module")
def produced(module_kafka: KafkaSettings) -> int:
    """Real AAPL minute bars replayed as ticks (+ 2 malformed records); returns valid ticks."""
    frame = replay.replay_frame("minute", ["AAPL"], seed=11, ticks_per_bar=4)
    produce(module_kafka, replay.ticks_from_frame(frame, source="replay-minute"), MALFORMED)
    return frame.height


def count(settings: DbSettings, query: str) -> int:
    with db.connect(settings) as conn:
        row = conn.execute(query.encode()).fetchone()
    return int(row[0]) if row else 0


def run_requests(
    resources: dict[str, object], instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult | dg.SkipReason:
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as ctx:
        result = kafka_ticks_sensor(ctx)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def test_ingest_exactly_once_across_a_crash(
    produced: int,
    resources: dict[str, object],
    module_db: DbSettings,
    module_kafka: KafkaSettings,
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = run_requests(resources, instance, None)
    assert isinstance(result, dg.SensorResult)
    (request,) = result.run_requests or []
    ranges = request.run_config["ops"]["market__raw_ticks"]["config"]["ranges"]
    cursor = json.loads(result.cursor or "{}")
    # one symbol -> one partition holding every record, requested from offset 0 to its end
    assert len(ranges) == 1 and ranges[0]["start"] == 0
    assert ranges[0]["end"] == produced + len(MALFORMED)
    assert cursor[str(ranges[0]["partition"])] == ranges[0]["end"]
    assert request.run_key and str(ranges[0]["end"]) in request.run_key

    # while that run is in flight the sensor requests nothing
    queued = add_run_in_flight(instance, "ingest_raw_ticks")
    again = run_requests(resources, instance, result.cursor)
    assert isinstance(again, dg.SkipReason) and queued.run_id in (again.skip_message or "")

    # a loader killed mid-transaction, after COPYing its first chunk
    crash = subprocess.run(
        [
            sys.executable,
            "-m",
            "stock_assets_tests.defs.crash_loader",
            module_db.dbname,
            module_kafka.topic_prefix,
            str(ranges[0]["partition"]),
            str(ranges[0]["start"]),
            str(ranges[0]["end"]),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crash.returncode == -9, crash.stderr
    assert "rows written before the kill: " in crash.stdout
    assert int(crash.stdout.split(": ")[1]) > 0
    assert count(module_db, "SELECT count(*) FROM market.raw_ticks") == 0
    assert count(module_db, "SELECT count(*) FROM ingest.kafka_offsets") == 0

    # the run failed: the ledger does not cover its range, so the sensor requests it again
    instance.delete_run(queued.run_id)
    retried = run_requests(resources, instance, result.cursor)
    assert isinstance(retried, dg.SensorResult)
    (request,) = retried.run_requests or []
    assert request.run_config["ops"]["market__raw_ticks"]["config"]["ranges"] == ranges

    job = dg.Definitions.merge(ingest.defs, dg.Definitions(resources=resources)).resolve_job_def(
        "ingest_raw_ticks"
    )
    for attempt in range(2):  # the re-run after the crash, then a re-execution of the same range
        run = job.execute_in_process(run_config=request.run_config, instance=instance)
        assert run.success
        materialization = run.asset_materializations_for_node("market__raw_ticks")[0]
        assert materialization.metadata["dagster/row_count"].value == (
            produced if attempt == 0 else 0
        )
        checks = run.get_asset_check_evaluations()
        assert [c.passed for c in checks] == [True]
        assert count(module_db, "SELECT count(*) FROM market.raw_ticks") == produced
        assert count(module_db, "SELECT sum(row_count) FROM ingest.kafka_offsets") == produced

    meta = run.asset_materializations_for_node("market__raw_ticks")[0].metadata
    assert meta["already_loaded_ranges"].value == 1
    # the ledger covers every offset: nothing pending
    done = run_requests(resources, instance, None)
    assert isinstance(done, dg.SkipReason) and "nothing pending" in (done.skip_message or "")


def test_undecodable_records_go_to_the_dead_letter_topic(
    produced: int, module_kafka: KafkaSettings
) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": module_kafka.bootstrap_servers,
            "group.id": "dlq-test",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic_name(DEAD_LETTER, module_kafka.topic_prefix), 0, 0)])
    messages = []
    for _ in range(20):
        messages += [m for m in consumer.consume(10, timeout=1.0) if m.error() is None]
        if len(messages) >= len(MALFORMED):
            break
    consumer.close()
    headers = [dict(m.headers() or []) for m in messages]
    # the crashed loader may have sent them once more (at-least-once on the DLQ): dedupe by offset
    by_offset = {
        h["dlq.source.offset"]: (m.value(), h) for m, h in zip(messages, headers, strict=True)
    }
    assert len(by_offset) == len(MALFORMED)
    assert {v for v, _ in by_offset.values()} == {p for _, p in MALFORMED}
    for _, h in by_offset.values():
        assert h["dlq.stage"] == b"ingest"
        assert h["dlq.reason"]
        assert h["dlq.source.topic"] == topic_name(TICKS, module_kafka.topic_prefix).encode()


def test_plan_batches_caps_each_run() -> None:
    batches = tick_loader.plan_batches({0: 10, 1: 0}, {0: 25, 1: 30, 2: 5}, 20, 10)
    assert [[(r.partition, r.start, r.end) for r in b] for b in batches] == [
        [(0, 10, 25), (1, 0, 5)],
        [(1, 5, 25)],
        [(1, 25, 30), (2, 0, 5)],
    ]
    assert len(tick_loader.plan_batches({}, {0: 1000}, 10, 3)) == 3


def test_a_crash_inside_the_transaction_rolls_everything_back(
    produced: int, module_db: DbSettings, module_kafka: KafkaSettings, resources: dict[str, object]
) -> None:
    """In-process variant: an exception between COPY and commit leaves nothing new behind."""
    from confluent_kafka import Producer

    from stock_assets.defs.resources import KafkaResource
    from stock_assets.lib import kafka_admin

    kafka = resources["kafka"]
    assert isinstance(kafka, KafkaResource)
    before = count(module_db, "SELECT count(*) FROM market.raw_ticks")
    producer = Producer(kafka_admin.client_config(kafka.settings()))
    tick = next(replay.ticks_from_frame(replay.replay_frame("minute", ["AAPL"], ticks_per_bar=4)))
    producer.produce(kafka.topic(TICKS), value=marketdata.encode(tick), partition=5)
    assert producer.flush(10) == 0

    def boom(rows: int) -> None:
        raise RuntimeError(f"crash after {rows} rows")

    with db.connect(module_db) as conn, pytest.raises(RuntimeError, match="crash after"):
        tick_loader.load_ranges(
            conn,
            Consumer(kafka.consumer_config("rollback-test")),
            kafka.topic(TICKS),
            [tick_loader.OffsetRange(5, 0, 1)],  # an unloaded range of another partition
            tick_loader.DeadLetters(producer, kafka.topic(DEAD_LETTER)),
            timeout_s=5,
            progress=boom,
        )
    assert count(module_db, "SELECT count(*) FROM market.raw_ticks") == before


def test_a_load_skips_loaded_ranges_and_reads_the_others_to_their_end(
    module_db: DbSettings, module_kafka: KafkaSettings, resources: dict[str, object]
) -> None:
    """The consumer is assigned before the ledger check: a loaded range's partition is paused
    and left out, the other range is loaded up to the partition's last record."""
    from itertools import islice

    from confluent_kafka import Producer

    from stock_assets.defs.resources import KafkaResource
    from stock_assets.lib import kafka_admin
    from stock_assets.lib.topics import DAY_MS, TopicSpec

    kafka = resources["kafka"]
    assert isinstance(kafka, KafkaResource)
    spec = TopicSpec("test.mixed", 2, DAY_MS, "a load over loaded and new ranges")
    kafka_admin.ensure_topics(module_kafka, (spec,))
    topic = topic_name(spec, module_kafka.topic_prefix)
    frame = replay.replay_frame("minute", ["AAPL"], seed=3, ticks_per_bar=4)
    ticks = list(islice(replay.ticks_from_frame(frame, source="mixed-load"), 2_501))
    producer = Producer(kafka_admin.client_config(kafka.settings()))
    for i, tick in enumerate(ticks):  # 1251 records on partition 0, 1250 on partition 1
        producer.produce(topic, key=b"AAPL", value=marketdata.encode(tick), partition=i % 2)
    assert producer.flush(30) == 0

    def load(ranges: list[tick_loader.OffsetRange]) -> tick_loader.LoadResult:
        consumer = Consumer(kafka.consumer_config("mixed-load", **tick_loader.CONSUMER_CONFIG))
        try:
            with db.connect(module_db) as conn:
                return tick_loader.load_ranges(
                    conn,
                    consumer,
                    topic,
                    ranges,
                    tick_loader.DeadLetters(producer, kafka.topic(DEAD_LETTER)),
                    timeout_s=30,
                )
        finally:
            consumer.close()

    first, second = tick_loader.OffsetRange(0, 0, 1_251), tick_loader.OffsetRange(1, 0, 1_250)
    assert load([first]).rows == 1_251
    result = load([first, second])
    assert result.skipped == [first] and result.loaded == [second]
    assert result.rows == result.consumed == 1_250
    with db.connect(module_db) as conn:
        loaded = conn.execute(
            "SELECT kafka_partition, count(DISTINCT kafka_offset) FROM market.raw_ticks"
            " WHERE source = %s GROUP BY 1 ORDER BY 1",
            ("mixed-load",),
        ).fetchall()
    assert loaded == [(0, 1_251), (1, 1_250)]


@pytest.fixture(scope="module")
def long_topic(module_kafka: KafkaSettings) -> tuple[str, int]:
    """A private 1-partition topic of 7,000 ticks: a load of it is several COPY batches.

    raw_ticks is keyed by (partition, offset, ts) without the topic: the ticks are moved a year
    ahead so that they cannot collide with the other tests' ticks at the same offsets."""
    from itertools import islice

    import msgspec
    from confluent_kafka import Producer

    from stock_assets.lib import kafka_admin
    from stock_assets.lib.topics import DAY_MS, TopicSpec

    spec = TopicSpec("test.long", 1, DAY_MS, "a load of several batches")
    kafka_admin.ensure_topics(module_kafka, (spec,))
    topic = topic_name(spec, module_kafka.topic_prefix)
    frame = replay.replay_frame("minute", ["AAPL"], seed=5, ticks_per_bar=4)
    producer = Producer(kafka_admin.client_config(module_kafka))
    year_us = 365 * 86_400 * 1_000_000
    for tick in islice(replay.ticks_from_frame(frame, source="long-load"), 7_000):
        ahead = msgspec.structs.replace(tick, ts_us=tick.ts_us + year_us)
        producer.produce(topic, key=b"AAPL", value=marketdata.encode(ahead), partition=0)
    assert producer.flush(30) == 0
    return topic, 7_000


def _load_long(
    conn: object,
    resources: dict[str, object],
    topic: str,
    n: int,
    dead_letters: tick_loader.DeadLetters | None = None,
    progress: object = None,
) -> tick_loader.LoadResult:
    from confluent_kafka import Producer

    from stock_assets.defs.resources import KafkaResource
    from stock_assets.lib import kafka_admin

    kafka = resources["kafka"]
    assert isinstance(kafka, KafkaResource)
    consumer = Consumer(kafka.consumer_config("long-load", **tick_loader.CONSUMER_CONFIG))
    producer = Producer(kafka_admin.client_config(kafka.settings()))
    try:
        return tick_loader.load_ranges(
            conn,  # type: ignore[arg-type]
            consumer,
            topic,
            [tick_loader.OffsetRange(0, 0, n)],
            dead_letters or tick_loader.DeadLetters(producer, kafka.topic(DEAD_LETTER)),
            timeout_s=30,
            progress=progress,  # type: ignore[arg-type]
        )
    finally:
        consumer.close()


def _long_rows(settings: DbSettings) -> tuple[int, int]:
    return (
        count(settings, "SELECT count(*) FROM market.raw_ticks WHERE source = 'long-load'"),
        count(settings, "SELECT count(*) FROM ingest.kafka_offsets WHERE topic LIKE '%test.long'"),
    )


def test_a_crash_in_the_middle_of_the_copy_and_after_it_loses_and_duplicates_nothing(
    long_topic: tuple[str, int], module_db: DbSettings, resources: dict[str, object]
) -> None:
    """The COPY streams batch by batch from the consuming thread, and the ledger rows and COMMIT
    share one round trip: a failure between two COPY batches, or after the COPY (dead letters
    not acknowledged), rolls back the whole load and leaves the connection idle and usable. The
    cyclic garbage collector is off during the load and back on after it, a crash included."""
    topic, n = long_topic
    calls: list[int] = []
    collecting: list[bool] = []

    def crash_at_the_second_batch(rows: int) -> None:
        calls.append(rows)
        collecting.append(gc.isenabled())
        if len(calls) == 2:
            raise RuntimeError(f"crash after {rows} rows")

    class Unacknowledged(tick_loader.DeadLetters):
        def flush(self, timeout_s: float) -> None:
            raise RuntimeError("dead-letter topic down")

    with db.connect(module_db) as conn:
        with pytest.raises(RuntimeError, match="crash after"):
            _load_long(conn, resources, topic, n, progress=crash_at_the_second_batch)
        assert 0 < calls[0] < calls[1] < n  # the COPY was under way, more batches to come
        assert collecting == [False, False] and gc.isenabled()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert _long_rows(module_db) == (0, 0)

        from confluent_kafka import Producer

        from stock_assets.defs.resources import KafkaResource
        from stock_assets.lib import kafka_admin

        kafka = resources["kafka"]
        assert isinstance(kafka, KafkaResource)
        unacknowledged = Unacknowledged(
            Producer(kafka_admin.client_config(kafka.settings())), kafka.topic(DEAD_LETTER)
        )
        with pytest.raises(RuntimeError, match="dead-letter topic down"):
            _load_long(conn, resources, topic, n, dead_letters=unacknowledged)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert _long_rows(module_db) == (0, 0)

        # the same connection then loads the range once; a second load is a no-op
        assert _load_long(conn, resources, topic, n).rows == n
        assert _load_long(conn, resources, topic, n).skipped == [tick_loader.OffsetRange(0, 0, n)]
    assert _long_rows(module_db) == (n, 1)
    assert (
        count(
            module_db,
            "SELECT count(DISTINCT kafka_offset) FROM market.raw_ticks WHERE source = 'long-load'",
        )
        == n
    )


def test_load_ranges_wants_an_idle_connection(
    long_topic: tuple[str, int], module_db: DbSettings, resources: dict[str, object]
) -> None:
    """The load begins and commits its own transaction: it refuses to run inside the caller's
    (whose uncommitted work it would commit) or on an autocommit connection."""
    topic, n = long_topic
    with db.connect(module_db) as conn:
        conn.execute("SELECT 1")
        with pytest.raises(ValueError, match="idle connection"):
            _load_long(conn, resources, topic, n)
    with db.connect(module_db, autocommit=True) as conn, pytest.raises(ValueError):
        _load_long(conn, resources, topic, n)
