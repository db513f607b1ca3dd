"""`stockctl`: the platform's command line (warehouse migrations, Kafka topics, the producer)."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys

from psycopg import sql

from stock_assets.lib import db, kafka_admin, migrations, retention
from stock_assets.lib.errors import TransientError
from stock_assets.lib.settings import ConfigError, DbSettings, KafkaSettings

log = logging.getLogger("stockctl")
DAGSTER_DB = "dagster"
# The environment of every Dagster process (webserver, daemon, runs); also in docker-compose.yml.
# A ranged run (2000..2013 in one single-run backfill) writes, per asset and day, a "planned" event
# before it is queued and a materialization when it ends: ~19,000 + 19,000 single-row inserts
# (~14 min before the run even starts, the sensor daemon blocked meanwhile, and ~40 min of
# materializations on 2 cores; dagster/_core/instance/runs/run_domain.py, execution/plan/
# execute_step.py). One planned event per asset carries the partition range, and the per-day
# materializations are written in batches. Trade-off (Dagster's comment): a failed ranged run does
# not mark its partitions failed; the run shows as failed and the sensor re-requests its days.
# The code server's gRPC threads (`dagster dev` runs a proxy, `code-server start`, in front of a
# `dagster api grpc` process; each has a pool of min(32, cores + 4) = 6 threads on 2 cores): every
# sensor of a daemon iteration evaluates at once, and a follower holds its thread while it waits
# for the sensors before it (defs/runs.py SENSOR_ORDER), so 6 could leave a stream sensor's
# evaluation queued behind the followers waiting for it.
DAGSTER_PROCESS_ENV = {
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
    "DAGSTER_EVENT_BATCH_SIZE": "1000",
    "DAGSTER_CODE_SERVER_MAX_WORKERS": "16",
    "DAGSTER_GRPC_MAX_WORKERS": "16",
}


def cmd_migrate(args: argparse.Namespace) -> None:
    settings = DbSettings.load()
    with db.connect(settings) as conn:
        applied = migrations.apply(conn)
        license_ = retention.configure_policies(conn)
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "none (up to date)"
    log.info(
        "warehouse %s: migrations applied: %s; timescaledb license: %s",
        settings.describe(),
        names,
        license_,
    )


def cmd_topics(args: argparse.Namespace) -> None:
    settings = KafkaSettings.load()
    for name, action in kafka_admin.ensure_topics(settings).items():
        log.info("topic %s: %s", name, action)


def cmd_init(args: argparse.Namespace) -> None:
    cmd_migrate(args)
    cmd_topics(args)


def cmd_retention(args: argparse.Namespace) -> None:
    with db.connect(DbSettings.load()) as conn:
        log.info("chunks dropped: %s", retention.enforce(conn))


def cmd_dev_env(args: argparse.Namespace) -> None:
    """Print `export` lines for the Dagster instance storage (database `dagster`, created here)."""
    settings = DbSettings.load()
    with db.connect(settings, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DAGSTER_DB,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DAGSTER_DB)))
    env = {
        "DAGSTER_PG_HOST": settings.host,
        "DAGSTER_PG_PORT": str(settings.port),
        "DAGSTER_PG_USER": settings.user,
        "DAGSTER_PG_PASSWORD": settings.password.get_secret_value(),
        "DAGSTER_PG_DB": DAGSTER_DB,
        **DAGSTER_PROCESS_ENV,
    }
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")


def cmd_progress(args: argparse.Namespace) -> None:
    """Print how far each warehouse stage has come; --follow repeats until the history is in."""
    import time as clock

    from stock_assets.lib import progress as stage_progress
    from stock_assets.lib.calendar import TIMEZONE
    from stock_assets.lib.sources import history

    end = history.history_end(history.history_frame())
    started = args.since if args.since is not None else clock.time()
    milestones = {
        "raw_ticks": "ticks loaded into market.raw_ticks",
        "bars_daily": "daily candles: Dashboard > Market",
        "indicators": "indicators: Dashboard > Market",
        "signals": "signals: Dashboard > Signals",
        "backtests": "backtests: Dashboard > Portfolio",
        "equity": "paper portfolio equity: Dashboard > Portfolio",
    }
    last_line = ""
    while True:
        with db.connect(DbSettings.load()) as conn:
            progress = stage_progress.read_counts(conn, TIMEZONE)
            done = stage_progress.history_done(conn, end.last_session)
        stamp = f"[+{clock.time() - started:4.0f}s]"
        for stage, what in list(milestones.items()):
            if progress[stage].rows:
                print(f"{stamp} first {what} ({progress[stage].label()})", flush=True)
                del milestones[stage]
        line = stage_progress.counts_summary(progress)
        if line != last_line:
            print(f"{stamp} {line}", flush=True)
            last_line = line
        if done:
            print(
                f"{stamp} history complete: {end.ticks:,} ticks of {', '.join(end.symbols)} "
                "with candles, indicators, signals, backtests and equity",
                flush=True,
            )
        if not args.follow or done:
            return
        clock.sleep(args.every_s)


def cmd_produce(args: argparse.Namespace) -> None:
    """Publish market data from a source to Kafka (exit code 1 if anything was not delivered)."""
    from stock_assets.producer import cli as producer_cli

    code = producer_cli.run(args)
    if code:
        raise SystemExit(code)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stockctl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply warehouse migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("topics", help="create/grow the Kafka topics").set_defaults(func=cmd_topics)
    sub.add_parser("init", help="migrate + topics").set_defaults(func=cmd_init)
    sub.add_parser("dev-env", help="shell exports for the local Dagster instance").set_defaults(
        func=cmd_dev_env
    )
    sub.add_parser("retention", help="drop expired chunks").set_defaults(func=cmd_retention)
    progress = sub.add_parser("progress", help="rows and event time reached per stage")
    progress.add_argument("--follow", action="store_true", help="repeat until the history is in")
    progress.add_argument("--every-s", type=float, default=5.0)
    progress.add_argument(
        "--since", type=float, default=None, help="epoch seconds the [+N s] stamps count from"
    )
    progress.set_defaults(func=cmd_progress)
    produce = sub.add_parser("produce", help="publish market data from a source to Kafka")
    _add_produce_arguments(produce)
    produce.set_defaults(func=cmd_produce)
    return parser


def _add_produce_arguments(parser: argparse.ArgumentParser) -> None:
    from stock_assets.producer.cli import add_arguments

    add_arguments(parser)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, TransientError, ConnectionError, migrations.MigrationError) as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
