"""The one place an Elasticsearch-API client is built: timeouts, retries with backoff, clear errors.

Client line: `elasticsearch` 7.17.x (pyproject). It speaks the 7.x REST API that both engines we
run answer: OpenSearch 2.19 (local, services.sh) and Elasticsearch 8.19 (docker-compose). Since
7.14 the client runs a "product check" on the first request and raises UnsupportedProductError
for anything that does not answer as Elasticsearch — OpenSearch included. `EngineTransport`
(stock_assets/lib/search/transport.py, imported on first use: elasticsearch costs ~0.5 s to
import, which the Dagster code location must not pay when it loads) skips that check (every API
we call is plain REST that both engines implement identically) and replaces the transport's
immediate retries with exponential backoff on connection errors, timeouts, 429 and 5xx. When the
retries are spent it raises `SearchUnavailable` (transient), naming the URL setting, so an asset
fails with one readable line instead of a urllib3 traceback.
ELASTIC_CLIENT_APIVERSIONING must stay unset: its compatibility media type makes OpenSearch
answer 406.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stock_assets.lib.errors import TransientError
from stock_assets.lib.settings import SearchSettings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0


class SearchUnavailable(TransientError):
    """The search engine is down, too slow or overloaded; the message names the URL setting."""


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
    from elasticsearch import Elasticsearch

    from stock_assets.lib.search.transport import EngineTransport

    return Elasticsearch(
        [settings.url],
        transport_class=EngineTransport,
        settings_url=settings.url,
        retries=retries,
        backoff_s=backoff_s,
        http_auth=auth,
        timeout=settings.request_timeout_s,
        max_retries=0,  # EngineTransport retries, with backoff
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
