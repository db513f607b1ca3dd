"""Forecasting: point-in-time features, purged walk-forward splits, models, baselines, metrics.

Pure code (no Dagster). Heavy libraries (lightgbm, scikit-learn, statsforecast, scipy, mlflow) are
imported inside the functions that use them, so importing the code location stays light.
"""
