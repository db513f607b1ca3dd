"""Model registry on an MLflow tracking server: log a trained model, pick a version to serve.

Each registered version carries tags `train_first_date`, `train_last_date` (the last issue session
of a training row) and `data_end_date` (the last session whose data — features or labels — the
fit used: train_last_date + horizon sessions). Serving for an issue session d takes the newest
version with data_end_date <= d, so a forecast never comes from a model that saw data after it
was issued.
"""

from __future__ import annotations

import hashlib
import pickle
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from stock_assets.lib.forecast.models import FittedModel
from stock_assets.lib.forecast.settings import MlflowSettings

DATA_END_TAG = "data_end_date"


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    run_id: str
    data_end_date: date

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"


def data_version(df: pl.DataFrame) -> str:
    """A content hash of the training frame (sorted rows, CSV text): the data version tag."""
    ordered = df.sort(df.columns[:2]) if df.width >= 2 else df
    return hashlib.sha256(ordered.write_csv().encode()).hexdigest()[:16]


def _client(settings: MlflowSettings) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def log_model(
    settings: MlflowSettings,
    fitted: FittedModel,
    *,
    model: str,
    horizon: int,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    data_end_date: date,
) -> RegisteredModel:
    """Record one trained model (params, window, data version, metrics) and register a version."""
    client = _client(settings)
    experiment = client.get_experiment_by_name(settings.experiment)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(settings.experiment)
    )
    name = settings.model_name(model, horizon)
    all_tags = {**tags, DATA_END_TAG: data_end_date.isoformat(), "horizon": str(horizon)}
    run = client.create_run(experiment_id, tags=all_tags, run_name=f"{name} {data_end_date}")
    run_id = run.info.run_id
    for key, value in params.items():
        client.log_param(run_id, key, value)
    for key, value in metrics.items():
        if value == value:  # skip NaN
            client.log_metric(run_id, key, float(value))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pkl"
        path.write_bytes(pickle.dumps(fitted))
        client.log_artifact(run_id, str(path), artifact_path="model")
    client.set_terminated(run_id)
    try:
        client.create_registered_model(name)
    except Exception as exc:  # already registered (RESOURCE_ALREADY_EXISTS)
        if "RESOURCE_ALREADY_EXISTS" not in str(exc):
            raise
    version = client.create_model_version(
        name, f"runs:/{run_id}/model", run_id=run_id, tags=all_tags
    )
    return RegisteredModel(name, str(version.version), run_id, data_end_date)


def versions(settings: MlflowSettings, model: str, horizon: int) -> list[RegisteredModel]:
    """Every registered version of the model, oldest first."""
    client = _client(settings)
    name = settings.model_name(model, horizon)
    found = client.search_model_versions("name = '" + name.replace("'", "") + "'")
    out = [
        RegisteredModel(name, str(v.version), v.run_id, date.fromisoformat(v.tags[DATA_END_TAG]))
        for v in found
        if DATA_END_TAG in v.tags
    ]
    return sorted(out, key=lambda v: int(v.version))


def serving_version(candidates: list[RegisteredModel], issued: date) -> RegisteredModel | None:
    """The newest version whose training data ends at or before the issue session."""
    usable = [v for v in candidates if v.data_end_date <= issued]
    return max(usable, key=lambda v: (v.data_end_date, int(v.version)), default=None)


def load(settings: MlflowSettings, version: RegisteredModel) -> FittedModel:
    """The pickled model of a registered version (downloaded through the server)."""
    from mlflow.artifacts import download_artifacts

    with tempfile.TemporaryDirectory() as tmp:
        local = download_artifacts(
            run_id=version.run_id,
            artifact_path="model/model.pkl",
            dst_path=tmp,
            tracking_uri=settings.tracking_uri,
        )
        fitted: FittedModel = pickle.loads(Path(local).read_bytes())
    return fitted
