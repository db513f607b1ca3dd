"""Warehouse maintenance: retention on the Apache build of TimescaleDB (no native policies)."""

import dagster as dg

from stock_assets.defs.resources import WarehouseResource
from stock_assets.defs.runs import lane_tags
from stock_assets.lib import retention
from stock_assets.lib.calendar import TIMEZONE


@dg.op
def enforce_retention(
    context: dg.OpExecutionContext, warehouse: WarehouseResource
) -> dict[str, int]:
    """Drop hypertable chunks older than each table's retention."""
    with warehouse.connection() as conn:
        dropped = retention.enforce(conn)
    context.log.info(f"chunks dropped per table: {dropped}")
    return dropped


@dg.job(tags={"domain": "warehouse", **lane_tags("aux")}, executor_def=dg.in_process_executor)
def warehouse_maintenance() -> None:
    enforce_retention()


warehouse_maintenance_schedule = dg.ScheduleDefinition(
    job=warehouse_maintenance,
    cron_schedule="30 3 * * *",
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

defs = dg.Definitions(jobs=[warehouse_maintenance], schedules=[warehouse_maintenance_schedule])
