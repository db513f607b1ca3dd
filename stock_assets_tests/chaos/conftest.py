"""Private PostgreSQL + Kafka instances for the chaos tests (never the shared services)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stock_assets_tests.chaos.services import ChaosServices, chaos_services


@pytest.fixture(scope="session")
def single_services() -> Iterator[ChaosServices]:
    with chaos_services("single") as services:
        yield services


@pytest.fixture(scope="session")
def replicated_services() -> Iterator[ChaosServices]:
    with chaos_services("replicated") as services:
        yield services
