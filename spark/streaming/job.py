"""The live-bars query: Kafka ticks → 1-minute bars upserted, and its batch ledger."""

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from spark import transforms as T
from spark.streaming.checkpoint import CheckpointOffsets
from spark.streaming.progress import ProgressLogger
from spark.streaming.settings import StreamingSettings
from stock_assets.lib import db, tables
from stock_assets.lib.marketdata import from_ts_us
from stock_assets.lib.settings import DbSettings, KafkaSettings
from stock_assets.lib.topics import DEAD_LETTER, TICKS, topic_name

log = logging.getLogger("spark.streaming")

DLQ_STAGE = "spark-live-bars"
ALLOW_MULTIPLE = "spark.sql.streaming.statefulOperator.allowMultiple"


@dataclass(frozen=True)
class BatchAudit:
    """What one micro-batch read, and what of it could not become bars."""

    input_rows: int
    valid_ticks: int
    late_ticks: int
    malformed: int
    late_watermark: datetime | None
    first_late_ts: datetime | None
    last_late_ts: datetime | None


LIVE = tables.LIVE_BARS_1M
_VALUES = [c for c in LIVE.written if c not in LIVE.primary_key]
UPSERT_BARS = sql.SQL(
    "INSERT INTO {table} AS b ({cols}, updated_at) SELECT {cols}, clock_timestamp()"
    " FROM live_bars_stage ON CONFLICT ({key}) DO UPDATE SET {sets},"
    " updated_at = EXCLUDED.updated_at"
).format(
    table=sql.Identifier(LIVE.schema_name, LIVE.table_name),
    cols=sql.SQL(", ").join(map(sql.Identifier, LIVE.written)),
    key=sql.SQL(", ").join(map(sql.Identifier, LIVE.primary_key)),
    sets=sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in _VALUES
    ),
)
COPY_STAGE = sql.SQL("COPY live_bars_stage ({}) FROM STDIN").format(
    sql.SQL(", ").join(map(sql.Identifier, LIVE.written))
)

UPSERT_BATCH = """
INSERT INTO market.live_bars_batches
    (query_id, batch_id, input_rows, valid_ticks, late_ticks, malformed, bars_upserted,
     late_watermark, first_late_ts, last_late_ts)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (query_id, batch_id) DO UPDATE SET
    input_rows = EXCLUDED.input_rows, valid_ticks = EXCLUDED.valid_ticks,
    late_ticks = EXCLUDED.late_ticks, malformed = EXCLUDED.malformed,
    bars_upserted = coalesce(EXCLUDED.bars_upserted, live_bars_batches.bars_upserted),
    late_watermark = EXCLUDED.late_watermark, first_late_ts = EXCLUDED.first_late_ts,
    last_late_ts = EXCLUDED.last_late_ts, recorded_at = now()
"""

OBSERVED = "ticks"  # observed metrics of the parsed stream: rows, malformed


