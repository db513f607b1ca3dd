"""Live 1-minute bars: Kafka ticks → Spark Structured Streaming → market.live_bars_1m.

Run: `python -m spark.streaming` (on the cluster of config/spark_settings.json; `make dev` runs
it), `--available-now` to process what is on the topic and exit. Settings: StreamingSettings
(env STOCK_STREAMING_*), the warehouse (STOCK_DB_*) and Kafka (STOCK_KAFKA_*) settings.

Per micro-batch (trigger `trigger_interval`):
  * ticks are parsed (spark.transforms), watermarked on event time (`watermark`) and aggregated
    into 1-minute windows; `outputMode("update")` emits each window touched by the batch with
    its cumulative OHLCV/VWAP/count;
  * foreachBatch upserts those rows (INSERT … ON CONFLICT (symbol, ts) DO UPDATE, bound
    parameters, via a COPY-filled temp table) — replaying a batch after a crash rewrites the
    same values, so checkpoint + upsert give exactly-once bars;
  * a StreamingQueryListener logs one progress line per batch and hands the batch to the
    ledger (market.live_bars_batches: input rows, malformed records, late ticks — those whose
    window had already closed, which Spark's aggregation drops). Off the latency path: a batch
    whose progress shows no malformed record (observed metric) and no group dropped by the
    watermark is recorded from the progress alone; otherwise its exact Kafka offset range (from
    the checkpoint's offset log) is read again, each tick's window end compared with the
    watermark Spark applied to that batch, and malformed records sent to the dead-letter topic
    with the reason in headers. On start, committed batches missing from the ledger (a crash
    between commit and ledger write) are recorded the exact way.

The checkpoint (`checkpoint_dir`) holds offsets and window state: a restart resumes from it. On a
multi-machine cluster it must be on storage every executor and the driver share.

Modules: settings (StreamingSettings), checkpoint (the checkpoint's offset log), progress (the
StreamingQueryListener), job (the query, its sink and its batch ledger), cli (`main`).
"""

from spark.streaming.job import BatchAudit, LiveBarsJob
from spark.streaming.settings import StreamingSettings

__all__ = ["BatchAudit", "LiveBarsJob", "StreamingSettings"]
