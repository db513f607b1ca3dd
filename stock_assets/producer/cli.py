"""`stockctl produce`: arguments and the command body (stock_assets/cli.py only registers it)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from stock_assets.lib.marketdata import Record
from stock_assets.lib.providers import PROVIDERS, ProviderAuthError, make_client
from stock_assets.lib.settings import ConfigError, DbSettings, KafkaSettings
from stock_assets.lib.sources.history import DEFAULT_LIVE_RATE
from stock_assets.lib.sources.replay import DATASETS
from stock_assets.producer.history import HistoryOptions, history_records
from stock_assets.producer.service import MarketDataProducer, resume_filter
from stock_assets.producer.sources import SOURCES, SourceOptions, build_records

log = logging.getLogger("stock_assets.producer")


def _symbols(text: str) -> list[str]:
    return [s.strip().upper() for s in text.split(",") if s.strip()]


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a UTC offset, e.g. 2005-01-03T00:00Z")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `produce` sub-command's options."""
    parser.add_argument(
        "--source",
        choices=(*SOURCES, "history"),
        default="replay",
        help="history = every bundled replay dataset as one backfill, then simulated live",
    )
    parser.add_argument("--symbols", type=_symbols, default=None, help="comma-separated")
    parser.add_argument("--dataset", choices=DATASETS, default="daily", help="replay dataset")
    parser.add_argument("--kind", choices=("ticks", "bars"), default="ticks", help="replay output")
    parser.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="replay/simulator pacing: N x exchange time, 0 = as fast as possible",
    )
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="simulator trades per simulated second"
    )
    parser.add_argument("--limit", type=int, default=None, help="stop after N records")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=_when, default=None, help="ISO time with offset")
    parser.add_argument("--end", type=_when, default=None, help="ISO time with offset")
    parser.add_argument("--ticks-per-bar", type=int, default=8)
    parser.add_argument(
        "--poll-s", type=float, default=0.0, help="providers: poll again every N s (0 = one pass)"
    )
    parser.add_argument(
        "--no-quotes",
        dest="quotes",
        action="store_false",
        help="providers: bars only (e.g. Polygon free plan has no last trade)",
    )
    parser.add_argument("--base-url", default=None, help="providers: override the API base URL")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="resume file: acknowledged positions per symbol",
    )
    parser.add_argument("--progress-every-s", type=float, default=10.0)
    parser.add_argument(
        "--live-rate",
        type=float,
        default=DEFAULT_LIVE_RATE,
        help="history: live trades per trading second (all symbols)",
    )
    parser.add_argument(
        "--no-live", dest="live", action="store_false", help="history: stop after the history"
    )


def run(args: argparse.Namespace) -> int:
    """Produce until the source ends, --limit, or SIGINT/SIGTERM; 0 only if all was delivered."""
    options = SourceOptions(
        source=args.source,
        symbols=args.symbols,
        seed=args.seed,
        speed=args.speed,
        rate=args.rate,
        limit=args.limit,
        dataset=args.dataset,
        kind=args.kind,
        start=args.start,
        end=args.end,
        ticks_per_bar=args.ticks_per_bar,
        poll_s=args.poll_s,
        quotes=args.quotes,
    )
    producer = MarketDataProducer(
        KafkaSettings.load(),
        source=args.source,
        checkpoint_path=args.checkpoint,
        progress_every_s=args.progress_every_s,
    )
    client = None
    producer.check_topics()
    if args.source == "history":
        return _run_history(args, producer)
    try:
        if args.source in PROVIDERS:
            client = make_client(args.source, base_url=args.base_url, sleep=producer.wait)
        records: Iterable[Record] = build_records(
            options, sleep=producer.wait, client=client, stopping=lambda: producer.stopping
        )
        if args.checkpoint is not None:
            log.info("resuming after checkpoint %s", producer.checkpoint)
            records = resume_filter(records, producer.checkpoint)
        stats = producer.run(records, limit=args.limit)
    except ProviderAuthError as exc:
        producer.close()
        log.error("%s", exc)
        return 2
    finally:
        if client is not None:
            client.close()
    return 0 if stats.ok else 1


def _run_history(args: argparse.Namespace, producer: MarketDataProducer) -> int:
    """The bundled history (what is not published yet), then the live continuation."""
    try:
        warehouse: DbSettings | None = DbSettings.load()
    except ConfigError as exc:
        log.warning("no warehouse settings (%s): the checkpoint alone says what is published", exc)
        warehouse = None
    options = HistoryOptions(
        seed=args.seed,
        ticks_per_bar=args.ticks_per_bar,
        speed=args.speed,
        live_rate=args.live_rate,
        live=args.live,
    )
    stats = producer.run(history_records(producer, options, warehouse), limit=args.limit)
    return 0 if stats.ok else 1
