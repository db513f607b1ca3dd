"""The Elasticsearch transport used by every client (see stock_assets/lib/search/client.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from elasticsearch import ConnectionError as EsConnectionError
from elasticsearch import ConnectionTimeout, Transport, TransportError

from stock_assets.lib.search.client import (
    DEFAULT_BACKOFF_S,
    DEFAULT_RETRIES,
    MAX_BACKOFF_S,
    RETRY_STATUSES,
    SearchUnavailable,
)


class EngineTransport(Transport):
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
