"""`python -m spark.streaming [--available-now]`: run the job until it ends or a signal."""

import argparse
import contextlib
import logging
import signal
import threading
from types import FrameType

from confluent_kafka import KafkaException
from py4j.protocol import Py4JError
from pyspark.errors import StreamingQueryException

import spark.streaming
from spark.session import build_session
from spark.streaming.job import LiveBarsJob
from spark.streaming.settings import StreamingSettings
from stock_assets.lib import kafka_admin
from stock_assets.lib.errors import TransientError
from stock_assets.lib.settings import ConfigError, DbSettings, KafkaSettings
from stock_assets.lib.topics import TICKS, topic_name

log = logging.getLogger("spark.streaming")


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
        prog="python -m spark.streaming", description=(spark.streaming.__doc__ or "").split("\n")[0]
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
    delay_s = 2.0
    while True:
        try:
            return run(StreamingSettings(), available_now=args.available_now, stop=stop)
        except TransientError as exc:  # an outage, not a bad setting: wait for it to end
            if stop.is_set():
                return 0
            log.warning("%s; retrying in %.0f s", exc, delay_s)
            stop.wait(delay_s)
            delay_s = min(delay_s * 2, 60.0)
        except (ConfigError, KafkaException) as exc:
            log.error("%s", exc)
            return 2
