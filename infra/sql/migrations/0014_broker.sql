-- Automated trading through a broker (issue 16): orders with idempotent client ids, their fills,
-- the broker's positions as last seen, the kill switch and an audit of every decision.
-- `source` is the broker that holds the order: 'simulator' (the internal one, default) or 'alpaca'.

-- One row per order intent; client_order_id is deterministic (stock_assets/lib/trading/broker/
-- lifecycle.py client_order_id), so a restarted run finds the row (and the broker finds the id)
-- instead of sending again. status follows the broker's order states; 'dry_run' = computed and
-- shown, never sent; 'pending_submit' = written before the send (a crash leaves it for the next
-- run to look up at the broker by client id).
CREATE TABLE trading.broker_orders (
    client_order_id  text             PRIMARY KEY,
    source           text             NOT NULL CHECK (source IN ('simulator', 'alpaca')),
    strategy         text             NOT NULL,
    symbol           text             NOT NULL,
    signal_date      date             NOT NULL,
    side             text             NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity         double precision NOT NULL CHECK (quantity > 0),
    reason           text             NOT NULL CHECK (reason IN ('signal', 'stop_loss', 'take_profit')),
    status           text             NOT NULL CHECK (status IN (
        'dry_run', 'pending_submit', 'new', 'accepted', 'pending_new', 'partially_filled', 'filled',
        'pending_cancel', 'canceled', 'expired', 'rejected', 'done_for_day', 'replaced', 'other')),
    broker_order_id  text,
    filled_qty       double precision NOT NULL DEFAULT 0,
    filled_avg_price double precision,
    reject_reason    text,
    created_at       timestamptz      NOT NULL DEFAULT now(),
    updated_at       timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX broker_orders_open ON trading.broker_orders (source, status);
CREATE INDEX broker_orders_symbol ON trading.broker_orders (symbol, created_at DESC);

-- One row per execution (a partial fill or the final fill); execution_id is the broker's.
CREATE TABLE trading.broker_fills (
    execution_id    text             PRIMARY KEY,
    client_order_id text             NOT NULL REFERENCES trading.broker_orders,
    ts              timestamptz      NOT NULL,
    event           text             NOT NULL CHECK (event IN ('partial_fill', 'fill')),
    price           double precision NOT NULL,
    quantity        double precision NOT NULL CHECK (quantity > 0),
    position_qty    double precision
);
CREATE INDEX broker_fills_order ON trading.broker_fills (client_order_id, ts);

-- The broker's positions as read on the last run (replaced per source on every run).
CREATE TABLE trading.broker_positions (
    source          text             NOT NULL,
    symbol          text             NOT NULL,
    quantity        double precision NOT NULL,
    avg_entry_price double precision NOT NULL,
    market_value    double precision,
    updated_at      timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (source, symbol)
);

-- The kill switch toggled by the dashboard (the config flag broker.kill_switch engages it too).
CREATE TABLE trading.kill_switch (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    engaged    boolean     NOT NULL,
    reason     text        NOT NULL,
    changed_by text        NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO trading.kill_switch (engaged, reason, changed_by) VALUES (false, 'initial', 'migration');

-- Every decision with its reason: sent, blocked, dry_run, cancelled, rejected, duplicate,
-- reconciled, drift, kill_switch, error.
CREATE TABLE trading.order_audit (
    audit_id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts              timestamptz NOT NULL DEFAULT now(),
    source          text        NOT NULL,
    decision        text        NOT NULL CHECK (decision IN (
        'sent', 'blocked', 'dry_run', 'cancelled', 'rejected', 'duplicate', 'reconciled', 'drift',
        'kill_switch', 'error')),
    client_order_id text,
    symbol          text,
    reason          text        NOT NULL,
    details         jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX order_audit_ts ON trading.order_audit (ts DESC);
CREATE INDEX order_audit_order ON trading.order_audit (client_order_id);

-- A position drift between the broker and the warehouse is an alert like a price move.
ALTER TABLE analytics.alerts DROP CONSTRAINT alerts_kind_check,
    ADD CONSTRAINT alerts_kind_check
        CHECK (kind IN ('percent_move', 'level_cross', 'position_drift'));
