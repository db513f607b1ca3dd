-- Schemas, the market hypertables and the Kafka ingest ledger.
CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE SCHEMA IF NOT EXISTS market;
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE SCHEMA IF NOT EXISTS trading;
CREATE SCHEMA IF NOT EXISTS ingest;

-- Raw ticks exactly as they were on Kafka: one row per (partition, offset) of the ticks topic.
-- Duplicated or bad prints are kept here and handled by the cleaning step.
CREATE TABLE market.raw_ticks (
    ts              timestamptz      NOT NULL,
    symbol          text             NOT NULL,
    price           double precision NOT NULL,
    size            double precision NOT NULL,
    source          text             NOT NULL,
    seq             bigint           NOT NULL,
    kafka_partition integer          NOT NULL,
    kafka_offset    bigint           NOT NULL,
    ingested_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (kafka_partition, kafka_offset, ts)
);
SELECT create_hypertable('market.raw_ticks', 'ts', chunk_time_interval => interval '1 day');
CREATE INDEX raw_ticks_symbol_ts ON market.raw_ticks (symbol, ts DESC);

-- Cleaned, split-adjusted 1-minute bars (Dagster).
CREATE TABLE market.bars_1m (
    symbol      text             NOT NULL,
    ts          timestamptz      NOT NULL,
    open        double precision NOT NULL,
    high        double precision NOT NULL,
    low         double precision NOT NULL,
    close       double precision NOT NULL,
    volume      double precision NOT NULL,
    vwap        double precision NOT NULL,
    trade_count integer          NOT NULL,
    PRIMARY KEY (symbol, ts)
);
SELECT create_hypertable('market.bars_1m', 'ts', chunk_time_interval => interval '7 days');

-- Live 1-minute bars written by the Spark streaming job (upserted per window).
CREATE TABLE market.live_bars_1m (
    symbol      text             NOT NULL,
    ts          timestamptz      NOT NULL,
    open        double precision NOT NULL,
    high        double precision NOT NULL,
    low         double precision NOT NULL,
    close       double precision NOT NULL,
    volume      double precision NOT NULL,
    vwap        double precision NOT NULL,
    trade_count integer          NOT NULL,
    updated_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, ts)
);
SELECT create_hypertable('market.live_bars_1m', 'ts', chunk_time_interval => interval '1 day');

-- Daily aggregates per exchange session.
CREATE TABLE market.bars_daily (
    symbol         text             NOT NULL,
    session_date   date             NOT NULL,
    open           double precision NOT NULL,
    high           double precision NOT NULL,
    low            double precision NOT NULL,
    close          double precision NOT NULL,
    volume         double precision NOT NULL,
    vwap           double precision,
    return_1d      double precision,
    realized_vol   double precision,
    trade_count    integer          NOT NULL,
    PRIMARY KEY (symbol, session_date)
);

-- Kafka offset ranges [start_offset, end_offset) already loaded, written in the same transaction
-- as the rows: overlapping ranges are rejected, so a range can never be loaded twice.
CREATE TABLE ingest.kafka_offsets (
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    start_offset bigint      NOT NULL,
    end_offset   bigint      NOT NULL,
    row_count    bigint      NOT NULL,
    run_id       text,
    loaded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, start_offset),
    CHECK (end_offset > start_offset),
    EXCLUDE USING gist (topic WITH =, partition WITH =, int8range(start_offset, end_offset) WITH &&)
);
