"""dagster-pyspark on the platform's standalone Spark cluster."""

from typing import Any

import dagster as dg
from dagster_pyspark import PySparkResource
from pydantic import Field
from pyspark.sql import SparkSession

from spark.session import build_session
from stock_assets.lib.settings import SparkSettings


class SparkClusterResource(PySparkResource):
    """A PySparkResource whose session runs on the cluster of config/spark_settings.json.

    The conf (master, Kafka/JDBC jars, UTC) comes from `spark.session.spark_conf()` at run time —
    nothing is read at import — and `spark_config` overrides it. `cores_max` caps the app so the
    long-running streaming job keeps its core. The session is stopped after the step, which
    frees the cluster's cores (in-process executors would otherwise keep it until exit).
    """

    spark_config: dict[str, Any] = Field(default_factory=dict)
    master: str | None = None
    app_name: str = "stock-assets"
    cores_max: int | None = 1

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        master = self.master or SparkSettings.load().master_url
        active = SparkSession.getActiveSession()
        if active is not None and active.conf.get("spark.master") != master:
            raise dg.Failure(
                f"this process already runs a SparkSession on {active.conf.get('spark.master')};"
                f" stop it before using {master}"
            )
        conf = {"spark.ui.showConsoleProgress": "false"}
        if self.cores_max:
            conf["spark.cores.max"] = str(self.cores_max)
        extra = conf | {k: str(v) for k, v in self.spark_config.items()}
        self._spark_session = build_session(self.app_name, master, extra)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._spark_session is not None:
            self._spark_session.stop()
            self._spark_session = None
