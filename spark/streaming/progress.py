"""The StreamingQueryListener: one log line per micro-batch, then a callback."""

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from pyspark.sql.streaming import StreamingQueryListener

log = logging.getLogger("spark.streaming")


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
