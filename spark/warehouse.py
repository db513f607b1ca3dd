"""TimescaleDB over JDBC from Spark: reads with pushed-down filters, idempotent window writes.

The PostgreSQL JDBC driver is one of the jars `spark_conf()` puts on the classpath. Writes go to
a per-run staging table over JDBC (from the executors); the driver then replaces the target's
window from it in one transaction (delete + insert, bound parameters), so a re-run overwrites.
"""

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg import sql
from pyspark.sql import DataFrame, SparkSession

from stock_assets.lib import db
from stock_assets.lib.settings import DbSettings

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


def read_table(spark: SparkSession, settings: DbSettings, table: str) -> DataFrame:
    """A lazy JDBC scan of schema.table; Spark pushes `where` filters on it into the query."""
    return spark.read.jdbc(jdbc_url(settings), table, properties=jdbc_properties(settings))


def replace_rows(
    df: DataFrame,
    settings: DbSettings,
    table: str,
    where: Sequence[tuple[str, str, Any]],
) -> int:
    """Replace the rows of schema.table matching `where` with `df`'s rows; returns rows written.

    `where` is (column, operator, value) with operator one of =, >=, <=, <, > — the window that
    `df` covers. df's columns must be target columns.
    """
    operators = {"=", ">=", "<=", "<", ">"}
    if any(op not in operators for _, op, _ in where):
        raise ValueError(f"operators must be among {sorted(operators)}")
    schema, name = table.split(".")
    stage_name = f"_stage_{name}_{uuid.uuid4().hex[:12]}"  # lowercase [a-z0-9_]: no quoting
    stage = sql.Identifier(schema, stage_name)
    target = sql.Identifier(schema, name)
    columns = sql.SQL(", ").join(map(sql.Identifier, df.columns))
    condition = sql.SQL(" AND ").join(
        sql.SQL("{} {} %s").format(sql.Identifier(col), sql.SQL(op)) for col, op, _ in where
    )
    with db.connect(settings, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE UNLOGGED TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(stage, target)
        )
    try:
        df.write.jdbc(
            jdbc_url(settings),
            f"{schema}.{stage_name}",
            mode="append",
            properties=jdbc_properties(settings) | {"batchsize": "5000"},
        )
        with db.connect(settings) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE {}").format(target, condition),
                [value for _, _, value in where],
            )
            cur = conn.execute(
                sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                    target, columns, columns, stage
                )
            )
            return cur.rowcount
    finally:
        with db.connect(settings, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
