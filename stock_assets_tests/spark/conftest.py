"""A local[2] SparkSession for the pure transforms and the streaming job (one per test session)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from spark.session import build_session


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    active = SparkSession.getActiveSession()
    if active is not None:  # e.g. a cluster session left by another module: switch masters
        active.stop()
    session = build_session(
        "stock-tests",
        "local[2]",
        {
            "spark.sql.shuffle.partitions": "2",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
        },
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _close(a: Any, b: Any, rel: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)
    return bool(a == b)


def assert_rows_equal(
    actual: DataFrame | Sequence[dict[str, Any]],
    expected: Sequence[dict[str, Any]],
    key: Sequence[str],
    rel: float = 1e-9,
) -> None:
    """Same columns, same rows (matched on `key`, order-insensitive), floats within `rel`."""
    got = [r.asDict() for r in actual.collect()] if isinstance(actual, DataFrame) else actual
    by_key = {tuple(r[k] for k in key): r for r in got}
    assert len(by_key) == len(got), "duplicate keys in actual rows"
    want = {tuple(r[k] for k in key): r for r in expected}
    assert by_key.keys() == want.keys(), (
        f"missing {sorted(want.keys() - by_key.keys())[:5]}, "
        f"unexpected {sorted(by_key.keys() - want.keys())[:5]}"
    )
    for k, row in want.items():
        assert set(by_key[k]) == set(row), f"columns differ: {sorted(by_key[k])} vs {sorted(row)}"
        diffs = {c: (by_key[k][c], v) for c, v in row.items() if not _close(by_key[k][c], v, rel)}
        assert not diffs, f"row {k}: (actual, expected) {diffs}"


@pytest.fixture(scope="session")
def spark_cluster() -> str:
    """The standalone cluster's master URL; skips when `./infra/services.sh up spark` is not up."""
    import urllib.request

    from stock_assets.lib.settings import SparkSettings

    settings = SparkSettings.load()
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{settings.master_ui_port}/json/", timeout=3
        ) as response:
            alive = json.load(response).get("aliveworkers", 0)
    except OSError as exc:
        pytest.fail(f"Spark master not reachable ({exc}): ./infra/services.sh up spark")
    assert alive >= 1, "the Spark master has no live worker"
    return settings.master_url
