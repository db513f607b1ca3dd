"""Token-bucket rate limiting and retry backoff, with an injectable clock and sleep."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class RateBudgetExhausted(RuntimeError):
    """The local budget would force a wait longer than allowed (e.g. a per-day quota is spent)."""

    def __init__(self, message: str, wait_s: float) -> None:
        super().__init__(message)
        self.wait_s = wait_s


@dataclass(frozen=True)
class RateLimit:
    """`requests` per `per_s` seconds, e.g. RateLimit(5, 60) = 5 requests/minute."""

    requests: int
    per_s: float

    def describe(self) -> str:
        unit = {60.0: "minute", 3600.0: "hour", 86400.0: "day"}.get(self.per_s, f"{self.per_s:g}s")
        return f"{self.requests}/{unit}"


@dataclass
class TokenBucket:
    """Starts full; refills continuously at requests/per_s tokens per second."""

    limit: RateLimit
    clock: Clock
    tokens: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.limit.requests)
        self.stamp = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        rate = self.limit.requests / self.limit.per_s
        self.tokens = min(float(self.limit.requests), self.tokens + (now - self.stamp) * rate)
        self.stamp = now

    def wait_time(self) -> float:
        """Seconds until one token is available (0 if one is available now)."""
        self._refill()
        if self.tokens >= 1.0:
            return 0.0
        return (1.0 - self.tokens) * self.limit.per_s / self.limit.requests

    def take(self) -> None:
        self._refill()
        self.tokens -= 1.0


class RateLimiter:
    """All buckets must hold a token before a request goes out (e.g. 5/minute AND 25/day)."""

    def __init__(
        self,
        limits: Sequence[RateLimit],
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        max_wait_s: float = 300.0,
        name: str = "provider",
    ) -> None:
        self.buckets = [TokenBucket(limit, clock) for limit in limits]
        self.sleep = sleep
        self.max_wait_s = max_wait_s
        self.name = name
        self.waited_s = 0.0

    def acquire(self) -> float:
        """Block (via `sleep`) until every bucket has a token, take them; returns seconds waited."""
        waited = 0.0
        while True:
            wait = max((b.wait_time() for b in self.buckets), default=0.0)
            if wait <= 0.0:
                break
            if waited + wait > self.max_wait_s:
                limits = ", ".join(b.limit.describe() for b in self.buckets)
                raise RateBudgetExhausted(
                    f"{self.name}: local rate budget ({limits}) exhausted; next request allowed "
                    f"in {wait:.0f}s, more than max_wait_s={self.max_wait_s:g}",
                    wait,
                )
            self.sleep(wait)
            waited += wait
        for bucket in self.buckets:
            bucket.take()
        self.waited_s += waited
        return waited


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with equal jitter; a server's Retry-After wins when it is sane."""

    max_attempts: int = 4
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    max_retry_after_s: float = 120.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay before retry number `attempt` (0-based): half fixed, half random, capped."""
        ceiling = min(self.max_delay_s, self.base_delay_s * (2.0**attempt))
        return ceiling / 2.0 + rng.uniform(0.0, ceiling / 2.0)

    def delay(self, attempt: int, retry_after_s: float | None, rng: random.Random) -> float | None:
        """Seconds to wait before the next attempt, or None when retrying is pointless."""
        if attempt + 1 >= self.max_attempts:
            return None
        if retry_after_s is not None:
            if retry_after_s > self.max_retry_after_s:
                return None
            return max(retry_after_s, 0.0)
        return self.backoff(attempt, rng)
