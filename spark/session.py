"""SparkSessions on the local standalone cluster (`./infra/services.sh up spark`) or `local[N]`.

Settings: config/spark_settings.json ($STOCK_CONFIG_DIR), each overridable by STOCK_SPARK_<FIELD>.
The Kafka connector and PostgreSQL JDBC jars are those `./infra/services.sh install spark` caches
in $STOCK_STATE_DIR/cache/spark-jars (default <repo>/.local): sessions start without downloads.
"""

import logging
import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from stock_assets.lib.settings import SparkSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger(__name__)


def jars_dir() -> Path:
    return Path(os.environ.get("STOCK_STATE_DIR", REPO_ROOT / ".local")) / "cache" / "spark-jars"


def spark_conf(settings: SparkSettings | None = None, master: str | None = None) -> dict[str, str]:
    """The platform's Spark conf, e.g. for dagster-pyspark's `PySparkResource(spark_config=...)`.

    Executors run whatever the driver process has in $PYSPARK_PYTHON (no conf key sets it for a
    plain Python driver): code that does not go through `build_session` calls `use_this_python()`.
    """
    settings = settings or SparkSettings.load()
    conf = {
        "spark.master": master or settings.master_url,
        "spark.driver.host": settings.driver_host,
        "spark.driver.bindAddress": settings.driver_bind_address,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
    }
    jars = sorted(str(p) for p in jars_dir().glob("*.jar"))
    if jars:
        conf["spark.jars"] = ",".join(jars)
    else:
        log.warning("no jars in %s (no Kafka/JDBC): ./infra/services.sh install spark", jars_dir())
    return conf


def use_this_python() -> None:
    """Make executors (and local[N] Python workers) run this interpreter, i.e. the project venv."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def build_session(
    app_name: str, master: str | None = None, extra_conf: dict[str, str] | None = None
) -> SparkSession:
    """A session on the configured cluster (`master=None`) or e.g. `"local[2]"`; `extra_conf` wins.

    getOrCreate semantics: if this process already has a session, it is returned and static settings
    (master, jars) are not changed; call `.stop()` on it first to switch.
    """
    conf = spark_conf(SparkSettings.load(), master) | (extra_conf or {})
    use_this_python()
    builder = SparkSession.builder.appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
