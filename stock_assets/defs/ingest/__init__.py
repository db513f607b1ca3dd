"""Ingest domain: Kafka -> market.raw_ticks by explicit offset ranges."""

import dagster as dg

from stock_assets.defs.ingest.assets import raw_ticks
from stock_assets.defs.ingest.sensors import ingest_ticks_job, kafka_ticks_sensor

defs = dg.Definitions(assets=[raw_ticks], jobs=[ingest_ticks_job], sensors=[kafka_ticks_sensor])
