"""Search and analytics over an Elasticsearch-API engine (no Dagster): client, templates,
indexing from the warehouse, and the queries the dashboard runs."""
