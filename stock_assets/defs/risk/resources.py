"""A PySpark session on the platform's standalone Spark cluster, as a Dagster resource.

The same interface as dagster-pyspark's PySparkResource (`spark_session`, `spark_context`,
`spark_config`), but a plain ConfigurableResource: subclassing PySparkResource would import
pyspark (py4j, ~1 s) whenever the code location loads, i.e. in every run of every job. Here pyspark
is imported only when a step that uses the resource starts.
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

        from spark.session import build_session

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
