"""Keyless market-data sources: replay of real packaged bars, a GBM simulator (pure, no Kafka)."""
