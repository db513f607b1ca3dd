"""One raw_ticks run in its own process (what the Dagster run launcher does), so it can be killed.

Usage: python -m stock_assets_tests.chaos.ingest_run RUN_CONFIG_JSON
Warehouse and Kafka come from the environment (STOCK_DB_*, STOCK_KAFKA_*). Exit code 0 when the
run succeeded, 1 when it failed (the error is printed).
"""

from __future__ import annotations

import faulthandler
import json
import signal
import sys

import dagster as dg

from stock_assets.defs.ingest.assets import raw_ticks
from stock_assets.defs.resources import KafkaResource, WarehouseResource


def main() -> int:
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1` prints where a hung run hangs
    run_config = json.loads(sys.argv[1])
    result = dg.materialize(
        [raw_ticks],
        run_config=run_config,
        resources={"warehouse": WarehouseResource(), "kafka": KafkaResource()},
        raise_on_error=False,
    )
    if not result.success:
        for event in result.all_events:
            error = event.step_failure_data.error if event.is_step_failure else None
            while error is not None and error.cause is not None:  # the root cause
                error = error.cause
            if error is not None:
                sys.stderr.write(f"RUN FAILED: {error.message.strip().splitlines()[0]}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
