-- Indicators, signals and the paper-trading ledger.
CREATE TABLE analytics.indicators (
    symbol       text NOT NULL,
    session_date date NOT NULL,
    close        double precision NOT NULL,
    sma_20       double precision,
    sma_50       double precision,
    ema_12       double precision,
    ema_26       double precision,
    rsi_14       double precision,
    macd         double precision,
    macd_signal  double precision,
    macd_hist    double precision,
    bb_upper     double precision,
    bb_middle    double precision,
    bb_lower     double precision,
    atr_14       double precision,
    obv          double precision,
    PRIMARY KEY (symbol, session_date)
);

CREATE TABLE analytics.signals (
    symbol       text NOT NULL,
    session_date date NOT NULL,
    strategy     text NOT NULL,
    side         text NOT NULL CHECK (side IN ('buy', 'sell')),
    strength     double precision NOT NULL CHECK (strength BETWEEN 0 AND 1),
    price        double precision NOT NULL,
    reason       text NOT NULL,
    PRIMARY KEY (symbol, session_date, strategy)
);
CREATE INDEX signals_date ON analytics.signals (session_date);

CREATE TABLE trading.accounts (
    account_id   text PRIMARY KEY,
    initial_cash double precision NOT NULL CHECK (initial_cash > 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One order per (account, signal): re-applying a signal is a no-op.
CREATE TABLE trading.orders (
    order_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   text NOT NULL REFERENCES trading.accounts,
    symbol       text NOT NULL,
    session_date date NOT NULL,
    strategy     text NOT NULL,
    side         text NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity     double precision NOT NULL CHECK (quantity > 0),
    status       text NOT NULL CHECK (status IN ('new', 'filled', 'rejected', 'cancelled')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, symbol, session_date, strategy)
);

CREATE TABLE trading.fills (
    order_id   bigint PRIMARY KEY REFERENCES trading.orders,
    ts         timestamptz NOT NULL,
    price      double precision NOT NULL CHECK (price > 0),
    quantity   double precision NOT NULL CHECK (quantity > 0),
    commission double precision NOT NULL CHECK (commission >= 0)
);

CREATE TABLE trading.positions (
    account_id text NOT NULL REFERENCES trading.accounts,
    symbol     text NOT NULL,
    quantity   double precision NOT NULL,
    avg_price  double precision NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, symbol)
);

CREATE TABLE trading.equity (
    account_id      text NOT NULL REFERENCES trading.accounts,
    ts              timestamptz NOT NULL,
    cash            double precision NOT NULL,
    positions_value double precision NOT NULL,
    equity          double precision NOT NULL,
    PRIMARY KEY (account_id, ts)
);
