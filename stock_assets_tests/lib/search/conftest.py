"""A private warehouse with real history, and a private index prefix on the real engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from stock_assets.lib import db, migrations
from stock_assets.lib.search.client import make_client
from stock_assets.lib.settings import DbSettings, SearchSettings
from stock_assets_tests.conftest import SESSION_ID, create_database, drop_database
from stock_assets_tests.lib.search import data


@pytest.fixture(scope="module")
def history_db(base_db_settings: DbSettings) -> Iterator[DbSettings]:
    name = f"stocks_test_{SESSION_ID}_{uuid.uuid4().hex[:6]}"
    settings = create_database(base_db_settings, name)
    with db.connect(settings) as conn:
        migrations.apply(conn)
        data.load_history(conn)
    yield settings
    drop_database(base_db_settings, name)


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
