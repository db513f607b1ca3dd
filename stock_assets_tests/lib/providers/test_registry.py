import pytest
from pydantic import SecretStr

from stock_assets.lib.providers import PROVIDERS, FmpClient, make_client
from stock_assets.lib.settings import ApiKeys


def test_registry_names_every_adapter() -> None:
    assert set(PROVIDERS) == {"alpha_vantage", "fmp", "polygon", "twelve_data"}


def test_make_client_takes_the_key_from_settings_and_hides_it() -> None:
    keys = ApiKeys(fmp=SecretStr("k-123456"))
    with make_client("fmp", keys, base_url="http://127.0.0.1:9") as client:
        assert isinstance(client, FmpClient)
        assert "k-123456" not in repr(client)


def test_make_client_rejects_unknown_provider() -> None:
    with pytest.raises(ValueError, match="iex"):
        make_client("iex", ApiKeys())