class LiveBarsJob:
    """The streaming query, its foreachBatch sink and its batch ledger, on a given SparkSession."""

    def __init__(
        self,
        spark: SparkSession,
        settings: StreamingSettings,
        db_settings: DbSettings,
        kafka_settings: KafkaSettings,
    ) -> None:
        self.spark = spark
        self.settings = settings
        self.db_settings = db_settings
        self.kafka = kafka_settings
        self.topic = topic_name(TICKS, kafka_settings.topic_prefix)
        self.dlq_topic = topic_name(DEAD_LETTER, kafka_settings.topic_prefix)
        self.offsets = CheckpointOffsets(settings.checkpoint())
        self.listener = ProgressLogger(self._queue_progress)
        self._listening = False
        self._bars_written: dict[int, int] = {}
        self._ledger_queue: queue.Queue[Any] = queue.Queue()
        self.ledger_errors: list[str] = []
        threading.Thread(target=self._ledger_worker, name="ledger", daemon=True).start()

    def _kafka_reader(self, stream: bool) -> Any:
        reader = self.spark.readStream if stream else self.spark.read
        return reader.format("kafka").option(
            "kafka.bootstrap.servers", self.kafka.bootstrap_servers
        )

    def bars_stream(self) -> DataFrame:
        """The streaming bars DataFrame: Kafka → valid ticks → watermark → 1-minute bars."""
        reader = (
            self._kafka_reader(stream=True)
            .option("subscribe", self.topic)
            .option("startingOffsets", self.settings.starting_offsets)
        )
        if self.settings.max_offsets_per_trigger:
            reader = reader.option("maxOffsetsPerTrigger", self.settings.max_offsets_per_trigger)
        raw = reader.load()
        if self.settings.source_tasks:
            raw = raw.coalesce(self.settings.source_tasks)
        parsed = T.parse_ticks(raw).observe(
            OBSERVED,
            F.count(F.lit(1)).alias("rows"),
            F.count(F.when(F.col("error").isNotNull(), 1)).alias("malformed"),
        )
        ticks = T.valid_ticks(parsed)
        return T.bars_1m(ticks.withWatermark("ts", self.settings.watermark))

    def start(self, *, available_now: bool = False) -> StreamingQuery:
        """Start the query (resuming from the checkpoint if there is one)."""
        self.spark.conf.set("spark.sql.shuffle.partitions", str(self.settings.shuffle_partitions))
        self.reconcile()
        if not self._listening:
            self.spark.streams.addListener(self.listener)
            self._listening = True
        checkpoint = self.settings.checkpoint()
        checkpoint.mkdir(parents=True, exist_ok=True)
        writer = (
            self.bars_stream()
            .writeStream.queryName(self.settings.query_name)
            .outputMode("update")
            .option("checkpointLocation", str(checkpoint))
            .foreachBatch(self.write_batch)
        )
        if available_now:
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=self.settings.trigger_interval)
        log.info(
            "reading %s from %s (watermark %s, trigger %s); checkpoint %s; writing %s",
            self.topic,
            self.kafka.bootstrap_servers,
            self.settings.watermark,
            "availableNow" if available_now else self.settings.trigger_interval,
            checkpoint,
            self.db_settings.describe(),
        )
        return writer.start()

    def stop_listening(self) -> None:
        if self._listening:
            self.spark.streams.removeListener(self.listener)
            self._listening = False

    # -- the sink -------------------------------------------------------------------------------

    def write_batch(self, bars: DataFrame, batch_id: int) -> None:
        """foreachBatch: upsert the batch's updated bars in one transaction."""
        t0 = time.monotonic()
        rows = bars.select(
            "symbol", F.unix_micros("ts").alias("ts_us"), *T.BAR_COLUMNS[2:]
        ).collect()
        t1 = time.monotonic()
        if rows:
            with db.connect(self.db_settings) as conn, conn.transaction():
                self._upsert_bars(conn, rows)
        self._bars_written[batch_id] = len(rows)
        log.info(
            "batch %d: %d bars upserted (aggregate %.0f ms, upsert %.0f ms)",
            batch_id,
            len(rows),
            (t1 - t0) * 1000,
            (time.monotonic() - t1) * 1000,
        )

    @staticmethod
    def _upsert_bars(conn: psycopg.Connection, rows: list[Any]) -> None:
        conn.execute(
            "CREATE TEMP TABLE live_bars_stage (LIKE market.live_bars_1m INCLUDING DEFAULTS)"
            " ON COMMIT DROP"
        )
        with conn.cursor() as cur, cur.copy(COPY_STAGE) as copy:
            for r in rows:
                copy.write_row((r["symbol"], from_ts_us(r["ts_us"]), *r[2:]))
        conn.execute(UPSERT_BARS)

    # -- the ledger -----------------------------------------------------------------------------

    def _queue_progress(self, progress: Any) -> None:
        malformed = (progress.observedMetrics or {}).get(OBSERVED)
        dropped = sum(op.numRowsDroppedByWatermark for op in progress.stateOperators or [])
        self._ledger_queue.put(
            (
                progress.batchId,
                progress.numInputRows,
                int(malformed["malformed"]) if malformed is not None else 0,
                dropped,
            )
        )

    def _ledger_worker(self) -> None:
        while True:
            batch_id, input_rows, malformed, dropped = self._ledger_queue.get()
            try:
                self.record(batch_id, input_rows, malformed, dropped)
            except Exception as exc:  # keep recording later batches; the log says what failed
                log.exception("ledger: batch %d not recorded", batch_id)
                self.ledger_errors.append(f"batch {batch_id}: {exc}")
            finally:
                self._ledger_queue.task_done()

    def drain_ledger(self, timeout_s: float = 120) -> bool:
        """Wait until every reported batch is recorded; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._ledger_queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def record(self, batch_id: int, input_rows: int, malformed: int, dropped_groups: int) -> None:
        """Ledger row for a finished batch: from its progress, or exactly when it had trouble."""
        if malformed or dropped_groups:
            audit = self.audit(batch_id)
        else:
            late_ms = self.late_watermark_ms(batch_id)
            late_wm = from_ts_us(late_ms * 1000) if late_ms > 0 else None
            audit = BatchAudit(input_rows, input_rows, 0, 0, late_wm, None, None)
        self.write_ledger(batch_id, audit, self._bars_written.pop(batch_id, None))

    def reconcile(self) -> int:
        """Record committed batches that the ledger misses (the job died before recording)."""
        query_id = self.offsets.query_id()
        committed = self.offsets.committed()
        if query_id is None or not committed:
            return 0
        with db.connect(self.db_settings) as conn:
            known = {
                row[0]
                for row in conn.execute(
                    "SELECT batch_id FROM market.live_bars_batches"
                    " WHERE query_id = %s AND batch_id >= %s",
                    (query_id, committed[0]),
                )
            }
        missing = [b for b in committed if b not in known]
        for batch_id in missing:
            self.write_ledger(batch_id, self.audit(batch_id), None)
        if missing:
            log.warning("ledger: recorded %d committed batches it missed", len(missing))
        return len(missing)

    def write_ledger(self, batch_id: int, audit: BatchAudit, bars_upserted: int | None) -> None:
        with db.connect(self.db_settings) as conn:
            conn.execute(
                UPSERT_BATCH,
                (
                    self.offsets.query_id(),
                    batch_id,
                    audit.input_rows,
                    audit.valid_ticks,
                    audit.late_ticks,
                    audit.malformed,
                    bars_upserted,
                    audit.late_watermark,
                    audit.first_late_ts,
                    audit.last_late_ts,
                ),
            )
            conn.commit()
        if audit.late_ticks or audit.malformed:
            log.warning(
                "batch %d: %d late ticks (window closed by %s, event times %s..%s), "
                "%d malformed records%s",
                batch_id,
                audit.late_ticks,
                audit.late_watermark.isoformat() if audit.late_watermark else "-",
                audit.first_late_ts.isoformat() if audit.first_late_ts else "-",
                audit.last_late_ts.isoformat() if audit.last_late_ts else "-",
                audit.malformed,
                " (sent to the dead-letter topic)"
                if audit.malformed and self.settings.dead_letter
                else "",
            )

    def late_watermark_ms(self, batch_id: int) -> int:
        """The watermark batch `batch_id`'s aggregation dropped late ticks against.

        With several stateful operators allowed (the default since Spark 3.4), late events are
        judged against the previous batch's watermark, eviction against the current one
        (WatermarkPropagator); with the legacy single propagator both use the current one.
        """
        allow_multiple = self.spark.conf.get(ALLOW_MULTIPLE, "true") == "true"
        return self.offsets.watermark_ms(batch_id - 1 if allow_multiple else batch_id)

    def audit(self, batch_id: int) -> BatchAudit:
        """Re-read the batch's Kafka offsets; count malformed records and late ticks exactly."""
        start = self.offsets.end_offsets(batch_id - 1).get(self.topic, {})
        end = self.offsets.end_offsets(batch_id).get(self.topic, {})
        late_ms = self.late_watermark_ms(batch_id)
        late_wm = from_ts_us(late_ms * 1000) if late_ms > 0 else None
        ranges = {p: (start.get(p, -2), e) for p, e in end.items() if start.get(p, -2) != e}
        if not ranges:
            return BatchAudit(0, 0, 0, 0, late_wm, None, None)
        raw = (
            self._kafka_reader(stream=False)
            .option("assign", json.dumps({self.topic: [int(p) for p in ranges]}))
            .option(
                "startingOffsets", json.dumps({self.topic: {p: s for p, (s, _) in ranges.items()}})
            )
            .option(
                "endingOffsets", json.dumps({self.topic: {p: e for p, (_, e) in ranges.items()}})
            )
            .load()
        )
        parsed = T.parse_ticks(raw)
        valid = F.col("error").isNull()
        late = valid & (T.window_end_us(F.col("ts_us")) <= F.lit(late_ms * 1000))
        row = parsed.agg(
            F.count(F.lit(1)).alias("input_rows"),
            F.count(F.when(valid, 1)).alias("valid"),
            F.count(F.when(late, 1)).alias("late"),
            F.min(F.when(late, F.col("ts_us"))).alias("first_late"),
            F.max(F.when(late, F.col("ts_us"))).alias("last_late"),
        ).first()
        assert row is not None
        malformed = row["input_rows"] - row["valid"]
        if malformed and self.settings.dead_letter:
            self.dead_letter(T.invalid_ticks(parsed))
        return BatchAudit(
            input_rows=row["input_rows"],
            valid_ticks=row["valid"],
            late_ticks=row["late"],
            malformed=malformed,
            late_watermark=late_wm,
            first_late_ts=from_ts_us(row["first_late"]) if row["first_late"] else None,
            last_late_ts=from_ts_us(row["last_late"]) if row["last_late"] else None,
        )

    def dead_letter(self, invalid: DataFrame) -> None:
        """Bad records → the dead-letter topic, bounded: reason, hash, length etc. in headers."""
        (
            T.bounded_dead_letters(invalid, DLQ_STAGE)
            .write.format("kafka")
            .option("kafka.bootstrap.servers", self.kafka.bootstrap_servers)
            .option("topic", self.dlq_topic)
            .option("includeHeaders", "true")
            .save()
        )
