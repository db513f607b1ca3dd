-- Corporate splits used to put bars on today's share basis (prices / factor, volumes * factor for
-- every session before ex_date). Seeded with the splits derived from the bundled real history
-- (bokeh_sampledata adj_close/close steps; stock_assets/lib/splits.py, verified by a test); the
-- Dagster asset market/splits re-derives and upserts them.
CREATE TABLE market.splits (
    symbol     text             NOT NULL,
    ex_date    date             NOT NULL,
    ratio      double precision NOT NULL CHECK (ratio > 0),
    source     text             NOT NULL,
    updated_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, ex_date)
);

INSERT INTO market.splits (symbol, ex_date, ratio, source) VALUES
    ('AAPL', '2000-06-21', 2.0, 'bokeh_sampledata:adj_close/close'),
    ('AAPL', '2005-02-28', 2.0, 'bokeh_sampledata:adj_close/close'),
    ('MSFT', '2003-02-18', 2.0, 'bokeh_sampledata:adj_close/close');
