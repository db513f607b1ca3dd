"""The producer service: market data from a source into Kafka (`stockctl produce`)."""

from stock_assets.producer.service import (
    Checkpoint,
    MarketDataProducer,
    ProducerStats,
    producer_config,
    resume_filter,
)

__all__ = ["Checkpoint", "MarketDataProducer", "ProducerStats", "producer_config", "resume_filter"]
