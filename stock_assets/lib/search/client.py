"""The one place an Elasticsearch-API client is built: timeouts, retries with backoff, clear errors.

Client line: `elasticsearch` 7.17.x (pyproject). It speaks the 7.x REST API that both engines we
run answer: OpenSearch 2.19 (local, services.sh) and Elasticsearch 8.19 (docker-compose). Since
7.14 the client runs a "product check" on the first request and raises UnsupportedProductError
for anything that does not answer as Elasticsearch — OpenSearch included. `_EngineTransport`
skips that check (every API we call is plain REST that both engines implement identically) and
replaces the transport's immediate retries with exponential backoff on connection errors,
timeouts, 429 and 5xx. When the retries are spent it raises `SearchUnavailable`, naming the URL
setting, so an asset fails with one readable line instead of a urllib3 traceback.
ELASTIC_CLIENT_APIVERSIONING must stay unset: its compatibility media type makes OpenSearch
answer 406.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from elasticsearch import ConnectionError as EsConnectionError
from elasticsearch import ConnectionTimeout, Elasticsearch, Transport, TransportError

from stock_assets.lib.settings import ConfigError, SearchSettings

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0


class SearchUnavailable(ConfigError):
    """The search engine is down, too slow or overloaded; the message names the URL setting."""


class _EngineTransport(Transport):
    """Transport without the Elasticsearch-only product check, retrying with backoff."""

    def __init__(
        self,
        hosts: Any,
        *,
        settings_url: str,
        retries: int = DEFAULT_RETRIES,
        backoff_s: float = DEFAULT_BACKOFF_S,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        # Elasticsearch(...) hands every keyword it does not know to its transport class.
        super().__init__(hosts, **kwargs)
        self.settings_url = settings_url
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep

    def _do_verify_elasticsearch(self, headers: Any, timeout: Any) -> None:
        # OpenSearch answers GET / with version.distribution "opensearch" and no
        # X-Elastic-Product header, which the 7.14+ product check rejects. Accept any engine.
        self._verified_elasticsearch = True

    def perform_request(
        self,
        method: str,
        url: str,
        headers: Any = None,
        params: Any = None,
        body: Any = None,
    ) -> Any:
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(min(self.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S))
            try:
                # params is consumed (request_timeout, ignore are popped): pass a copy each time
                return super().perform_request(
                    method, url, headers=headers, params=dict(params or {}), body=body
                )
            except ConnectionTimeout as exc:
                problem = f"no answer within the timeout ({exc.info})"
            except EsConnectionError as exc:
                problem = f"connection failed ({exc.info})"
            except TransportError as exc:
                if exc.status_code not in RETRY_STATUSES:
                    raise
                problem = f"HTTP {exc.status_code}: {exc.error}"
        raise SearchUnavailable(
            f"search engine at {self.settings_url} unavailable after {self.retries + 1} "
            f"attempt(s) of {method} {url}: {problem} (setting search_settings.url, env "
            "STOCK_SEARCH_URL; start the local engine with ./infra/services.sh up search)"
        )


def make_client(
    settings: SearchSettings,
    *,
    retries: int = DEFAULT_RETRIES,
    backoff_s: float = DEFAULT_BACKOFF_S,
) -> Elasticsearch:
    """A client for `settings.url`; every call is bounded by `request_timeout_s` and retried."""
    auth: tuple[str, str] | None = None
    if settings.username and settings.password is not None:
        auth = (settings.username, settings.password.get_secret_value())
    return Elasticsearch(
        [settings.url],
        transport_class=_EngineTransport,
        settings_url=settings.url,
        retries=retries,
        backoff_s=backoff_s,
        http_auth=auth,
        timeout=settings.request_timeout_s,
        max_retries=0,  # _EngineTransport retries, with backoff
        retry_on_timeout=False,
    )


def engine_info(client: Elasticsearch) -> dict[str, str]:
    """Distribution ("opensearch" or "elasticsearch") and version of the engine behind `client`."""
    info = client.info()
    version = info.get("version", {})
    return {
        "distribution": str(version.get("distribution", "elasticsearch")),
        "version": str(version.get("number", "unknown")),
        "cluster": str(info.get("cluster_name", "")),
    }
