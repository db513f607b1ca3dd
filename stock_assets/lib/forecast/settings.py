"""Forecast settings: the MLflow server (config/mlflow_settings.json, STOCK_MLFLOW_*)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from stock_assets.lib.settings import ENV_FILE, JsonBackedSettings


class MlflowSettings(JsonBackedSettings):
    """The MLflow tracking server + model registry (infra/services/mlflow.sh starts it)."""

    json_name: ClassVar[str] = "mlflow_settings"
    model_config = SettingsConfigDict(env_prefix="STOCK_MLFLOW_", env_file=ENV_FILE, extra="ignore")

    tracking_uri: str = "http://127.0.0.1:15000"
    port: int = Field(15000, ge=1, le=65535)  # where services.sh binds the local server
    dbname: str = "mlflow"  # the server's backend database in the project's PostgreSQL
    experiment: str = "forecast"
    registered_model_prefix: str = Field("forecast", pattern=r"^[A-Za-z0-9_.-]+$")

    def model_name(self, model: str, horizon: int) -> str:
        return f"{self.registered_model_prefix}-{model}-h{horizon}"
