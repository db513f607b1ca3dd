"""Forecast resources: the MLflow registry and the walk-forward settings."""

from __future__ import annotations

import dagster as dg

from stock_assets.lib.forecast.evaluate import WalkForwardConfig
from stock_assets.lib.forecast.models import ModelSpec
from stock_assets.lib.forecast.settings import MlflowSettings


class MlflowResource(dg.ConfigurableResource):
    """The MLflow tracking server + registry (unset fields: config/mlflow_settings.json)."""

    tracking_uri: str | None = None
    experiment: str | None = None
    registered_model_prefix: str | None = None

    def settings(self) -> MlflowSettings:
        overrides = {
            k: v
            for k, v in {
                "tracking_uri": self.tracking_uri,
                "experiment": self.experiment,
                "registered_model_prefix": self.registered_model_prefix,
            }.items()
            if v is not None
        }
        return MlflowSettings.load(**overrides)


class ForecastConfigResource(dg.ConfigurableResource):
    """Walk-forward and model settings (defaults: quarterly refits after two years, embargo 5)."""

    horizons: list[int] = [1, 5]  # noqa: RUF012 (pydantic copies field defaults)
    test_size: int = 63
    min_train: int = 504
    embargo: int = 5
    window: str = "expanding"
    max_train: int | None = None
    n_estimators: int = 200
    learning_rate: float = 0.03
    seed: int = 7
    statsforecast_baselines: bool = True

    def walk_forward(self) -> WalkForwardConfig:
        if self.window not in ("expanding", "rolling"):
            raise ValueError("window must be 'expanding' or 'rolling'")
        return WalkForwardConfig(
            horizons=tuple(self.horizons),
            test_size=self.test_size,
            min_train=self.min_train,
            embargo=self.embargo,
            window="rolling" if self.window == "rolling" else "expanding",
            max_train=self.max_train,
            spec=ModelSpec(
                n_estimators=self.n_estimators, learning_rate=self.learning_rate, seed=self.seed
            ),
            statsforecast_baselines=self.statsforecast_baselines,
        )
