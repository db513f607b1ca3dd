"""The provider interface: `fetch` raw JSON over HTTP, `transform` it into the market-data model.

Every adapter shares one request path (`get_json`): API key injection, a token-bucket rate limiter
at the provider's free-tier limit, retries with exponential backoff + jitter on 429/5xx/timeouts and
on provider-specific throttle bodies, Retry-After honoured, and keys redacted from every message.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urljoin, urlsplit
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr

from stock_assets.lib.calendar import ZONE
from stock_assets.lib.marketdata import Bar, Tick, ts_us
from stock_assets.lib.providers.ratelimit import (
    Clock,
    RateLimit,
    RateLimiter,
    RetryPolicy,
    Sleep,
)

log = logging.getLogger(__name__)

NEW_YORK = ZONE

_KEY_IN_URL = re.compile(r"(?i)((?:api_?key|token)=)[^&\s\"']+")


class ProviderError(RuntimeError):
    """A provider request failed; the message names the provider and never contains the key."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ProviderAuthError(ProviderError):
    """Missing, invalid or insufficiently entitled API key: fix the configuration, don't retry."""


class ProviderNotFound(ProviderError):
    """The provider does not know the symbol (or the request parameters are invalid)."""


class ProviderResponseError(ProviderError):
    """The provider answered something that is not its documented format (e.g. malformed JSON)."""


class ProviderThrottled(ProviderError):
    """HTTP 429 or a throttle note in a 200 body: retried after backoff / Retry-After."""

    retryable = True


class ProviderUnavailable(ProviderError):
    """5xx, timeout or transport failure: retried after backoff."""

    retryable = True


def redact(text: str, secret: str | None) -> str:
    """Remove the key itself and any `apikey=`/`token=` query value from `text`."""
    if secret:
        text = text.replace(secret, "***")
    return _KEY_IN_URL.sub(r"\1***", text)


