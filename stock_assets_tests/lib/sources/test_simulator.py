import itertools
import math

import numpy as np
import pytest

from stock_assets.lib.marketdata import validate
from stock_assets.lib.sources.simulator import GbmSimulator, SymbolParams, simulate_ticks
from stock_assets_tests.lib.providers.conftest import FakeTime


def test_seeded_and_deterministic() -> None:
    a = list(simulate_ticks(["AAPL", "MSFT"], seed=1, limit=10_000))
    assert a == list(simulate_ticks(["AAPL", "MSFT"], seed=1, limit=10_000))
    assert a != list(simulate_ticks(["AAPL", "MSFT"], seed=2, limit=10_000))


def test_ticks_are_valid_ordered_and_sequenced_per_symbol() -> None:
    ticks = list(simulate_ticks(["AAPL", "MSFT", "ZZZT"], seed=3, limit=50_000))
    assert len(ticks) == 50_000
    assert all(a.ts_us < b.ts_us for a, b in itertools.pairwise(ticks))
    for symbol in ("AAPL", "MSFT", "ZZZT"):
        seqs = [t.seq for t in ticks if t.symbol == symbol]
        assert seqs == list(range(1, len(seqs) + 1))
    for tick in ticks[:5000]:
        validate(tick)
    assert all(round(t.price, 2) == t.price for t in ticks)


def test_sizes_are_realistic_lots() -> None:
    sizes = np.array([t.size for t in simulate_ticks(seed=4, limit=20_000)])
    odd = sizes < 100
    assert 0.40 < odd.mean() < 0.50
    assert (sizes[~odd] % 100 == 0).all()
    assert sizes.min() >= 1


def test_rate_sets_the_simulated_arrival_rate() -> None:
    ticks = list(simulate_ticks(seed=5, rate=2000.0, limit=20_000))
    span_s = (ticks[-1].ts_us - ticks[0].ts_us) / 1e6
    assert 20_000 / span_s == pytest.approx(2000.0, rel=0.05)


def test_volatility_matches_the_parameters() -> None:
    sim = GbmSimulator(["VOLX"], seed=6, rate=50.0, params={"VOLX": SymbolParams(100.0, 0.0, 0.4)})
    frame = sim.chunk(200_000)
    # sample every 200th print so one-cent rounding is negligible against the moves
    prices = frame["price"].to_numpy()[::200]
    seconds = (frame["ts_us"][-1] - frame["ts_us"][0]) / 1e6
    per_year = len(prices) / seconds * 252 * 6.5 * 3600
    realised = np.diff(np.log(prices)).std() * math.sqrt(per_year)
    assert realised == pytest.approx(0.4, rel=0.1)


def test_speed_paces_in_wall_time(fake_time: FakeTime) -> None:
    ticks = list(
        simulate_ticks(
            seed=7,
            rate=100.0,
            limit=300,
            speed=1.0,
            clock=fake_time.monotonic,
            sleep=fake_time.sleep,
        )
    )
    span_s = (ticks[-1].ts_us - ticks[0].ts_us) / 1e6
    assert sum(fake_time.sleeps) == pytest.approx(span_s, rel=1e-6)
