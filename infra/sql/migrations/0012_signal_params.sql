-- One strategy engine (issue 14): a signal row belongs to the parameters that produced it.
-- analytics.signals holds one row per configured (symbol, strategy, parameters) and fired session;
-- params is the canonical JSON of every parameter, defaults filled in (sorted keys, no spaces:
-- stock_assets/lib/trading/strategies.py params_key), e.g. {"fast":10,"slow":30}. Rows written
-- before this migration were computed with the default parameters of the time, set here.
ALTER TABLE analytics.signals ADD COLUMN params text;

UPDATE analytics.signals SET params = CASE strategy
    WHEN 'sma_crossover' THEN '{"fast":20,"slow":50}'
    WHEN 'rsi_mean_reversion' THEN '{"overbought":70.0,"oversold":30.0,"period":14}'
    WHEN 'macd_cross' THEN '{"fast":12,"signal":9,"slow":26}'
    WHEN 'bollinger_breakout' THEN '{"nbdev":2.0,"period":20}'
END;

ALTER TABLE analytics.signals
    ALTER COLUMN params SET NOT NULL,
    ADD CONSTRAINT signals_params_is_object CHECK (jsonb_typeof(params::jsonb) = 'object'),
    DROP CONSTRAINT signals_pkey,
    ADD PRIMARY KEY (symbol, session_date, strategy, params);
