"""Plugins of the local Dagster instance (infra/dagster/dagster.yaml), not definitions: the run
launcher that forks warm run workers, and the PostgreSQL storage with a connection pool."""
