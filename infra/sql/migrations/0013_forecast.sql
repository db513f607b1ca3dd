-- Forecasts (issue 15): predictions as a hypertable, walk-forward evaluation metrics.
CREATE SCHEMA IF NOT EXISTS forecast;

-- One forecast of the log return log(close[target] / close[issue]) per (symbol, horizon, model, kind,
-- issue session). kind 'walk_forward' = out-of-sample forecasts of the evaluation (the model of the
-- fold that preceded it); 'live' = forecasts of a registered model version (never trained on data
-- after issued_at). actual_return is filled where the target close is known.
CREATE TABLE forecast.predictions (
    issued_at      timestamptz      NOT NULL,  -- close of the issue session (data used: at or before it)
    symbol         text             NOT NULL,
    horizon        integer          NOT NULL CHECK (horizon >= 1),
    model          text             NOT NULL,
    kind           text             NOT NULL CHECK (kind IN ('walk_forward', 'live')),
    session_date   date             NOT NULL,  -- issue session
    target_date    date             NOT NULL,  -- the session whose close is forecast
    target_at      timestamptz      NOT NULL,  -- close of the target session
    model_version  text             NOT NULL,  -- 'fold <k>' or '<registered model>/<version>'
    pred_return    double precision NOT NULL,
    lower_return   double precision,
    upper_return   double precision,
    actual_return  double precision,
    created_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, horizon, model, kind, issued_at)
);
SELECT create_hypertable('forecast.predictions', 'issued_at', chunk_time_interval => interval '365 days');
CREATE INDEX predictions_model_time ON forecast.predictions (model, horizon, issued_at DESC);

-- Out-of-sample metrics of the latest evaluation per (symbol, horizon, model); symbol '*' = pooled.
CREATE TABLE forecast.evaluation (
    symbol              text             NOT NULL,
    horizon             integer          NOT NULL,
    model               text             NOT NULL,
    n                   bigint           NOT NULL,
    first_date          date             NOT NULL,
    last_date           date             NOT NULL,
    mae                 double precision NOT NULL,
    rmse                double precision NOT NULL,
    rmse_vs_random_walk double precision,
    hit_rate            double precision,
    hits                bigint,
    directional_n       bigint           NOT NULL,
    p_value             double precision,
    coverage            double precision,
    strategy_return     double precision,
    strategy_sharpe     double precision,
    buy_hold_return     double precision,
    trades              bigint,
    model_version       text,            -- registered version trained on the whole labelled history
    evaluated_at        timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, horizon, model)
);
