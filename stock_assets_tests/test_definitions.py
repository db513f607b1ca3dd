import dagster as dg

from stock_assets.definitions import defs


def test_definitions_load_and_list_resources() -> None:
    repo = defs.get_repository_def()
    assert {"warehouse", "kafka"} <= set(repo.get_top_level_resources())
    assert "warehouse_maintenance" in {job.name for job in repo.get_all_jobs()}
    assert {s.name for s in repo.schedule_defs} >= {"warehouse_maintenance_schedule"}


def test_warehouse_maintenance_runs_against_the_real_warehouse(db_settings) -> None:
    from stock_assets.defs.resources import WarehouseResource

    job = defs.resolve_job_def("warehouse_maintenance")
    result = job.execute_in_process(
        resources={"warehouse": WarehouseResource(dbname=db_settings.dbname)}
    )
    assert result.success
    assert isinstance(result.dagster_run, dg.DagsterRun)
