"""WarmRunLauncher: run workers forked from a warm process instead of spawned cold.

Dagster's DefaultRunLauncher asks the code server to start each run, and the code server spawns
a fresh interpreter for it (`multiprocessing.get_context("spawn")` in dagster/_grpc/server.py)
that imports Dagster and the code location before the run's first step, while the launching
daemon thread waits: ~6 s on a quiet 2-core machine, 27-30 s under the platform's own load, paid
by every sensor-driven run (bench/runs.py, docs/orchestration.md, ADR 0035).

This launcher (the daemon's, set in infra/dagster/dagster.yaml) keeps one multiprocessing
forkserver that has imported Dagster and the code location once, and forks each run worker from
it. The worker runs exactly what the code server's worker runs
(`dagster._grpc.impl._run_in_subprocess`: the same engine events, executor and run status
handling); only the interpreter start and the imports are gone.

- Fresh code: the forkserver is restarted when a .py file of the code location's package changed
  (path, size, mtime), so an edit + "Reload definitions" runs the new code.
- Fallback: a run whose code origin names another interpreter than the daemon's (another venv),
  or has no Python origin, is launched by DefaultRunLauncher through its code server.
- Terminate (the UI's button, from the webserver process): SIGINT to the worker's pid (run tag),
  which is what the code server's CancelExecution does in the end (termination event →
  `send_interrupt`); Dagster then marks the run canceled.
- Health: run monitoring asks whether the worker pid is alive, so a worker killed with SIGKILL
  fails its run at the next monitoring poll instead of when `dagster/max_runtime` runs out.
- Runs outlive the launcher: the workers are children of the forkserver, not of the daemon.

The forkserver imports with the daemon's working directory and installed packages (CPython
3.11's `forkserver.main` accepts the parent's sys.path and never applies it): a code location
importable neither way still runs, imported by each worker (its run says so in an engine event).
Local, single-host only (the pid is checked on the host that launched it); docker compose keeps
DefaultRunLauncher (infra/dagster/dagster.docker.yaml).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dagster import Array, DagsterInstance, DagsterRun, Field, MetadataValue
from dagster._core.errors import DagsterLaunchFailedError
from dagster._core.events import EngineEventData
from dagster._core.launcher import DefaultRunLauncher, LaunchRunContext
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.origin import JobPythonOrigin
from dagster._serdes import ConfigurableClassData

PID_TAG = "stock/worker_pid"
HOST_TAG = "stock/worker_host"
WARM_EVENT = "run worker forked from the warm process"
# imported by the forkserver before any code location; what every run worker needs
BASE_PRELOAD = ["dagster", "dagster._grpc.impl", "dagster._core.execution.api"]
START_TIMEOUT_S = 300.0
WARM_TARGETS_ENV = "STOCK_WARM_TARGETS"
WARMUP_MODULE = "stock_assets.instance.warmup"
# code targets whose module and jobs the forkserver built (a forked worker inherits this set)
WARMED: set[str] = set()


def fork_refusal(origin: JobPythonOrigin | None, executable: str = sys.executable) -> str | None:
    """Why a run cannot be forked from this process's forkserver (None: it can)."""
    if origin is None:
        return "the run has no Python code origin"
    origin_executable = origin.repository_origin.executable_path
    if origin_executable and origin_executable != executable:
        return f"its code location runs on {origin_executable}, the daemon on {executable}"
    if not getattr(origin.repository_origin.code_pointer, "module", None):
        return "its code location is not loaded from a Python module"
    return None


def code_module(origin: JobPythonOrigin) -> str:
    return str(origin.repository_origin.code_pointer.module)  # type: ignore[attr-defined]


def instance_modules(ref: Any) -> list[str]:
    """The modules of an instance ref's plugin classes (storage, compute logs, coordinator...):
    what every worker imports to rebuild its instance (dagster_postgres, sqlalchemy: ~1 s)."""
    return sorted({v.module_name for v in ref if isinstance(v, ConfigurableClassData)})


def code_target(origin: JobPythonOrigin) -> str:
    """`module:attribute` of the run's code location (the Definitions object)."""
    pointer = origin.repository_origin.code_pointer
    return f"{pointer.module}:{pointer.fn_name}"  # type: ignore[attr-defined]


def warm_up(targets: str) -> None:
    """In the forkserver, after its imports: build each code location's repository and every
    job in it (the asset graph, the asset jobs), which Dagster does lazily on first use, so each
    worker would otherwise redo it (seconds under load). Never fails the forkserver."""
    import dagster as dg

    for target in filter(None, targets.split(",")):
        module, _, attribute = target.partition(":")
        try:
            loaded = getattr(importlib.import_module(module), attribute)
            if isinstance(loaded, dg.Definitions):
                loaded.get_repository_def().get_all_jobs()
            WARMED.add(target)
        except Exception as exc:  # the worker loads it again and reports any error in its run
            logging.getLogger(__name__).warning("warming %s failed: %r", target, exc)


