-- The trading bot: backtest results and their trades, and price-movement alerts.

-- One row per configured (strategy, symbol, parameters): re-running replaces the metrics.
-- params holds the strategy parameters and the backtest settings; params_hash is a stable hash of
-- them (stock_assets/lib/trading/config.py BookEntry.params_hash). Fractions, not percents.
CREATE TABLE trading.backtests (
    backtest_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    strategy              text             NOT NULL,
    symbol                text             NOT NULL,
    params_hash           text             NOT NULL,
    params                jsonb            NOT NULL,
    first_session         date             NOT NULL,
    last_session          date             NOT NULL,
    sessions              integer          NOT NULL,
    initial_cash          double precision NOT NULL,
    final_equity          double precision NOT NULL,
    total_return          double precision NOT NULL,
    cagr                  double precision NOT NULL,
    sharpe                double precision NOT NULL,
    sortino               double precision NOT NULL,
    max_drawdown          double precision NOT NULL CHECK (max_drawdown >= 0),
    max_drawdown_duration integer          NOT NULL,  -- sessions
    win_rate              double precision NOT NULL,
    trades                integer          NOT NULL,
    exposure              double precision NOT NULL,
    run_at                timestamptz      NOT NULL DEFAULT now(),
    UNIQUE (strategy, symbol, params_hash)
);

CREATE TABLE trading.backtest_trades (
    backtest_id bigint           NOT NULL REFERENCES trading.backtests ON DELETE CASCADE,
    trade_no    integer          NOT NULL,
    direction   text             NOT NULL CHECK (direction IN ('long', 'short')),
    entry_date  date             NOT NULL,
    entry_price double precision NOT NULL,
    quantity    double precision NOT NULL CHECK (quantity > 0),
    exit_date   date             NOT NULL,
    exit_price  double precision NOT NULL,
    exit_reason text             NOT NULL
        CHECK (exit_reason IN ('signal', 'stop_loss', 'take_profit', 'end')),
    commission  double precision NOT NULL,
    pnl         double precision NOT NULL,
    trade_return double precision NOT NULL,  -- pnl / entry value
    PRIMARY KEY (backtest_id, trade_no)
);

-- Price-movement alerts, one row per event. alert_id is deterministic (a hash of the rule's
-- definition, symbol, session and direction), so re-evaluating the same bars never adds a row.
--   rule       the rule's configured name          kind       'percent_move' | 'level_cross'
--   direction  'up' | 'down'                        value      the move in % or the close
--   threshold  the rule's % threshold or level      message    one human-readable sentence
--   delivered_at  when the webhook accepted it (NULL: not delivered / no webhook configured)
CREATE TABLE analytics.alerts (
    alert_id     text             PRIMARY KEY,
    symbol       text             NOT NULL,
    session_date date             NOT NULL,
    rule         text             NOT NULL,
    kind         text             NOT NULL CHECK (kind IN ('percent_move', 'level_cross')),
    direction    text             NOT NULL CHECK (direction IN ('up', 'down')),
    value        double precision NOT NULL,
    threshold    double precision NOT NULL,
    message      text             NOT NULL,
    created_at   timestamptz      NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
CREATE INDEX alerts_session_date ON analytics.alerts (session_date DESC);
CREATE INDEX alerts_symbol ON analytics.alerts (symbol, session_date DESC);
CREATE INDEX alerts_created_at ON analytics.alerts (created_at);
