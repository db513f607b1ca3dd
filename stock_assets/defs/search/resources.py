"""The search engine as a Dagster resource, over config/search_settings.json and STOCK_SEARCH_*."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from stock_assets.lib.search.client import make_client
from stock_assets.lib.settings import SearchSettings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


class SearchResource(dg.ConfigurableResource):
    """An Elasticsearch-API engine (OpenSearch locally, Elasticsearch in compose)."""

    # Unset fields fall back to config/search_settings.json and STOCK_SEARCH_* (read at run time).
    url: str | None = None
    index_prefix: str | None = None
    username: str | None = None
    password: str | None = None
    request_timeout_s: float | None = None
    request_retries: int = Field(default=3, ge=0, description="retries of a request (backoff)")
    backoff_s: float = Field(default=0.5, gt=0, description="first backoff between retries")
    # When the engine stays unavailable the step itself is retried (RetryRequested) this many
    # times, this far apart; after that the run fails and the catch-up sensor takes over.
    step_retries: int = Field(default=2, ge=0)
    step_retry_wait_s: float = Field(default=60.0, ge=0)

    def settings(self) -> SearchSettings:
        overrides = {
            k: v
            for k, v in {
                "url": self.url,
                "index_prefix": self.index_prefix,
                "username": self.username,
                "password": self.password,
                "request_timeout_s": self.request_timeout_s,
            }.items()
            if v is not None
        }
        return SearchSettings.load(**overrides)

    @property
    def prefix(self) -> str:
        return self.settings().index_prefix

    def client(self, *, retries: int | None = None) -> Elasticsearch:
        return make_client(
            self.settings(),
            retries=self.request_retries if retries is None else retries,
            backoff_s=self.backoff_s,
        )
