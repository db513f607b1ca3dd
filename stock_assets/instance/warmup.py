"""Imported last by WarmRunLauncher's forkserver: builds the code locations' repositories and
jobs once, before any run worker is forked (stock_assets/instance/launcher.py `warm_up`)."""

import os

from stock_assets.instance.launcher import WARM_TARGETS_ENV, warm_up

warm_up(os.environ.get(WARM_TARGETS_ENV, ""))
