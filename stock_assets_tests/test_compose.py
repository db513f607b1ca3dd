"""docker-compose.yml cannot run here (no Docker engine): check that what it names exists and
agrees with config/."""

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dash_app.settings import DashSettings
from spark.streaming import StreamingSettings
from stock_assets.lib.settings import (
    REPO_ROOT,
    ApiKeys,
    DbSettings,
    KafkaSettings,
    SearchSettings,
    SparkSettings,
)

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
SETTINGS_BY_PREFIX = {
    "STOCK_DB_": DbSettings,
    "STOCK_KAFKA_": KafkaSettings,
    "STOCK_API_KEY_": ApiKeys,
    "STOCK_SEARCH_": SearchSettings,
    "STOCK_DASH_": DashSettings,
    "STOCK_SPARK_": SparkSettings,
    "STOCK_STREAMING_": StreamingSettings,
}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if "build" in s))
def test_build_contexts_and_dockerfiles_exist(name: str) -> None:
    build = SERVICES[name]["build"]
    context = REPO_ROOT / build["context"]
    assert context.is_dir()
    assert (context / build.get("dockerfile", "Dockerfile")).is_file()


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if "build" in s))
def test_command_modules_and_files_exist(name: str) -> None:
    command = _command(SERVICES[name])
    assert command, f"{name} has no command"
    executable = command[0]  # the image's PATH starts with the venv's bin, as locally
    assert executable == "python" or (Path(sys.executable).parent / executable).is_file(), (
        executable
    )
    for flag in ("-m",):
        if flag in command:
            module = command[command.index(flag) + 1]
            assert importlib.util.find_spec(module) is not None, f"{name}: no module {module}"
    for arg in command:
        if arg.startswith("/app/"):
            assert (REPO_ROOT / arg.removeprefix("/app/")).exists(), f"{name}: {arg} missing"
    if command[:3] == ["python", "-m", "stock_assets.cli"]:
        from stock_assets.cli import build_parser

        build_parser().parse_args(command[3:])  # the subcommand and its flags exist
    if command[:3] == ["python", "-m", "dash_app"]:
        from dash_app.__main__ import build_parser as dash_parser

        assert dash_parser().parse_args(command[3:]).command == "serve"  # gunicorn


def test_every_stock_env_var_is_a_setting() -> None:
    names = set()
    for service in SERVICES.values():
        names |= set(service.get("environment", {}) or {})
    names |= {
        m for m in re.findall(r"^#?\s*(STOCK_\w+)=", (REPO_ROOT / ".env.example").read_text(), re.M)
    }
    stock_vars = {n for n in names if n.startswith("STOCK_")}
    assert stock_vars
    for name in stock_vars:
        prefix = next((p for p in SETTINGS_BY_PREFIX if name.startswith(p)), None)
        assert prefix, f"{name} matches no settings class"
        field = name.removeprefix(prefix).lower()
        assert field in SETTINGS_BY_PREFIX[prefix].model_fields, f"{name}: no field {field}"


def test_published_ports_agree_with_config() -> None:
    db = DbSettings.load()
    kafka = KafkaSettings.load()
    assert f"{db.port}:5432" in SERVICES["timescaledb"]["ports"]
    kafka_port = int(kafka.bootstrap_servers.rsplit(":", 1)[1])
    assert f"{kafka_port}:{kafka_port}" in SERVICES["kafka"]["ports"]
    assert (
        f"127.0.0.1:{kafka_port}" in SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    assert f"{SearchSettings.load().port}:9200" in SERVICES["elasticsearch"]["ports"]


def test_images_are_pinned() -> None:
    for name, service in SERVICES.items():
        image = service.get("image", "")
        if "build" not in service:
            assert re.search(r":\d", image), f"{name} image {image!r} has no version tag"


def test_workspace_files_name_the_code_server() -> None:
    workspace = yaml.safe_load((REPO_ROOT / "infra/dagster/workspace.docker.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    command = _command(SERVICES["dagster-code"])
    assert server["host"] in SERVICES
    assert str(server["port"]) == command[command.index("-p") + 1]


def test_dagster_services_share_the_process_env_of_make_dev() -> None:
    from stock_assets.cli import DAGSTER_PROCESS_ENV

    dagster = [s for s in SERVICES.values() if "dagster" in " ".join(_command(s))]
    assert dagster
    for service in dagster:
        env = service.get("environment", {})
        for key, value in DAGSTER_PROCESS_ENV.items():
            assert env.get(key) == value, f"{key} missing from {_command(service)}"
