"""TimescaleDB over JDBC from Spark: reads with pushed-down filters, idempotent window writes.

The PostgreSQL JDBC driver is one of the jars `spark_conf()` puts on the classpath. Writes go to
a per-run staging table over JDBC (from the executors); the driver then replaces the target's
window from it in one transaction (lib/frames.replace_window_from: advisory lock, delete, insert,
bound parameters), so a re-run overwrites. Tables are named by their lib/tables.py spec.
"""

import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

from psycopg import sql
from pyspark.sql import DataFrame, SparkSession

from stock_assets.lib import db, frames
from stock_assets.lib.settings import DbSettings
from stock_assets.lib.tables import TableSpec

JDBC_DRIVER = "org.postgresql.Driver"


def jdbc_url(settings: DbSettings) -> str:
    return f"jdbc:postgresql://{settings.host}:{settings.port}/{settings.dbname}"


def jdbc_properties(settings: DbSettings) -> dict[str, str]:
    return {
        "user": settings.user,
        "password": settings.password.get_secret_value(),
        "driver": JDBC_DRIVER,
        "ApplicationName": "stock-platform-spark",
    }


def read_table(spark: SparkSession, settings: DbSettings, spec: TableSpec) -> DataFrame:
    """A lazy JDBC scan of the table (its written columns); Spark pushes `where` filters on it
    into the query."""
    scan = spark.read.jdbc(jdbc_url(settings), spec.name, properties=jdbc_properties(settings))
    return scan.select(*spec.written)


def replace_rows(
    df: DataFrame,
    settings: DbSettings,
    spec: TableSpec,
    start: date | None,
    end: date | None,
    where: Mapping[str, Any] | None = None,
) -> int:
    """Replace the [start, end) window of `spec` (time column; plus `where` equalities) with
    `df`'s rows, columns conformed to the spec; returns rows written.

    The replace itself is `frames.replace_window_from` (advisory lock, DELETE, INSERT from the
    staging table), the one the polars assets use through `frames.replace_window`.
    """
    missing = set(spec.written) - set(df.columns)
    if missing:
        raise ValueError(f"{spec.name}: the frame lacks {sorted(missing)}")
    stage_name = f"_stage_{spec.table_name}_{uuid.uuid4().hex[:12]}"  # lowercase [a-z0-9_]
    stage = sql.Identifier(spec.schema_name, stage_name)
    target = sql.Identifier(spec.schema_name, spec.table_name)
    with db.connect(settings, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE UNLOGGED TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(stage, target)
        )
    try:
        df.select(*spec.written).write.jdbc(
            jdbc_url(settings),
            f"{spec.schema_name}.{stage_name}",
            mode="append",
            properties=jdbc_properties(settings) | {"batchsize": "5000"},
        )
        with db.connect(settings) as conn:
            return frames.replace_window_from(conn, spec, stage, spec.written, start, end, where)
    finally:
        with db.connect(settings, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
