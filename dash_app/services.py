"""What the page callbacks read from, built once per app process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dash_app.data.warehouse import Warehouse
from dash_app.settings import DashSettings
from stock_assets.lib.settings import DbSettings, KafkaSettings, SearchSettings


@dataclass
class Services:
    settings: DashSettings
    warehouse: Warehouse
    kafka: KafkaSettings | None
    search: Any  # elasticsearch.Elasticsearch | None
    search_prefix: str


def build_services(
    settings: DashSettings,
    db_settings: DbSettings | None = None,
    kafka: KafkaSettings | None = None,
    search: SearchSettings | None = None,
) -> Services:
    from stock_assets.lib.search.client import make_client

    db_settings = db_settings or DbSettings.load()
    search = search or SearchSettings.load()
    return Services(
        settings=settings,
        warehouse=Warehouse(db_settings, exchange_tz=settings.display_tz),
        kafka=kafka or KafkaSettings.load(),
        search=make_client(search, retries=0),
        search_prefix=search.index_prefix,
    )
