-- Chunk intervals that let the bundled history (2000-2013 daily, 2024-2026 intraday) load as ONE
-- backfill. Every chunk a transaction writes holds ~10 locks (table, indexes, constraints) until
-- commit: with 1-day chunks the history's ~3,800 days need ~38,000 locks, beyond the server's
-- lock table (max_locks_per_transaction 64 x max_connections 200 = 12,800 slots) -> "out of shared
-- memory", and creating the chunks alone takes minutes. Measured on the whole history (144k
-- ticks, one COPY): 7-day chunks 786 chunks / 7,895 locks / 21 s; 30-day chunks 185 / 1,885 / 4.5 s.
-- Applies to chunks created from now on; retention (365 days raw, 30 days live) then drops data
-- in 30-day steps.
SELECT set_chunk_time_interval('market.raw_ticks', INTERVAL '30 days');
SELECT set_chunk_time_interval('market.bars_1m', INTERVAL '30 days');
SELECT set_chunk_time_interval('market.live_bars_1m', INTERVAL '30 days');
