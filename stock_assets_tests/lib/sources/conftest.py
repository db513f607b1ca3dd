import pytest

from stock_assets_tests.lib.providers.conftest import FakeTime


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()
