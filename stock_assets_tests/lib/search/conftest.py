"""A private warehouse with real history, and a private index prefix on the real engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from stock_assets.lib import db
from stock_assets.lib.search.client import make_client
from stock_assets.lib.settings import DbSettings, SearchSettings
from stock_assets_tests.conftest import private_database
from stock_assets_tests.lib.search import data


@pytest.fixture(scope="module")
def history_db(base_db_settings: DbSettings) -> Iterator[DbSettings]:
    with private_database(base_db_settings) as settings:
        with db.connect(settings) as conn:
            data.load_history(conn)
        yield settings


@pytest.fixture(scope="module")
def search_settings() -> Iterator[SearchSettings]:
    settings = data.private_search_settings()
    yield settings
    data.drop_prefix(settings)


@pytest.fixture(scope="module")
def client(search_settings: SearchSettings) -> Elasticsearch:
    return make_client(search_settings)


@pytest.fixture(scope="module")
def prefix(search_settings: SearchSettings) -> str:
    return search_settings.index_prefix
