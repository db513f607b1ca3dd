"""A PySpark session on the platform's standalone Spark cluster, as a Dagster resource.

dagster-pyspark's `PySparkResource` builds the session; this resource wraps it so that (1)
pyspark is imported only when a step that uses Spark starts — `dagster_pyspark.resources` imports
pyspark at module level, which would cost every run of every job ~1 s of imports —, (2) the
session is stopped after the step (PySparkResource never stops it and would keep the cluster's
cores), and (3) an active session on another master is refused instead of silently reused
(PySparkResource's getOrCreate would hand it back).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field, PrivateAttr

from stock_assets.lib.settings import SparkSettings

if TYPE_CHECKING:
    from pyspark import SparkContext
    from pyspark.sql import SparkSession


class SparkClusterResource(dg.ConfigurableResource):
    """A SparkSession on the cluster of config/spark_settings.json, for one step.

    The conf (master, Kafka/JDBC jars, UTC) comes from `spark.session.spark_conf()` at run time —
    nothing is read at import — and `spark_config` overrides it. `cores_max` caps the app so the
    long-running streaming job keeps its core. The session is stopped after the step, which
    frees the cluster's cores (in-process executors would otherwise keep it until exit).
    """

    spark_config: dict[str, Any] = Field(default_factory=dict)
    master: str | None = None
    app_name: str = "stock-assets"
    cores_max: int | None = 1

    _spark_session: SparkSession | None = PrivateAttr(default=None)

    @property
    def spark_session(self) -> SparkSession:
        if self._spark_session is None:
            raise dg.DagsterInvariantViolationError("the Spark session exists only during a step")
        return self._spark_session

    @property
    def spark_context(self) -> SparkContext:
        return self.spark_session.sparkContext

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from pyspark.sql import SparkSession

        master = self.master or SparkSettings.load().master_url
        active = SparkSession.getActiveSession()
        if active is not None and active.conf.get("spark.master") != master:
            raise dg.Failure(
                f"this process already runs a SparkSession on {active.conf.get('spark.master')};"
                f" stop it before using {master}"
            )
        from dagster_pyspark import PySparkResource

        from spark.session import spark_conf, use_this_python

        conf = {"spark.ui.showConsoleProgress": "false", "spark.app.name": self.app_name}
        if self.cores_max:
            conf["spark.cores.max"] = str(self.cores_max)
        conf |= {k: str(v) for k, v in self.spark_config.items()}
        use_this_python()
        pyspark = PySparkResource(spark_config=spark_conf(SparkSettings.load(), master) | conf)
        pyspark.setup_for_execution(context)
        self._spark_session = pyspark.spark_session

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._spark_session is not None:
            self._spark_session.stop()
            self._spark_session = None
