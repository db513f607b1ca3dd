import collections
import itertools
import uuid
from collections.abc import Iterator

import msgspec
import pytest

from stock_assets.lib.marketdata import Tick, decode, encode
from stock_assets.lib.settings import ConfigError, KafkaSettings
from stock_assets.lib.sources.simulator import simulate_ticks
from stock_assets.lib.topics import DEAD_LETTER, TICKS
from stock_assets.producer import MarketDataProducer, resume_filter
from stock_assets_tests.producer.conftest import read_topic


def unique_symbols(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:5].upper()
    return [f"T{tag}{chr(65 + i)}" for i in range(n)]


def ours(settings: KafkaSettings, symbols: list[str]) -> list:
    wanted = {s.encode() for s in symbols}
    return [m for m in read_topic(settings, TICKS) if m.key() in wanted]


def test_n_records_in_n_consumed_same_key_same_partition(kafka_settings: KafkaSettings) -> None:
    symbols = unique_symbols(4)
    ticks = list(simulate_ticks(symbols, seed=1, limit=5_000))
    producer = MarketDataProducer(kafka_settings, source="test")
    stats = producer.run(ticks, handle_signals=False)
    assert stats.ok and stats.sent == stats.delivered == 5_000

    messages = ours(kafka_settings, symbols)
    assert len(messages) == 5_000
    assert sorted(m.value() for m in messages) == sorted(encode(t) for t in ticks)
    partitions = collections.defaultdict(set)
    for msg in messages:
        partitions[msg.key()].add(msg.partition())
    assert all(len(p) == 1 for p in partitions.values())
    for symbol in symbols:  # one partition per key keeps the symbol's order
        seqs = [decode(m.value()).seq for m in messages if m.key() == symbol.encode()]  # type: ignore[union-attr]
        assert seqs == sorted(seqs)


def test_invalid_and_malformed_records_go_to_the_dlq_with_reason(
    kafka_settings: KafkaSettings,
) -> None:
    source = f"dlq-test-{uuid.uuid4().hex[:6]}"
    (symbol,) = unique_symbols(1)
    good = Tick(
        symbol=symbol, ts_us=1_704_465_000_000_000, price=181.5, size=100, source=source, seq=1
    )
    negative = msgspec.structs.replace(good, size=-5.0, seq=2)
    truncated = encode(good)[:-9]
    future = encode(good).replace(b'"schema_version":1', b'"schema_version":2')
    producer = MarketDataProducer(kafka_settings, source=source)
    assert producer.send(good)
    assert not producer.send(negative)
    assert not producer.send_raw(truncated)
    assert not producer.send_raw(future)
    stats = producer.close()
    assert stats.ok and stats.delivered == 1
    assert stats.dead_lettered == stats.dlq_delivered == 3

    dead = [
        m
        for m in read_topic(kafka_settings, DEAD_LETTER)
        if dict(m.headers() or []).get("dlq.source") == source.encode()
    ]
    by_value = {m.value(): dict(m.headers() or []) for m in dead}
    assert set(by_value) == {encode(negative), truncated, future}
    assert b"bad size" in by_value[encode(negative)]["dlq.reason"]
    assert b"malformed JSON" in by_value[truncated]["dlq.reason"]
    assert b"schema_version" in by_value[future]["dlq.reason"]
    assert all(h["dlq.stage"] == b"producer" for h in by_value.values())
    assert by_value[encode(negative)]["dlq.topic"].endswith(b"market.ticks")
    assert [m.value() for m in ours(kafka_settings, [symbol])] == [encode(good)]


def test_restart_resumes_after_the_last_acknowledged_seq(
    kafka_settings: KafkaSettings, tmp_path
) -> None:
    symbols = unique_symbols(3)
    total = 30_000
    checkpoint = tmp_path / "producer.ckpt"

    def source() -> Iterator[Tick]:
        return simulate_ticks(symbols, seed=9, limit=total)

    first = MarketDataProducer(kafka_settings, source="restart", checkpoint_path=checkpoint)

    def stop_midway(ticks: Iterator[Tick]) -> Iterator[Tick]:
        """After 5000 records, wait for some delivery reports, then ask the producer to stop."""
        for i, tick in enumerate(ticks):
            if i == 5_000:
                while first.stats.delivered < 2_000:
                    first.wait(0.05)
                first.request_stop()
            yield tick

    first_stats = first.run(stop_midway(source()), handle_signals=False)
    assert first_stats.ok
    assert 5_000 <= first_stats.sent < 5_100  # stopped mid-stream, then flushed
    acked = dict(first.checkpoint.ticks)
    assert sum(acked.values()) == first_stats.delivered

    second = MarketDataProducer(kafka_settings, source="restart", checkpoint_path=checkpoint)
    assert second.checkpoint.ticks == acked
    second_stats = second.run(resume_filter(source(), second.checkpoint), handle_signals=False)
    assert second_stats.ok
    assert first_stats.delivered + second_stats.delivered == total

    counts = collections.Counter(
        (m.key().decode(), decode(m.value()).seq)  # type: ignore[union-attr]
        for m in ours(kafka_settings, symbols)
    )
    expected = {(t.symbol, t.seq) for t in source()}
    assert set(counts) == expected
    assert set(counts.values()) == {1}


def test_delivery_failures_are_counted_not_dropped(kafka_settings: KafkaSettings) -> None:
    missing = kafka_settings.model_copy(update={"topic_prefix": f"absent-{uuid.uuid4().hex}."})
    producer = MarketDataProducer(
        missing,
        source="failing",
        config={"delivery.timeout.ms": 2_000, "request.timeout.ms": 1_000, "linger.ms": 5},
        flush_timeout_s=15,
    )
    with pytest.raises(ConfigError, match="topics missing"):
        producer.check_topics()
    stats = producer.run(itertools.islice(simulate_ticks(seed=2), 50), handle_signals=False)
    assert not stats.ok
    assert stats.failed + stats.undelivered_at_close == 50
    assert stats.delivered == 0
