"""Forecast domain: walk-forward evaluated ML forecasts, registered in MLflow, served daily."""

import dagster as dg

from stock_assets.defs.forecast.assets import evaluation, predictions

# Evaluates the forecast assets' automation conditions (weekly evaluation, daily predictions).
forecast_automation = dg.AutomationConditionSensorDefinition(
    "forecast_automation",
    target=dg.AssetSelection.assets(evaluation, predictions),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)

defs = dg.Definitions(
    assets=[evaluation, predictions],
    sensors=[forecast_automation],
)
