"""PostgreSQL and Kafka instances private to the chaos suite, started by infra/services.sh.

The same scripts `make dev` uses, pointed at another state dir (STOCK_STATE_DIR), other ports and
the main cache (STOCK_CACHE_DIR: nothing is downloaded or built again). The suite kills them
with SIGKILL and restarts them the way a supervisor would (`services.sh up <unit>`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from stock_assets.lib import db, kafka_admin, migrations
from stock_assets.lib.settings import REPO_ROOT, DbSettings, KafkaSettings, state_dir

SERVICES = REPO_ROOT / "infra" / "services.sh"
# Ports of the chaos instances (the shared services use 15432 and 19092-19093).
# profile -> (PostgreSQL port, first Kafka port (+2 per replicated node, controller ports +1)).
# STOCK_CHAOS_PORT_OFFSET shifts them all (two suites at once on one machine).
PORTS = {"single": (25432, 29092), "replicated": (25433, 29192)}


def _port(profile: str, which: int) -> int:
    return PORTS[profile][which] + int(os.environ.get("STOCK_CHAOS_PORT_OFFSET", "0"))


def _cache_dir() -> Path:
    return Path(os.environ.get("STOCK_CACHE_DIR", state_dir() / "cache")).resolve()


def _proc_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@dataclass
class ChaosServices:
    """One private PostgreSQL and one private Kafka (`profile` single or replicated)."""

    profile: str = "single"
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="stock-chaos-")))

    def __post_init__(self) -> None:
        # Code that finds the cache through the state dir (spark.session.jars_dir) finds it too.
        (self.root / "cache").symlink_to(_cache_dir(), target_is_directory=True)

    @property
    def pg_port(self) -> int:
        return _port(self.profile, 0)

    @property
    def kafka_port(self) -> int:
        return _port(self.profile, 1)

    @property
    def nodes(self) -> list[int]:
        return [1, 2, 3] if self.profile == "replicated" else [1]

    def env(self) -> dict[str, str]:
        """Environment for the services scripts and for every subprocess of a scenario."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("STOCK_DB_", "STOCK_KAFKA_", "STOCK_STREAMING_"))
        }
        env.update(
            STOCK_STATE_DIR=str(self.root),
            STOCK_CACHE_DIR=str(_cache_dir()),
            STOCK_DB_PORT=str(self.pg_port),
            STOCK_KAFKA_PROFILE=self.profile,
            STOCK_KAFKA_BOOTSTRAP_SERVERS=self.bootstrap_servers,
            STOCK_KAFKA_CONTROLLER_PORT=str(self.kafka_port + 1),
            STOCK_KAFKA_REPLICATION_FACTOR=str(len(self.nodes)),
            STOCK_KAFKA_MIN_INSYNC_REPLICAS="2" if self.profile == "replicated" else "1",
        )
        return env

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{self.kafka_port + 2 * (n - 1)}" for n in self.nodes)

    def services(self, command: str, *units: str) -> None:
        done = subprocess.run(
            [str(SERVICES), command, *units],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=240,
        )
        if done.returncode != 0:
            raise RuntimeError(f"services.sh {command} {units} failed: {done.stderr[-2000:]}")

    def up(self, *units: str, attempts: int = 3) -> None:
        """Start what is down (as a supervisor would: a failed start is retried)."""
        for attempt in range(attempts):
            try:
                self.services("up", *(units or ("postgres", "kafka")))
                return
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                time.sleep(2)

    def down(self) -> None:
        self.services("down", "postgres", "kafka")

    # -- settings -----------------------------------------------------------------------------

    def db_settings(self, dbname: str | None = None) -> DbSettings:
        overrides = {"dbname": dbname} if dbname else {}
        return DbSettings.load(port=self.pg_port, **overrides)

    def kafka_settings(self, topic_prefix: str = "") -> KafkaSettings:
        return KafkaSettings.load(
            bootstrap_servers=self.bootstrap_servers,
            topic_prefix=topic_prefix,
            replication_factor=len(self.nodes),
            min_insync_replicas=2 if self.profile == "replicated" else 1,
        )

    @contextmanager
    def scenario_space(self, name: str) -> Iterator[tuple[DbSettings, KafkaSettings]]:
        """A migrated database and created topics for one scenario (dropped afterwards)."""
        dbname = f"chaos_{name}"
        self.up()  # whatever an earlier scenario left down comes back first
        base = self.db_settings()
        db.drop_database(base, dbname)
        settings = db.create_database(base, dbname)
        with db.connect(settings) as conn:
            migrations.apply(conn)
        kafka = self.kafka_settings(f"chaos-{name}-{int(time.time())}.")
        kafka_admin.ensure_topics(kafka)
        try:
            yield settings, kafka
        finally:
            self.up()
            db.drop_database(self.db_settings(), dbname)

    # -- faults -------------------------------------------------------------------------------

    def pid_file(self, unit: str, node: int = 1) -> Path:
        if unit == "postgres":
            return self.root / "data" / "postgres" / "postmaster.pid"
        name = "kafka" if self.profile == "single" else f"kafka-{node}"
        return self.root / "run" / f"{name}.pid"

    def pid(self, unit: str, node: int = 1) -> int:
        return int(self.pid_file(unit, node).read_text().splitlines()[0])

    def kill(self, unit: str, node: int = 1) -> None:
        """SIGKILL the unit's process and its children (a crash: no shutdown of any kind)."""
        pid = self.pid(unit, node)
        # Stopped first, the parent cannot fork a child (a PostgreSQL backend for a new
        # connection) between the listing of its children and its death: an orphan backend
        # would keep the shared memory attached and the restart would fail.
        os.kill(pid, signal.SIGSTOP)
        victims = [*_children(pid), pid]
        for victim in victims:
            os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(_proc_alive(v) for v in victims) and time.monotonic() < deadline:
            time.sleep(0.05)

    def alive(self, unit: str, node: int = 1) -> bool:
        try:
            return _proc_alive(self.pid(unit, node))
        except (OSError, ValueError, IndexError):
            return False

    def close(self) -> None:
        """Stop everything and remove the state dir (nothing is left running)."""
        try:
            self.down()
        finally:
            for unit, node in [("postgres", 1), *(("kafka", n) for n in self.nodes)]:
                if self.alive(unit, node):  # down failed: make sure
                    self.kill(unit, node)
            shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def chaos_services(profile: str = "single") -> Iterator[ChaosServices]:
    services = ChaosServices(profile)
    try:
        services.up()
        yield services
    finally:
        services.close()
