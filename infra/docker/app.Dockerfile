# One image for every Python process of the platform (Dagster webserver/daemon/code location,
# producer, Spark streaming job and Spark master/worker, Dash): the same uv.lock as local dev.
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven curl procps \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir "uv==0.13.8"

WORKDIR /app
ENV UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH=/app/.venv/bin:$PATH \
    PYSPARK_PYTHON=/app/.venv/bin/python \
    STOCK_CONFIG_DIR=/app/config \
    DAGSTER_HOME=/opt/dagster/home \
    SPARK_SCALA_VERSION=2.13

COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN uv sync --frozen --no-dev \
    && STOCK_STATE_DIR=/app/.local ./infra/services.sh install spark \
    && mkdir -p "$DAGSTER_HOME" \
    && cp infra/dagster/dagster.docker.yaml "$DAGSTER_HOME/dagster.yaml"
