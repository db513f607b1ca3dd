"""The trading assets follow their parents through declarative automation (`trading_automation`)."""

import dagster as dg

from stock_assets.definitions import defs
from stock_assets.defs.kernel import (
    ALERTS,
    BACKTESTS,
    BARS_DAILY,
    ORDERS,
    PAPER_PORTFOLIO,
    PREDICTIONS,
    SIGNALS,
)

DAYS = ["2004-03-01", "2004-03-02", "2004-03-03"]


def _result(result: dg.EvaluateAutomationConditionsResult, key: dg.AssetKey):  # type: ignore[no-untyped-def]
    return next(r for r in result.results if r.key == key)


def test_parent_updates_request_exactly_the_followers() -> None:
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert first.total_requested == 0  # nothing upstream happened yet

        for day in DAYS:
            for key in (BARS_DAILY, SIGNALS):
                instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=day))
        second = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=first.cursor
        )
        alerts = _result(second, ALERTS).true_subset
        assert set(alerts.expensively_compute_partition_keys()) == set(DAYS)  # old days too
        assert _result(second, BACKTESTS).true_subset.size == 1
        assert _result(second, PAPER_PORTFOLIO).true_subset.size == 1
        assert _result(second, ORDERS).true_subset.size == 1  # joins the same evaluation
        # the forecast predictions follow new daily bars too, day by day
        predictions = _result(second, PREDICTIONS).true_subset
        assert set(predictions.expensively_compute_partition_keys()) == set(DAYS)
        assert second.total_requested == 2 * len(DAYS) + 3

        # Evaluated again with no new parent update: nothing more is requested.
        third = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=second.cursor
        )
        assert third.total_requested == 0
