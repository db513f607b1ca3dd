import collections
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from stock_assets import cli
from stock_assets.lib.marketdata import Bar, Tick, decode
from stock_assets.lib.settings import KafkaSettings
from stock_assets.lib.sources.simulator import simulate_ticks
from stock_assets.lib.topics import BARS, TICKS
from stock_assets_tests.lib.providers.conftest import FixtureServer, canned
from stock_assets_tests.producer.conftest import read_topic


def tag() -> str:
    return uuid.uuid4().hex[:5].upper()


def records_for(settings: KafkaSettings, spec, symbols: set[str]) -> list:
    return [
        (m, decode(m.value()))
        for m in read_topic(settings, spec)
        if m.key() is not None and m.key().decode() in symbols
    ]


def test_produce_command_replays_the_minute_dataset(kafka_settings, monkeypatch) -> None:
    monkeypatch.setenv("STOCK_KAFKA_TOPIC_PREFIX", kafka_settings.topic_prefix)
    before = len(read_topic(kafka_settings, TICKS))
    code = cli.main(
        ["produce", "--source", "replay", "--dataset", "minute", "--seed", "5", "--limit", "1500"]
    )
    assert code == 0
    assert len(read_topic(kafka_settings, TICKS)) - before == 1500


def test_produce_command_from_a_provider_adapter(kafka_settings, monkeypatch) -> None:
    server = FixtureServer()
    server.thread.start()
    try:
        server.route(
            "/query", canned("alpha_vantage_intraday.json"), canned("alpha_vantage_quote.json")
        )
        monkeypatch.setenv("STOCK_KAFKA_TOPIC_PREFIX", kafka_settings.topic_prefix)
        monkeypatch.setenv("STOCK_API_KEY_ALPHA_VANTAGE", "cli-test-key")
        code = cli.main(
            ["produce", "--source", "alpha_vantage", "--symbols", "AAPL", "--base-url", server.url]
        )
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    assert code == 0
    bars = [
        r for m, r in records_for(kafka_settings, BARS, {"AAPL"}) if r.source == "alpha_vantage"
    ]
    assert len(bars) >= 5 and all(isinstance(b, Bar) for b in bars)
    ticks = [
        r for m, r in records_for(kafka_settings, TICKS, {"AAPL"}) if r.source == "alpha_vantage"
    ]
    assert ticks and isinstance(ticks[-1], Tick) and ticks[-1].seq == ticks[-1].ts_us


def test_produce_command_without_a_key_fails_clearly(kafka_settings, monkeypatch, capsys) -> None:
    monkeypatch.setenv("STOCK_KAFKA_TOPIC_PREFIX", kafka_settings.topic_prefix)
    monkeypatch.setenv("STOCK_API_KEY_FMP", "")
    with pytest.raises(SystemExit) as info:
        cli.main(["produce", "--source", "fmp", "--symbols", "AAPL"])
    assert info.value.code == 2


def test_sigkill_then_restart_loses_nothing_acknowledged(kafka_settings, tmp_path) -> None:
    symbols = [f"K{tag()}{c}" for c in "AB"]
    checkpoint = tmp_path / "ckpt.json"
    args = [
        sys.executable,
        "-m",
        "stock_assets.cli",
        "produce",
        "--source",
        "simulator",
        "--symbols",
        ",".join(symbols),
        "--seed",
        "13",
        "--rate",
        "40000",
        "--limit",
        "160000",
        "--checkpoint",
        str(checkpoint),
        "--progress-every-s",
        "0.2",
    ]
    env = {**os.environ, "STOCK_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix}
    victim = subprocess.Popen([*args, "--speed", "1"], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if checkpoint.exists() and sum(json.loads(checkpoint.read_text())["ticks"].values()):
                break
            time.sleep(0.05)
        time.sleep(0.3)
        os.kill(victim.pid, signal.SIGKILL)
    finally:
        victim.wait(30)
    assert victim.returncode == -signal.SIGKILL
    acked_at_kill = json.loads(checkpoint.read_text())["ticks"]
    assert 0 < sum(acked_at_kill.values()) < 160_000  # killed mid-stream

    resumed = subprocess.run(args, env=env, capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]

    counts = collections.Counter(
        (r.symbol, r.seq) for _, r in records_for(kafka_settings, TICKS, set(symbols))
    )
    expected = {
        (t.symbol, t.seq) for t in simulate_ticks(symbols, seed=13, rate=40000, limit=160_000)
    }
    assert set(counts) == expected  # nothing lost
    for (symbol, seq), n in counts.items():
        if seq <= acked_at_kill.get(symbol, 0):
            assert n == 1, (symbol, seq)  # acknowledged before the kill: exactly once
