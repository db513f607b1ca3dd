"""Loading the code location does not import the forecast domain's heavy libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("lightgbm", "sklearn", "statsforecast", "mlflow", "scipy", "statsmodels")


def test_definitions_do_not_import_forecast_libraries() -> None:
    code = (
        "import sys, stock_assets.definitions\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