def working_directory(origin: JobPythonOrigin) -> str | None:
    return getattr(origin.repository_origin.code_pointer, "working_directory", None)


def source_files(modules: Iterable[str], directories: Iterable[str] = ()) -> list[Path]:
    """The .py files of the top-level packages of `modules`, found (not imported) in
    `directories` (the code locations' working directories), then on sys.path."""
    search = [*directories, *sys.path]
    files: list[Path] = []
    for top in sorted({m.partition(".")[0] for m in modules}):
        spec = importlib.machinery.PathFinder.find_spec(top, search)
        if spec is None:
            continue
        if spec.submodule_search_locations:
            for root in spec.submodule_search_locations:
                files.extend(sorted(Path(root).rglob("*.py")))
        elif spec.origin:
            files.append(Path(spec.origin))
    return files


def fingerprint(files: Iterable[Path]) -> str:
    """Changes when a file is added, removed, resized or touched."""
    digest = hashlib.sha1(usedforsecurity=False)
    for path in files:
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def retire_forkserver() -> None:
    """Let the running forkserver go without waiting for it; the next start makes a new one.

    multiprocessing's own `ForkServer._stop()` closes the "alive" pipe and waits for the server
    to exit, but every worker it forked holds that pipe's write end too (to fork its own
    children), so the server exits only when its last run does: a launch would wait for every
    running run. Here the old server is reaped by a thread once its runs have ended.
    """
    server: Any = multiprocessing.forkserver._forkserver
    with server._lock:
        pid, alive_fd = server._forkserver_pid, server._forkserver_alive_fd
        if pid is None:
            return
        address = server._forkserver_address
        server._forkserver_pid = server._forkserver_alive_fd = server._forkserver_address = None
    os.close(alive_fd)
    if isinstance(address, str) and not address.startswith("\0"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address)
    threading.Thread(
        target=os.waitpid, args=(pid, 0), daemon=True, name="forkserver-reaper"
    ).start()


def run_worker(serialized_args: str, origin: JobPythonOrigin, status: Any, stop: Any) -> None:
    """The forked run worker: what the code server's spawned worker runs, minus the imports."""
    from dagster._grpc.impl import _run_in_subprocess
    from dagster._utils.hosted_user_process import recon_job_from_origin
    from dagster._utils.interrupts import capture_interrupts

    module = code_module(origin)

    def report(message: Any) -> None:
        # the launcher stops listening once the run has started
        with contextlib.suppress(OSError):
            status.send(message)

    report((WARM_EVENT, module, code_target(origin) in WARMED))
    with capture_interrupts():
        _run_in_subprocess(
            serialized_args,
            recon_job_from_origin(origin),
            stop,
            subprocess_status_handler=report,
            run_event_handler=lambda _event: None,
        )


