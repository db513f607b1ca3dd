"""The client against the real engine, a refused port and a server that never answers."""

from __future__ import annotations

import time

import elasticsearch
import pytest
from elasticsearch import Elasticsearch, NotFoundError

from stock_assets.lib.search.client import SearchUnavailable, engine_info, make_client
from stock_assets.lib.settings import SearchSettings
from stock_assets_tests.lib.search import data


def test_engine_is_the_real_opensearch(client: Elasticsearch) -> None:
    info = engine_info(client)
    assert info["distribution"] == "opensearch"
    assert info["version"].startswith("2.19.")


def test_stock_client_refuses_opensearch_which_is_why_make_client_exists(
    search_settings: SearchSettings,
) -> None:
    plain = Elasticsearch([search_settings.url])
    with pytest.raises(elasticsearch.UnsupportedProductError):
        plain.info()


def test_client_errors_that_are_not_outages_pass_through(
    client: Elasticsearch, prefix: str
) -> None:
    with pytest.raises(NotFoundError):
        client.get(index=f"{prefix}-missing", id="x")


def test_refused_connection_is_a_clear_error_after_retries() -> None:
    url = f"http://127.0.0.1:{data.closed_port()}"
    settings = SearchSettings.load(url=url, request_timeout_s=1)
    started = time.monotonic()
    with pytest.raises(SearchUnavailable) as caught:
        make_client(settings, retries=2, backoff_s=0.2).cluster.health()
    message = str(caught.value)
    assert url in message
    assert "STOCK_SEARCH_URL" in message
    assert "after 3 attempt(s)" in message
    assert "connection failed" in message
    assert time.monotonic() - started >= 0.2 + 0.4  # backed off between attempts


def test_engine_that_never_answers_times_out_with_a_clear_error() -> None:
    with data.silent_server() as port:
        settings = SearchSettings.load(url=f"http://127.0.0.1:{port}", request_timeout_s=0.3)
        started = time.monotonic()
        with pytest.raises(SearchUnavailable, match="no answer within the timeout"):
            make_client(settings, retries=1, backoff_s=0.1).search(index="x")
        assert time.monotonic() - started < 5
