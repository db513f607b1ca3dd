"""The pipeline's progress for the Pipeline page: lib/progress.py over the dashboard's read-only
warehouse pool and a short-lived, never-joining Kafka consumer (every call time-bounded)."""

from __future__ import annotations

from datetime import date

from dash_app.data.warehouse import Warehouse
from stock_assets.lib import progress
from stock_assets.lib.settings import KafkaSettings
from stock_assets.lib.topics import TICKS, topic_name


def pipeline_progress(
    warehouse: Warehouse,
    kafka: KafkaSettings | None,
    timeout_s: float,
    signals_through: date | None = None,
) -> progress.Progress:
    """Progress per stage and per partition; `signals_through` = the newest session the signals
    asset has materialized (from Dagster), else the newest signal row stands in."""
    consumer = None
    if kafka is not None:
        from confluent_kafka import Consumer

        timeout_ms = int(timeout_s * 1000)
        consumer = Consumer(
            {
                "bootstrap.servers": kafka.bootstrap_servers,
                "client.id": f"{kafka.client_id}.dashboard",
                "group.id": f"{kafka.client_id}.dashboard-progress",  # assigned, never joined
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "socket.timeout.ms": timeout_ms,
                "socket.connection.setup.timeout.ms": timeout_ms,
            }
        )
    tz = warehouse.exchange_tz
    overrides = {}
    if signals_through is not None:
        overrides["signals"] = progress.stage_time(signals_through, "session", tz)
    try:
        with warehouse.connection() as conn:
            return progress.measure(
                conn,
                consumer,
                topic_name(TICKS, kafka.topic_prefix if kafka else ""),
                timeout_s=timeout_s,
                overrides=overrides,
                tz=tz,
            )
    finally:
        if consumer is not None:
            consumer.close()
