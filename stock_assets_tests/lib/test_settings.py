import json
from pathlib import Path

import pytest

from stock_assets.lib import db
from stock_assets.lib.errors import WarehouseUnavailable
from stock_assets.lib.settings import ApiKeys, ConfigError, DbSettings, KafkaSettings


def _write_config(folder: Path, **files: dict) -> None:
    for name, content in files.items():
        (folder / f"{name}.json").write_text(json.dumps(content))


def test_missing_config_file_names_the_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STOCK_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=r"db_settings\.json not found"):
        DbSettings.load()


def test_wrong_type_names_the_setting_and_env_var(tmp_path: Path, monkeypatch) -> None:
    _write_config(tmp_path, db_settings={"port": "not-a-port", "password": "x"})
    monkeypatch.setenv("STOCK_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=r"db_settings\.port \(env STOCK_DB_PORT\)"):
        DbSettings.load()


def test_missing_secret_is_named(tmp_path: Path, monkeypatch) -> None:
    _write_config(tmp_path, db_settings={"host": "127.0.0.1"})
    monkeypatch.setenv("STOCK_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("STOCK_DB_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match=r"db_settings\.password"):
        DbSettings.load()


def test_invalid_json_is_reported(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "kafka_settings.json").write_text("{not json")
    monkeypatch.setenv("STOCK_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="not valid JSON"):
        KafkaSettings.load()


def test_env_overrides_file_and_secrets_stay_hidden(monkeypatch) -> None:
    monkeypatch.setenv("STOCK_DB_PORT", "6543")
    monkeypatch.setenv("STOCK_DB_PASSWORD", "s3cret-value")
    monkeypatch.setenv("STOCK_API_KEY_POLYGON", "pk-123456")
    settings = DbSettings.load()
    keys = ApiKeys.load()
    assert settings.port == 6543
    assert settings.password.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(settings) + str(settings) + settings.describe()
    assert keys.polygon is not None and "pk-123456" not in repr(keys)


def test_unreachable_database_is_an_outage_naming_the_settings(
    base_db_settings: DbSettings,
) -> None:
    unreachable = DbSettings.load(port=1, connect_timeout_s=2)
    pattern = r"127\.0\.0\.1:1/.*unreachable.*db_settings\.host/port"
    with pytest.raises(WarehouseUnavailable, match=pattern) as info:
        db.connect(unreachable)
    assert not isinstance(info.value, ConfigError)  # an outage, not a wrong setting
    assert base_db_settings.password.get_secret_value() not in str(info.value)


def test_replicated_profile_env_sits_below_the_environment(tmp_path: Path, monkeypatch) -> None:
    """infra/services/kafka.sh writes run/kafka.env for a replicated cluster; env still wins."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "kafka.env").write_text(
        "STOCK_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1,127.0.0.1:3,127.0.0.1:5\n"
        "STOCK_KAFKA_REPLICATION_FACTOR=3\nSTOCK_KAFKA_MIN_INSYNC_REPLICAS=2\n"
    )
    monkeypatch.setenv("STOCK_STATE_DIR", str(tmp_path))
    for name in ("BOOTSTRAP_SERVERS", "REPLICATION_FACTOR", "MIN_INSYNC_REPLICAS"):
        monkeypatch.delenv(f"STOCK_KAFKA_{name}", raising=False)
    settings = KafkaSettings.load()
    assert settings.bootstrap_servers == "127.0.0.1:1,127.0.0.1:3,127.0.0.1:5"
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
    monkeypatch.setenv("STOCK_KAFKA_MIN_INSYNC_REPLICAS", "1")
    assert KafkaSettings.load().min_insync_replicas == 1
    (tmp_path / "run" / "kafka.env").unlink()  # the single profile removes it
    assert KafkaSettings.load().replication_factor == 1


def test_min_insync_replicas_cannot_exceed_the_replication_factor(monkeypatch) -> None:
    monkeypatch.setenv("STOCK_KAFKA_REPLICATION_FACTOR", "1")
    monkeypatch.setenv("STOCK_KAFKA_MIN_INSYNC_REPLICAS", "2")
    with pytest.raises(ConfigError, match="min_insync_replicas 2 > replication_factor 1"):
        KafkaSettings.load()
