"""Monitoring domain: pipeline-wide checks measured in the stream's event time (lib/progress.py)."""

import dagster as dg

from stock_assets.defs.monitoring.checks import monitoring_checks

defs = dg.Definitions(asset_checks=monitoring_checks)
