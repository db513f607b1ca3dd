"""Forecast domain: walk-forward evaluated ML forecasts, registered in MLflow, served daily."""

import dagster as dg

from stock_assets.defs.forecast.assets import evaluation, predictions
from stock_assets.defs.runs import lane_tags

# Evaluates the forecast assets' automation conditions (weekly evaluation, daily predictions).
# Auxiliary lane (one slot shared with search and maintenance, lowest priority); every 5 min, so
# a replay catching up at 3600x folds many new days into one predictions run.
forecast_automation = dg.AutomationConditionSensorDefinition(
    "forecast_automation",
    target=dg.AssetSelection.assets(evaluation, predictions),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=300,
    run_tags=lane_tags("aux"),
)

defs = dg.Definitions(
    assets=[evaluation, predictions],
    sensors=[forecast_automation],
)
