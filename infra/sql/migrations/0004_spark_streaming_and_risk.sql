-- The Spark streaming job's per-micro-batch ledger, and the cross-symbol risk analytics computed on
-- the Spark cluster (stock_assets/defs/risk).

-- One row per micro-batch of the live-bars query (spark/streaming.py), written right after the
-- batch commits (and, after a crash, for committed batches still missing here when the job
-- restarts): what came in, and what did NOT become bars and why. Late ticks are those whose
-- 1-minute window had closed (window end <= late_watermark) when their batch ran; Spark's
-- stateful aggregation drops them, this table keeps the count.
CREATE TABLE market.live_bars_batches (
    query_id        text        NOT NULL,  -- the checkpoint's query id (stable across restarts)
    batch_id        bigint      NOT NULL,
    input_rows      bigint      NOT NULL,
    valid_ticks     bigint      NOT NULL,
    late_ticks      bigint      NOT NULL,
    malformed       bigint      NOT NULL,
    bars_upserted   integer,               -- null for a batch recorded after a restart
    late_watermark  timestamptz,
    first_late_ts   timestamptz,
    last_late_ts    timestamptz,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (query_id, batch_id)
);

-- Rolling beta/correlation of each symbol's daily return against the equal-weight market of the
-- symbols present that day, over the trailing `window_days` sessions ending at session_date.
CREATE TABLE analytics.rolling_beta (
    symbol        text             NOT NULL,
    session_date  date             NOT NULL,
    window_days   integer          NOT NULL CHECK (window_days > 1),
    beta          double precision,
    correlation   double precision,
    volatility    double precision,  -- annualised standard deviation of the symbol's returns
    market_return double precision NOT NULL,
    n_obs         integer          NOT NULL,
    PRIMARY KEY (symbol, session_date, window_days)
);
CREATE INDEX rolling_beta_date ON analytics.rolling_beta (session_date);
