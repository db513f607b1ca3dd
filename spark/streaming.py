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
"""

import argparse
import contextlib
import json
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import psycopg
from confluent_kafka import KafkaException
from py4j.protocol import Py4JError
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery, StreamingQueryListener

from spark import transforms as T
from spark.session import REPO_ROOT, build_session
from stock_assets.lib import db, kafka_admin
from stock_assets.lib.marketdata import from_ts_us
from stock_assets.lib.settings import ConfigError, DbSettings, KafkaSettings
from stock_assets.lib.topics import DEAD_LETTER, TICKS, topic_name

log = logging.getLogger("spark.streaming")

DLQ_STAGE = "spark-live-bars"
ALLOW_MULTIPLE = "spark.sql.streaming.statefulOperator.allowMultiple"


def state_dir() -> Path:
    return Path(os.environ.get("STOCK_STATE_DIR", REPO_ROOT / ".local"))


class StreamingSettings(BaseSettings):
    """The live-bars streaming job; every field overridable as STOCK_STREAMING_<FIELD>."""

    model_config = SettingsConfigDict(
        env_prefix="STOCK_STREAMING_", env_file=REPO_ROOT / ".env", extra="ignore"
    )

    master: str | None = None  # None: config/spark_settings.json master_url
    app_name: str = "live-bars-1m"
    query_name: str = "live_bars_1m"
    # None: $STOCK_STATE_DIR/data/spark/checkpoints/<query_name>, next to the database's data
    # (`make clean` removes both: a checkpoint must not outlive the bars it accounts for)
    checkpoint_dir: Path | None = None
    watermark: str = "2 minutes"
    trigger_interval: str = "500 milliseconds"
    starting_offsets: Literal["earliest", "latest"] = "earliest"  # for a new checkpoint only
    max_offsets_per_trigger: int | None = Field(default=None, gt=0)
    # Kafka partitions read per batch by this many tasks (None: one task per topic partition);
    # with one core, one task per batch saves the per-task overhead on every micro-batch
    source_tasks: int | None = Field(default=1, ge=1)
    cores_max: int = Field(default=1, ge=1)  # leave the cluster's other cores to batch work
    executor_memory: str = "1g"
    shuffle_partitions: int = Field(default=1, ge=1)  # state partitions; fixed by the checkpoint
    dead_letter: bool = True

    def checkpoint(self) -> Path:
        return (
            self.checkpoint_dir or state_dir() / "data" / "spark" / "checkpoints" / self.query_name
        )

    def spark_conf(self) -> dict[str, str]:
        return {
            "spark.cores.max": str(self.cores_max),
            "spark.executor.memory": self.executor_memory,
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
            "spark.ui.showConsoleProgress": "false",
        }


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


class CheckpointOffsets:
    """Offset ranges and watermarks of the query's micro-batches, from its checkpoint.

    Spark writes `offsets/<batch>` (a write-ahead log: "v1", the batch metadata JSON with
    batchWatermarkMs, then one line per source with its end offsets) before running the batch,
    and `sources/0/0` with the initial offsets of a new query.
    """

    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint = checkpoint

    def _lines(self, *parts: str) -> list[str]:
        return self.checkpoint.joinpath(*parts).read_text().splitlines()

    def query_id(self) -> str | None:
        if not (self.checkpoint / "metadata").exists():
            return None
        return str(json.loads(self._lines("metadata")[0])["id"])

    def committed(self) -> list[int]:
        """Batch ids whose commit Spark recorded (the last ~100: older ones are purged)."""
        commits = self.checkpoint / "commits"
        names = (p.name for p in commits.iterdir()) if commits.is_dir() else iter(())
        return sorted(int(n) for n in names if n.isdigit())

    def watermark_ms(self, batch_id: int) -> int:
        if batch_id < 0:
            return 0
        return int(json.loads(self._lines("offsets", str(batch_id))[1]).get("batchWatermarkMs", 0))

    def end_offsets(self, batch_id: int) -> dict[str, dict[str, int]]:
        if batch_id < 0:
            path = self.checkpoint / "sources" / "0" / "0"
            if not path.exists():
                return {}
            line = path.read_text().splitlines()[-1]
        else:
            line = self._lines("offsets", str(batch_id))[2]
        return {} if line.strip() == "-" else json.loads(line)


class ProgressLogger(StreamingQueryListener):
    """One log line per micro-batch, then `on_progress(progress)`; keeps the last `keep`."""

    def __init__(self, on_progress: Callable[[Any], None], keep: int = 200) -> None:
        self.on_progress = on_progress
        self.progress: deque[Any] = deque(maxlen=keep)

    def onQueryStarted(self, event: Any) -> None:
        log.info("query %s started (id %s, run %s)", event.name, event.id, event.runId)

    def onQueryProgress(self, event: Any) -> None:
        p = event.progress
        self.progress.append(p)
        state = p.stateOperators or []
        log.info(
            "batch %d: %d rows, %.1f rows/s in, %.1f rows/s processed, %d ms, watermark %s, "
            "state %d windows, %d late groups dropped",
            p.batchId,
            p.numInputRows,
            p.inputRowsPerSecond or 0.0,
            p.processedRowsPerSecond or 0.0,
            p.batchDuration,
            (p.eventTime or {}).get("watermark", "-"),
            sum(op.numRowsTotal for op in state),
            sum(op.numRowsDroppedByWatermark for op in state),
        )
        self.on_progress(p)

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        log.info(
            "query %s terminated%s", event.id, f": {event.exception}" if event.exception else ""
        )


UPSERT_BARS = """
INSERT INTO market.live_bars_1m AS b
    (symbol, ts, open, high, low, close, volume, vwap, trade_count, updated_at)