class _RedactingFilter(logging.Filter):
    """httpx logs every request URL at INFO, query string (and so `apikey=`) included."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), None)
        record.args = ()
        return True


def install_log_redaction() -> None:
    """Idempotently attach the redacting filter to the httpx/httpcore loggers."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactingFilter) for f in logger.filters):
            logger.addFilter(_RedactingFilter())


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def snippet(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


class ProviderClient(ABC):
    """One market-data provider: `intraday_bars` and `quote`, each a fetch → transform pair."""

    name: ClassVar[str]
    default_base_url: ClassVar[str]
    limits: ClassVar[tuple[RateLimit, ...]]
    key_env: ClassVar[str]

    def __init__(
        self,
        api_key: SecretStr | str | None,
        *,
        base_url: str | None = None,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
        now: Clock = time.time,
    ) -> None:
        secret = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if not secret:
            raise ProviderAuthError(
                f"{self.name}: no API key configured (set env {self.key_env} or "
                f"`{self.name}` in config/api_keys.json)"
            )
        self._key = secret
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or RateLimiter(self.limits, clock=clock, sleep=sleep, name=self.name)
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.now = now
        self.requests_sent = 0
        install_log_redaction()
        self.http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout_s,
            headers={"User-Agent": "stock-platform/0.1", **self.auth_headers(secret)},
        )

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key=SecretStr('**********'))"

    # ---- the interface -------------------------------------------------------------------------

    def intraday_bars(
        self, symbol: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[Bar]:
        """1-minute bars for `symbol`, oldest first, optionally clipped to [start, end)."""
        bars = self.transform_intraday(symbol, self.fetch_intraday(symbol, start, end))
        return clip_bars(bars, start, end)

    def quote(self, symbol: str) -> Tick:
        """The latest trade price the provider reports for `symbol` (seq 0: the caller numbers)."""
        return self.transform_quote(symbol, self.fetch_quote(symbol))

    @abstractmethod
    def fetch_intraday(self, symbol: str, start: datetime | None, end: datetime | None) -> Any:
        """Raw documented JSON of the intraday endpoint (all pages)."""

    @abstractmethod
    def transform_intraday(self, symbol: str, raw: Any) -> list[Bar]:
        """Documented intraday JSON → bars, oldest first."""

    @abstractmethod
    def fetch_quote(self, symbol: str) -> Any:
        """Raw documented JSON of the quote / last-trade endpoint."""

    @abstractmethod
    def transform_quote(self, symbol: str, raw: Any) -> Tick:
        """Documented quote JSON → one tick."""

    # ---- provider hooks ------------------------------------------------------------------------

    def auth_headers(self, key: str) -> dict[str, str]:
        """Headers carrying the key (providers that accept one); default none."""
        return {}

    def auth_params(self, key: str) -> dict[str, str]:
        """Query parameters carrying the key (providers that only accept a query key)."""
        return {}

    @abstractmethod
    def check_body(self, status: int, body: Any) -> ProviderError | None:
        """Provider-specific error in a parsed body (throttle notes, error objects), else None."""

    # ---- the shared request path ---------------------------------------------------------------

    def rebase(self, url: str) -> str:
        """Keep a provider-supplied absolute URL (e.g. `next_url`) on the configured base_url."""
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return urljoin(self.base_url + "/", path.lstrip("/"))

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET with rate limiting and retries; the parsed JSON body, or a ProviderError."""
        # httpx replaces a URL's own query string with `params` (even an empty dict), which
        # would drop next_url's cursor: merge both explicitly.
        parts = urlsplit(path)
        query: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
        query.update({k: v for k, v in (params or {}).items() if v is not None})
        query.update(self.auth_params(self._key))
        path = parts._replace(query="").geturl()
        attempt = 0
        while True:
            self.limiter.acquire()
            self.requests_sent += 1
            try:
                return self._attempt(path, query)
            except ProviderError as exc:
                delay = (
                    self.retry.delay(attempt, exc.retry_after_s, self.rng)
                    if exc.retryable
                    else None
                )
                if delay is None:
                    raise
                log.warning(
                    "%s: %s; retry %d/%d in %.1fs",
                    self.name,
                    exc,
                    attempt + 1,
                    self.retry.max_attempts - 1,
                    delay,
                )
                self.sleep(delay)
                attempt += 1

    def _attempt(self, path: str, query: Mapping[str, Any]) -> Any:
        where = redact(f"{self.name} GET {path}", self._key)
        try:
            response = self.http.get(path, params=query)
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(f"{where}: timeout ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"{where}: transport error {redact(str(exc), self._key)}"
            ) from None
        text = response.text
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        body: Any = None
        parsed = True
        try:
            body = json.loads(text) if text else None
        except json.JSONDecodeError:
            parsed = False
        if parsed:
            error = self.check_body(response.status_code, body)
            if error is not None:
                if error.retry_after_s is None and retry_after is not None:
                    error.retry_after_s = retry_after
                raise type(error)(
                    f"{where}: {redact(str(error), self._key)}", retry_after_s=error.retry_after_s
                )
        detail = redact(snippet(text), self._key)
        status = response.status_code
        if status == 429:
            raise ProviderThrottled(f"{where}: HTTP 429 {detail}", retry_after_s=retry_after)
        if status >= 500:
            raise ProviderUnavailable(f"{where}: HTTP {status} {detail}", retry_after_s=retry_after)
        if status in (401, 403):
            raise ProviderAuthError(f"{where}: HTTP {status} (API key rejected) {detail}")
        if status == 404:
            raise ProviderNotFound(f"{where}: HTTP 404 {detail}")
        if status >= 400:
            raise ProviderError(f"{where}: HTTP {status} {detail}")
        if not parsed:
            raise ProviderResponseError(f"{where}: malformed JSON in HTTP {status}: {detail}")
        return body


def clip_bars(bars: list[Bar], start: datetime | None, end: datetime | None) -> list[Bar]:
    """Bars whose start lies in [start, end)."""
    lo = ts_us(start) if start else None
    hi = ts_us(end) if end else None
    return [b for b in bars if (lo is None or b.ts_us >= lo) and (hi is None or b.ts_us < hi)]


def local_ts_us(text: str, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> int:
    """Epoch µs of an exchange-local wall-clock string (providers send ET without an offset)."""
    return ts_us(datetime.strptime(text, fmt).replace(tzinfo=zone))


def day_range(start: datetime | None, end: datetime | None, now: float) -> tuple[str, str]:
    """YYYY-MM-DD bounds for date-granular endpoints (default: the last 5 days up to today)."""
    today = datetime.fromtimestamp(now, UTC)
    hi = end or today
    lo = start or (hi - timedelta(days=5))
    return lo.date().isoformat(), hi.date().isoformat()


def as_float(value: Any, field: str, provider: str) -> float:
    """A documented number (providers send strings too); ProviderResponseError if it is not."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ProviderResponseError(
            f"{provider}: field {field!r} is not a number: {value!r}"
        ) from None


def as_int(value: Any, field: str, provider: str) -> int:
    """A documented integer (epoch ms/ns stay exact: never routed through float)."""
    if isinstance(value, bool):
        raise ProviderResponseError(f"{provider}: field {field!r} is not an integer: {value!r}")
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise ProviderResponseError(
            f"{provider}: field {field!r} is not an integer: {value!r}"
        ) from None
