"""The standalone cluster fixture, shared with the streaming tests."""

from stock_assets_tests.spark.conftest import spark_cluster

__all__ = ["spark_cluster"]
