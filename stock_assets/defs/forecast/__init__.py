"""Forecast domain: walk-forward evaluated ML forecasts, registered in MLflow, served daily."""

import dagster as dg

from stock_assets.defs.forecast.assets import evaluation, predictions
from stock_assets.defs.forecast.sensors import (
    evaluation_job,
    forecast_after_bars,
    forecast_weekly,
    predictions_job,
)

defs = dg.Definitions(
    assets=[evaluation, predictions],
    jobs=[predictions_job, evaluation_job],
    sensors=[forecast_after_bars],
    schedules=[forecast_weekly],
)
