import random
from datetime import UTC, datetime

import pytest

from stock_assets.lib.providers.base import parse_retry_after, redact
from stock_assets.lib.providers.ratelimit import (
    RateBudgetExhausted,
    RateLimit,
    RateLimiter,
    RetryPolicy,
)
from stock_assets_tests.lib.providers.conftest import FakeTime


def test_bucket_allows_burst_then_spaces_requests(fake_time: FakeTime) -> None:
    limiter = RateLimiter([RateLimit(5, 60.0)], clock=fake_time.monotonic, sleep=fake_time.sleep)
    for _ in range(5):
        assert limiter.acquire() == 0.0
    assert fake_time.sleeps == []
    assert limiter.acquire() == pytest.approx(12.0)  # 60 s / 5 requests
    assert limiter.acquire() == pytest.approx(12.0)
    assert fake_time.sleeps == pytest.approx([12.0, 12.0])


def test_bucket_refills_after_idle_time(fake_time: FakeTime) -> None:
    limiter = RateLimiter([RateLimit(8, 60.0)], clock=fake_time.monotonic, sleep=fake_time.sleep)
    for _ in range(8):
        limiter.acquire()
    fake_time.now += 60.0
    for _ in range(8):
        assert limiter.acquire() == 0.0
    assert fake_time.sleeps == []


def test_daily_budget_is_refused_instead_of_sleeping_for_an_hour(fake_time: FakeTime) -> None:
    limiter = RateLimiter(
        [RateLimit(5, 60.0), RateLimit(25, 86_400.0)],
        clock=fake_time.monotonic,
        sleep=fake_time.sleep,
        name="alpha_vantage",
    )
    for _ in range(25):
        limiter.acquire()
    assert sum(fake_time.sleeps) == pytest.approx(20 * 12.0, rel=0.01)
    with pytest.raises(RateBudgetExhausted, match=r"alpha_vantage.*25/day") as info:
        limiter.acquire()
    assert info.value.wait_s > 3000  # 86400/25 s, minus what has already refilled


@pytest.mark.parametrize("attempt", [0, 1, 2, 3, 6])
def test_backoff_is_exponential_with_bounded_jitter(attempt: int) -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=1.0, max_delay_s=30.0)
    ceiling = min(30.0, 2.0**attempt)
    delays = [policy.backoff(attempt, random.Random(seed)) for seed in range(50)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1  # jittered


def test_retry_policy_honours_retry_after_and_gives_up() -> None:
    policy = RetryPolicy(max_attempts=3, max_retry_after_s=120.0)
    rng = random.Random(0)
    assert policy.delay(0, 7.0, rng) == 7.0
    assert policy.delay(0, 3600.0, rng) is None  # not worth waiting in-process
    assert policy.delay(2, None, rng) is None  # attempts exhausted


def test_parse_retry_after_seconds_and_http_date() -> None:
    now = datetime(2024, 1, 5, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("17") == 17.0
    assert parse_retry_after("Fri, 05 Jan 2024 12:00:30 GMT", now) == pytest.approx(30.0)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_redact_removes_key_and_query_values() -> None:
    text = "GET /query?function=X&apikey=SECRET123&symbol=AAPL detected your API key as SECRET123"
    out = redact(text, "SECRET123")
    assert "SECRET123" not in out
    assert "apikey=***" in out
    assert redact("https://h/v2?apiKey=abc&x=1", None) == "https://h/v2?apiKey=***&x=1"
