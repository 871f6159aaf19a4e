"""The worker process side of the pool: set-up once, then chunks of tasks until told to stop.

A worker must never outlive the run. Two guards: the kernel kills it when the process that
forked it dies (``PR_SET_PDEATHSIG``, Linux; with the forkserver start method that is the
forkserver, which itself exits when the run's main process is gone), and between two tasks it
checks that the main process still exists (other platforms, and the race at start-up).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pickle
import signal
import sys
import time
from typing import Sequence

from cfgen.plan import Task
from cfgen.runner.context import WorkerContext
from cfgen.runner.task import TaskResult, WorkerInitError, failed_result, run_task

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
PR_SET_PDEATHSIG = 1

_CONTEXT: WorkerContext | None = None
_INIT_ERROR: str | None = None
_MAIN_PID: int | None = None


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent exits (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def main_alive(pid: int | None) -> bool:
    """Whether the run's main process ``pid`` still exists (True when unknown)."""
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exit_if_orphaned() -> None:
    """End this worker at once when the run's main process is gone: nobody reads its results."""
    if not main_alive(_MAIN_PID):
        os._exit(0)


def limit_threads() -> None:
    """One BLAS/OpenMP thread: n workers use n cores, not n × cores."""
    if all(os.environ.get(var) == "1" for var in THREAD_ENV):
        return  # forked from our forkserver, which started with these set
    for var in THREAD_ENV:
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except Exception:  # noqa: BLE001 - threadpoolctl is optional
        pass


def init_worker(payload: bytes, main_pid: int) -> None:
    """Pool initializer: die with the parent, ignore Ctrl-C and SIGTERM's default (the parent
    stops the workers), one BLAS thread, unpickle the context once."""
    global _CONTEXT, _INIT_ERROR, _MAIN_PID
    _MAIN_PID = main_pid
    die_with_parent()
    exit_if_orphaned()  # the parent may have died before prctl took effect
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_threads()
    try:
        _CONTEXT = pickle.loads(payload)
    except BaseException as exc:  # noqa: BLE001 - reported with the first chunk
        _INIT_ERROR = f"worker setup failed: {type(exc).__name__}: {exc}"


def worker_chunk(tasks: Sequence[Task]) -> tuple[list[TaskResult], float]:
    """Run one chunk in a worker: its results (a task that raises anything becomes a failed
    result) and the seconds the chunk took."""
    ctx = _CONTEXT
    if ctx is None:
        raise WorkerInitError(_INIT_ERROR or "worker context not initialised")
    start = time.perf_counter()
    out = []
    for task in tasks:
        exit_if_orphaned()
        try:
            out.append(run_task(task, ctx))
        except BaseException as exc:  # noqa: BLE001 - e.g. SystemExit raised by a method
            out.append(failed_result(task, ctx.n_features, ctx.k, f"{type(exc).__name__}: {exc}"))
    return out, time.perf_counter() - start