class WarmRunLauncher(DefaultRunLauncher):
    """Forks run workers from a forkserver that has imported Dagster and the code location."""

    def __init__(
        self,
        inst_data: ConfigurableClassData | None = None,
        preload: list[str] | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        super().__init__(inst_data=inst_data)
        self._extra_preload = list(preload or [])
        self._start_timeout_s = start_timeout_s
        self._lock = threading.Lock()
        self._targets: set[str] = set()
        self._directories: set[str] = set()
        self._fingerprint: str | None = None
        self._ctx = multiprocessing.get_context("forkserver")

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "preload": Field(Array(str), is_required=False, default_value=[]),
            "start_timeout_s": Field(float, is_required=False, default_value=START_TIMEOUT_S),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> WarmRunLauncher:
        return cls(inst_data=inst_data, **config_value)

    def _warm_context(self, origin: JobPythonOrigin) -> Any:
        """The forkserver context, (re)started when a new module or changed code needs it."""
        with self._lock:
            targets = self._targets | {code_target(origin)}
            directories = self._directories | {working_directory(origin) or os.getcwd()}
            names = {target.partition(":")[0] for target in targets}
            current = fingerprint(source_files(names, sorted(directories)))
            if targets != self._targets or current != self._fingerprint:
                retire_forkserver()  # the next Process.start() starts one with the new preload
                # the forkserver inherits this environment; WARMUP_MODULE reads it on import
                os.environ[WARM_TARGETS_ENV] = ",".join(sorted(targets))
                self._ctx.set_forkserver_preload(
                    [
                        *BASE_PRELOAD,
                        *instance_modules(self._instance.get_ref()),
                        *self._extra_preload,
                        *sorted(names),
                        WARMUP_MODULE,
                    ]
                )
                self._targets, self._directories = targets, directories
                self._fingerprint = current
            return self._ctx

    def launch_run(self, context: LaunchRunContext) -> None:
        from dagster._grpc.impl import IPCErrorMessage, StartRunInSubprocessSuccessful
        from dagster._grpc.types import ExecuteExternalJobArgs
        from dagster._serdes import serialize_value

        run = context.dagster_run
        origin = run.job_code_origin
        refusal = fork_refusal(origin)
        if refusal is not None or origin is None:
            self._instance.report_engine_event(
                f"launched through the code server, not forked: {refusal}", run, cls=type(self)
            )
            return super().launch_run(context)

        ctx = self._warm_context(origin)
        receive, send = ctx.Pipe(duplex=False)
        stop = ctx.Event()
        args = ExecuteExternalJobArgs(
            job_origin=run.remote_job_origin,  # type: ignore[arg-type]
            run_id=run.run_id,
            instance_ref=self._instance.get_ref(),
        )
        worker = ctx.Process(
            target=run_worker,
            args=(serialize_value(args), origin, send, stop),
            name=f"dagster-run-{run.run_id[:8]}",
        )
        worker.start()
        send.close()
        self._instance.add_run_tags(
            run.run_id, {PID_TAG: str(worker.pid), HOST_TAG: socket.gethostname()}
        )
        # reap the worker when it ends (it is the forkserver's child; this only closes handles)
        threading.Thread(target=worker.join, daemon=True, name=worker.name).start()
        with receive:
            first = self._receive(receive, worker)
            if isinstance(first, tuple) and first[:1] == (WARM_EVENT,):
                _, module, warm = first
                self._instance.report_engine_event(
                    f"{WARM_EVENT} (pid {worker.pid}): {module} "
                    + ("already imported, its jobs built" if warm else "loaded by the worker"),
                    run,
                    EngineEventData({"warm": MetadataValue.bool(warm)}),
                    cls=type(self),
                )
                first = self._receive(receive, worker)
        if isinstance(first, IPCErrorMessage):
            raise DagsterLaunchFailedError(
                first.message, serializable_error_info=first.serializable_error_info
            )
        if not isinstance(first, StartRunInSubprocessSuccessful):
            raise DagsterLaunchFailedError(f"unexpected message from the run worker: {first!r}")

    def _receive(self, receive: Any, worker: Any) -> Any:
        """The worker's next status message; a launch failure if it dies or hangs first."""
        if not receive.poll(self._start_timeout_s):
            os.kill(worker.pid, signal.SIGKILL)
            raise DagsterLaunchFailedError(
                f"run worker (pid {worker.pid}) did not start in {self._start_timeout_s} s"
            )
        try:
            return receive.recv()
        except EOFError:
            worker.join(5)
            raise DagsterLaunchFailedError(
                f"run worker (pid {worker.pid}) exited with code {worker.exitcode} before "
                "starting the run"
            ) from None

    def _worker_pid(self, run: DagsterRun) -> int | None:
        pid = run.tags.get(PID_TAG)
        return int(pid) if pid and run.tags.get(HOST_TAG) == socket.gethostname() else None

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        pid = self._worker_pid(run)
        if pid is None:
            return super().terminate(run_id)  # launched through the code server
        self._instance.report_run_canceling(run)
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            self._instance.report_engine_event(
                f"run worker pid {pid} is gone; nothing to interrupt", run, cls=type(self)
            )
            return False
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid = self._worker_pid(run)
        if pid is None:
            # launched through the code server: as DefaultRunLauncher, not checked
            return CheckRunHealthResult(WorkerStatus.RUNNING, "not forked here; not checked")
        if pid_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"run worker pid {pid} is gone", run_worker_id=str(pid)
        )


def create_module_run(
    instance: DagsterInstance,
    module: str,
    job_name: str,
    run_config: Mapping[str, Any],
    working_directory: str,
    attribute: str = "defs",
) -> DagsterRun:
    """A run of `module`'s job with the origins a workspace would give it, for launching
    without a workspace (bench/runs.py, the launcher's tests)."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.remote_origin import (
        InProcessCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    recon_job = ReconstructableRepository.for_module(
        module, attribute, working_directory=working_directory
    ).get_reconstructable_job(job_name)
    target = LoadableTargetOrigin(
        executable_path=sys.executable,
        module_name=module,
        working_directory=working_directory,
        attribute=attribute,
    )
    location = InProcessCodeLocationOrigin(target)
    return instance.create_run_for_job(
        job_def=recon_job.get_definition(),
        run_config=run_config,
        remote_job_origin=RemoteJobOrigin(
            RemoteRepositoryOrigin(location, "__repository__"), job_name
        ),
        job_code_origin=recon_job.get_python_origin(),
    )
