"""Settings of the live-bars streaming job (env STOCK_STREAMING_*)."""

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from spark.session import REPO_ROOT


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