SELECT symbol, ts, open, high, low, close, volume, vwap, trade_count, clock_timestamp()
FROM live_bars_stage
ON CONFLICT (symbol, ts) DO UPDATE SET
    open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
    volume = EXCLUDED.volume, vwap = EXCLUDED.vwap, trade_count = EXCLUDED.trade_count,
    updated_at = EXCLUDED.updated_at
"""

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
        copy_sql = (
            "COPY live_bars_stage (symbol, ts, open, high, low, close, volume, vwap, trade_count)"
            " FROM STDIN"
        )
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
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
        """Bad records → the dead-letter topic: original key/value, reason etc. in headers."""

        def header(name: str, value: Any) -> Any:
            return F.struct(F.lit(name).alias("key"), value.cast("binary").alias("value"))

        headers = F.array(
            header("dlq.reason", F.col("error")),
            header("dlq.stage", F.lit(DLQ_STAGE)),
            header("dlq.source.topic", F.col("topic")),
            header("dlq.source.partition", F.col("partition").cast("string")),
            header("dlq.source.offset", F.col("offset").cast("string")),
        )
        (
            invalid.select(
                "key", F.col("payload").cast("binary").alias("value"), headers.alias("headers")
            )
            .write.format("kafka")
            .option("kafka.bootstrap.servers", self.kafka.bootstrap_servers)
            .option("topic", self.dlq_topic)
            .option("includeHeaders", "true")
            .save()
        )


def check_topic(kafka_settings: KafkaSettings, topic: str) -> None:
    """Fail fast, naming the fix, when the ticks topic does not exist."""
    metadata = kafka_admin.admin(kafka_settings).list_topics(
        timeout=kafka_settings.request_timeout_s
    )
    if topic not in metadata.topics:
        raise ConfigError(
            f"Kafka topic {topic} does not exist at {kafka_settings.bootstrap_servers}: "
            "run `python -m stock_assets.cli init` (topic prefix: STOCK_KAFKA_TOPIC_PREFIX)"
        )


def run(settings: StreamingSettings, *, available_now: bool, stop: threading.Event) -> int:
    """Run the job until the query ends or `stop` is set; returns a process exit code."""
    db_settings = DbSettings.load()
    kafka_settings = KafkaSettings.load()
    check_topic(kafka_settings, topic_name(TICKS, kafka_settings.topic_prefix))
    spark = build_session(settings.app_name, settings.master, settings.spark_conf())
    spark.sparkContext.setLogLevel("WARN")
    job = LiveBarsJob(spark, settings, db_settings, kafka_settings)
    try:
        query = job.start(available_now=available_now)
        while query.isActive and not stop.is_set():
            query.awaitTermination(1)
        if query.isActive:
            # an interrupted batch is replayed from the checkpoint on the next start
            log.info("stopping query %s", settings.query_name)
            query.stop()
        query.awaitTermination()
        if not job.drain_ledger():
            log.warning("ledger: batches still unrecorded at exit (recorded on the next start)")
        return 0
    except StreamingQueryException as exc:
        log.error("query %s failed: %s", settings.query_name, exc.getMessage().splitlines()[0])
        return 1
    except (Py4JError, ConnectionError):
        if not stop.is_set():
            raise
        # A TERM sent to the whole process group (infra/dev.sh stop) reaches the JVM as well:
        # its shutdown hook stops the query; the checkpoint's write-ahead log makes that safe.
        log.info("Spark shut down on the signal; the next start resumes from the checkpoint")
        return 0
    finally:
        with contextlib.suppress(Py4JError, ConnectionError):
            job.stop_listening()
            spark.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spark.streaming", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--available-now", action="store_true", help="process what is on the topic, then exit"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        logging.getLogger("py4j").setLevel(logging.CRITICAL)  # a JVM gone with the signal
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        return run(StreamingSettings(), available_now=args.available_now, stop=stop)
    except (ConfigError, KafkaException) as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
