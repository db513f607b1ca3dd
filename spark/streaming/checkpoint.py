"""Reading a Structured Streaming checkpoint: query id, committed batches, offsets, watermarks."""

import json
from pathlib import Path


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
