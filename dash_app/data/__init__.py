"""The dashboard's data sources, one module each: `warehouse` (TimescaleDB), `kafka` (offsets and
consumer groups), `dagster` (GraphQL), `progress` (the pipeline's event-time progress)."""
