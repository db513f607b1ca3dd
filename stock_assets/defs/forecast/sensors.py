"""What runs the forecasts: a weekly evaluation schedule and a coalescing predictions follower.

Both jobs are in the `aux` lane (one slot shared with search, alerts and maintenance, lowest
priority) and run in process. `forecast_after_bars` requests nothing while a predictions run is
queued or in flight, then ONE ranged run over the days whose daily bars or indicators are newer
than their predictions (defs/catch_up.py): a replay catching up at 3600x folds many new days
into one run. A new model (the weekly evaluation) does not re-serve past days.
"""

from __future__ import annotations

import dagster as dg

from stock_assets.defs.catch_up import partitioned_follower
from stock_assets.defs.forecast.assets import evaluation, predictions
from stock_assets.defs.kernel import BARS_DAILY, INDICATORS, PREDICTIONS
from stock_assets.defs.runs import serial_job_tags, skip_while_in_flight
from stock_assets.lib.calendar import TIMEZONE

PREDICTIONS_JOB = "forecast_predictions"
EVALUATION_JOB = "forecast_evaluation"
PREDICTIONS_INTERVAL_S = 60

predictions_job = dg.define_asset_job(
    PREDICTIONS_JOB,
    selection=dg.AssetSelection.assets(predictions),
    description="Serve the registered forecast models for a range of NY days.",
    tags={"domain": "forecast", **serial_job_tags(PREDICTIONS_JOB, max_runtime_s=3600, lane="aux")},
    executor_def=dg.in_process_executor,
)

evaluation_job = dg.define_asset_job(
    EVALUATION_JOB,
    selection=dg.AssetSelection.assets(evaluation),
    description="Walk-forward evaluation of the forecast models; registers them in MLflow.",
    tags={"domain": "forecast", **serial_job_tags(EVALUATION_JOB, max_runtime_s=7200, lane="aux")},
    executor_def=dg.in_process_executor,
)

forecast_after_bars = partitioned_follower(
    "forecast_after_bars",
    predictions_job,
    target=PREDICTIONS,
    upstream=[BARS_DAILY, INDICATORS],
    minimum_interval_seconds=PREDICTIONS_INTERVAL_S,
    description="One predictions run over the days whose bars or indicators are newer.",
)


# Weekly: a walk-forward run refits the model once per fold; new models every week are plenty
# for a quarterly refit cadence (serving picks the newest version that predates each forecast).
@dg.schedule(
    job=evaluation_job,
    cron_schedule="0 6 * * 6",
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Saturday 06:00 New York: walk-forward evaluation and model registration.",
)
def forecast_weekly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    return skip_while_in_flight(context.instance, EVALUATION_JOB) or dg.RunRequest()
