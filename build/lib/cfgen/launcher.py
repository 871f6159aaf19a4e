"""Running tasks: in this process or on one ProcessPoolExecutor, results in task order.

* The heavy objects (data, fitted model, class bounds, method settings) travel to each worker
  once, pickled once, through the pool initializer; a task is a small :class:`~cfgen.plan.Task`
  tuple and a result is a :class:`TaskResult` of plain arrays and numbers.
* A task's result depends only on the task (its seed is derived from its coordinates), so the
  output is the same sequentially, with 1, 2 or 16 workers, and in any completion order.
* Faults lose nothing: a task that raises becomes a failed result; a worker killed by the OS
  breaks the pool, which is rebuilt, and the tasks that were in flight are retried one at a time
  (so the one that kills its worker is found), up to ``max_crashes`` times; Ctrl-C stops the
  workers. With a :class:`~cfgen.journal.Journal`, every result is appended as it arrives and
  tasks already finished are skipped.
* Workers: CPUs this process may use − 1 by default, capped by the memory a worker needs, the
  open-file limit and the number of tasks; BLAS/OpenMP limited to one thread each.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import multiprocessing
import os
import pickle
import queue as queue_mod
import signal
import sys
import time
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from cfgen.errors import ConfigError
from cfgen.plan import Combinations, Task

log = logging.getLogger(__name__)

# --- sizing constants (measured by bench/bench_launcher.py, see bench/results/launcher.md)
WORKER_BASELINE_BYTES = 160 * 2**20  # RSS of an idle forkserver worker with cfgen's imports
CONTEXT_FACTOR = 4  # worker bytes per pickled context byte (objects + explainers + search)
MEMORY_HEADROOM = 0.8  # use at most this share of the available memory for workers
FD_RESERVE, FD_PER_WORKER = 64, 8  # open files: the parent's own + per worker (pipes, sentinels)
EXPLAINER_CACHE = 4  # explainers (one per actionability combination) kept per worker
MAX_CRASHES = 3  # a task in flight at this many worker deaths is marked failed
MAX_CRASHES_IN_A_ROW = 10  # pool deaths with no finished task in between: give up the run
BROKEN_WAIT = 60.0  # seconds to wait for a broken pool to fail its pending futures
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
PRELOAD = ["cfgen.launcher", "cfgen.methods", "cfgen.problem", "cfgen.search", "cfgen.data",
           "cfgen.models", "cfgen.predictor", "cfgen.constraints", "sklearn.ensemble"]


@dataclass
class WorkerContext:
    """Heavy objects every worker needs once: the problem, class bounds, the method factory.

    ``factory(problem, schema, class_bounds)`` builds the explainer for one actionability
    combination (a picklable partial: ``cfgen.methods.method_factory(cfg.method)``; tests pass
    their own to inject faults).
    """

    problem: Any
    factory: Callable[..., Any]
    bounds: Any
    combinations: Combinations
    k: int
    _explainers: collections.OrderedDict = field(
        default_factory=collections.OrderedDict, repr=False
    )

    def explainer(self, combination: int) -> Any:
        """The explainer for one actionability combination (kept for the next tasks)."""
        ex = self._explainers.get(combination)
        if ex is not None:
            self._explainers.move_to_end(combination)
            return ex
        schema = self.problem.schema.with_rules(self.combinations[combination])
        ex = self.factory(self.problem, schema, self.bounds)
        self._explainers[combination] = ex
        while len(self._explainers) > EXPLAINER_CACHE:
            self._explainers.popitem(last=False)
        return ex

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_explainers"] = collections.OrderedDict()  # never ship built explainers
        return state


@dataclass
class TaskResult:
    """What one task returns: plain arrays and numbers only (cheap to pickle)."""

    index: int
    counterfactuals: np.ndarray
    seconds: float
    reason: str | None
    generations: int
    best_fitness: np.ndarray
    mean_fitness: np.ndarray
    best_per_generation: np.ndarray
    error: str | None = None
    peak_rss: int = 0  # bytes: peak resident memory of the process that ran the task
    pid: int = 0  # the process that ran the task
    timed_out: bool = False  # the method hit method.time_limit (counts as a failure to find)


class WorkerInitError(RuntimeError):
    """A worker could not set itself up (e.g. the context failed to unpickle)."""


# ---------------------------------------------------------------------------- one task
def peak_rss() -> int:
    """Peak resident set size of this process in bytes (VmHWM)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource

        scale = 1 if sys.platform == "darwin" else 1024
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale
    except Exception:  # noqa: BLE001 - not available everywhere
        return 0


def failed_result(task: Task, d: int, error: str, seconds: float = 0.0,
                  here: bool = True) -> TaskResult:
    """A failed task's result: no counterfactuals, the error text (``here``: this process
    ran the task; false when the parent records a task whose worker died)."""
    return TaskResult(task.index, np.empty((0, d)), seconds, None, 0, np.empty(0), np.empty(0),
                      np.empty((0, d)), error=error, peak_rss=peak_rss() if here else 0,
                      pid=os.getpid() if here else 0)


def run_task(task: Task, ctx: WorkerContext | None = None) -> TaskResult:
    """Explain one task's query; a raised error becomes a failed result, not a crash."""
    ctx = ctx or _CONTEXT
    if ctx is None:
        raise WorkerInitError(_INIT_ERROR or "worker context not initialised")
    start = time.perf_counter()
    try:
        x = ctx.problem.X_test[task.query]
        rng = np.random.default_rng(task.seed)
        exp = ctx.explainer(task.combination).explain(x, task.target, ctx.k, rng)
        return TaskResult(task.index, np.asarray(exp.counterfactuals), float(exp.seconds),
                          exp.reason, int(exp.generations), np.asarray(exp.best_fitness),
                          np.asarray(exp.mean_fitness), np.asarray(exp.best_per_generation),
                          peak_rss=peak_rss(), pid=os.getpid(),
                          timed_out=bool(exp.timed_out))
    except Exception as exc:  # noqa: BLE001 - a failing task is recorded, the run goes on
        return failed_result(task, len(ctx.problem.schema),
                             f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}",
                             time.perf_counter() - start)


# ---------------------------------------------------------------------------- worker side
_CONTEXT: WorkerContext | None = None
_INIT_ERROR: str | None = None


def _init_worker(payload: bytes) -> None:
    """Pool initializer: one BLAS/OpenMP thread, ignore Ctrl-C (the parent handles it),
    unpickle the context once."""
    global _CONTEXT, _INIT_ERROR
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if any(os.environ.get(var) != "1" for var in THREAD_ENV):
        # not forked from our forkserver (started with these set): limit the libraries
        # already loaded (numpy's BLAS, scikit-learn's OpenMP) and those loaded later
        for var in THREAD_ENV:
            os.environ[var] = "1"
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(1)
        except Exception:  # noqa: BLE001 - threadpoolctl is optional
            pass
    try:
        _CONTEXT = pickle.loads(payload)
    except BaseException as exc:  # noqa: BLE001 - reported with the first task
        _INIT_ERROR = f"worker setup failed: {type(exc).__name__}: {exc}"


def _worker_task(task: Task) -> TaskResult:
    try:
        return run_task(task)
    except WorkerInitError:
        raise
    except BaseException as exc:  # noqa: BLE001 - e.g. SystemExit raised by a method
        return failed_result(task, len(_CONTEXT.problem.schema), f"{type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------- sizing
def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _cgroup_dirs(controller: str) -> list[Path]:
    """Directories that may hold this process's cgroup files (v2 and v1, nested or root)."""
    dirs: list[Path] = []
    for line in (_read("/proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctrls, rel = parts
        rel = rel.lstrip("/")
        if ctrls == "":
            dirs.append(Path("/sys/fs/cgroup") / rel)
        elif controller in ctrls.split(","):
            dirs.append(Path("/sys/fs/cgroup") / controller / rel)
    dirs += [Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup") / controller]
    return [d for d in dict.fromkeys(dirs) if d.is_dir()]


def cgroup_cpu_limit() -> int | None:
    """CPUs allowed by a cgroup CPU quota (containers, ``docker --cpus``), if any."""
    best = None
    for d in _cgroup_dirs("cpu"):
        quota = period = None
        v2 = _read(d / "cpu.max")
        if v2:
            q, _, p = v2.partition(" ")
            if q != "max":
                quota, period = float(q), float(p or 100000)
        else:
            q, p = _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")
            if q and p and float(q) > 0:
                quota, period = float(q), float(p)
        if quota and period:
            n = max(1, math.ceil(quota / period))
            best = n if best is None else min(best, n)
    return best


def usable_cpus() -> int:
    """CPUs this process may use: affinity, cgroup CPU quota, and Slurm's allocation."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        n = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota:
        n = min(n, quota)
    for var in ("SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            n = min(n, int(value))
    return max(1, n)


def resolve_workers(max_workers: int | None, n_tasks: int) -> int:
    """``max_workers`` (validated), or usable CPUs − 1; at least 1, never more than tasks."""
    if max_workers is None:
        n = usable_cpus() - 1
    else:
        if isinstance(max_workers, bool) or not isinstance(max_workers, (int, np.integer)) \
                or max_workers <= 0:
            raise ConfigError(
                f"experiment_params.max_workers={max_workers!r} is not allowed: expected null "
                "(usable CPUs - 1) or a positive integer"
            )
        n = int(max_workers)
    return max(1, min(n, n_tasks))


def available_memory() -> int | None:
    """Bytes this process can still use: MemAvailable, or less under a cgroup memory limit."""
    found: list[int] = []
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemAvailable:"):
            found.append(int(line.split()[1]) * 1024)
    for d in _cgroup_dirs("memory"):
        for limit_f, usage_f, inactive in (("memory.max", "memory.current", "inactive_file"),
                                           ("memory.limit_in_bytes", "memory.usage_in_bytes",
                                            "total_inactive_file")):
            limit, usage = _read(d / limit_f), _read(d / usage_f)
            if not limit or not usage or not limit.isdigit() or int(limit) >= 2**60:
                continue
            cache = 0
            for line in (_read(d / "memory.stat") or "").splitlines():
                key, _, value = line.partition(" ")
                if key == inactive and value.isdigit():
                    cache = int(value)
            found.append(max(0, int(limit) - int(usage) + cache))
    return min(found) if found else None


def worker_memory(context_bytes: int) -> int:
    """Estimated peak memory of one worker holding a context pickled to ``context_bytes``."""
    return WORKER_BASELINE_BYTES + CONTEXT_FACTOR * context_bytes


def memory_cap(workers: int, per_worker: int, available: int | None) -> tuple[int, str | None]:
    """Workers that fit in ``available`` bytes (at least 1), and why the cap bit (or None)."""
    if available is None or per_worker <= 0:
        return workers, None
    fit = max(1, int(available * MEMORY_HEADROOM // per_worker))
    if fit >= workers:
        return workers, None
    return fit, (f"{workers} workers × ~{per_worker / 2**20:.0f} MB each would not fit in the "
                 f"{available / 2**20:.0f} MB available; using {fit} "
                 "(set experiment_params.max_workers lower to silence this)")


def fd_cap(workers: int) -> tuple[int, str | None]:
    """Workers the open-file limit allows (raising the soft limit first if it is too low)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return workers, None
    need = FD_RESERVE + FD_PER_WORKER * workers
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return workers, None
    target = need if hard == resource.RLIM_INFINITY else min(hard, need)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    except (ValueError, OSError):
        pass
    if soft >= need:
        return workers, None
    fit = max(1, (soft - FD_RESERVE) // FD_PER_WORKER)
    return fit, (f"the open-file limit ({soft}) allows {fit} workers, not {workers} "
                 "(raise it with `ulimit -n`)")


def _mp_context(start_method: str | None):
    methods = multiprocessing.get_all_start_methods()
    method = start_method or ("forkserver" if "forkserver" in methods else "spawn")
    mp = multiprocessing.get_context(method)
    if method == "forkserver":
        mp.set_forkserver_preload(PRELOAD)  # no effect once the server runs (then: same list)
        _start_forkserver()
    return mp


def _start_forkserver() -> None:
    """Start the forkserver (once per process) with one BLAS/OpenMP thread: the variables
    must be set before it imports numpy; its forked workers inherit both."""
    from multiprocessing import forkserver

    saved = {var: os.environ.get(var) for var in THREAD_ENV}
    os.environ.update({var: "1" for var in THREAD_ENV})
    try:
        forkserver.ensure_running()
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


# ---------------------------------------------------------------------------- progress
class _Progress:
    """tqdm bar on a terminal (ETA, failures); otherwise a log line every 10 %."""

    def __init__(self, total: int, done: int, desc: str, enabled: bool | None) -> None:
        self.total, self.count, self.failed = total, done, 0
        self._next_log = 0.1
        self.bar = None
        if enabled is not False:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, desc=desc, unit="task", smoothing=0.05,
                            dynamic_ncols=True, disable=None if enabled is None else False,
                            file=sys.stderr)
            if self.bar.disable:
                self.bar = None

    def update(self, result: TaskResult) -> None:
        self.count += 1
        self.failed += result.error is not None
        if self.bar is not None:
            self.bar.update(1)
            if result.error is not None:
                self.bar.set_postfix(failed=self.failed, refresh=False)
        elif self.total and self.count / self.total >= self._next_log:
            log.info("%d/%d tasks done (%d failed)", self.count, self.total, self.failed)
            while self._next_log <= self.count / self.total:
                self._next_log += 0.1

    def logging(self):
        """Log lines printed above the bar instead of through it."""
        if self.bar is None:
            return contextlib.nullcontext()
        from tqdm.contrib.logging import logging_redirect_tqdm

        return logging_redirect_tqdm()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------- running
def run_tasks(
    tasks: Iterable[Task],
    ctx: WorkerContext,
    parallel: bool,
    max_workers: int | None,
    on_result: Callable[[TaskResult], None] | None = None,
    *,
    journal=None,
    progress: bool | None = None,
    max_crashes: int = MAX_CRASHES,
    start_method: str | None = None,
) -> list[TaskResult]:
    """Run every task; results come back sorted by task index.

    ``parallel``: on a process pool (even with one worker: a crash then only costs a retry),
    else sequentially in this process. ``journal``: tasks in ``journal.done`` are skipped and
    reused; every new result is appended as it arrives. ``progress``: None = a tqdm bar only
    on a terminal. Ctrl-C stops the workers and re-raises ``KeyboardInterrupt``; the journal
    keeps every task finished so far.
    """
    tasks = list(tasks)
    done: dict[int, TaskResult] = dict(getattr(journal, "done", None) or {})
    pending = [t for t in tasks if t.index not in done]
    results = {t.index: done[t.index] for t in tasks if t.index in done}
    bar = _Progress(len(tasks), len(results), "tasks", progress)

    def record(task: Task, result: TaskResult) -> None:
        results[task.index] = result
        if journal is not None:
            journal.append(task, result)
        if on_result is not None:
            on_result(result)
        bar.update(result)

    try:
        with bar.logging():
            if pending and parallel:
                _run_pool(pending, ctx, max_workers, record, max_crashes, start_method)
            else:
                if pending:
                    log.info("running %d tasks in this process", len(pending))
                for t in pending:
                    record(t, run_task(t, ctx))
    except KeyboardInterrupt:
        log.warning("interrupted: %d of %d tasks finished%s", len(results), len(tasks),
                    "; they are in the journal: run the same command with "
                    "experiment_params.resume=true to finish" if journal is not None else "")
        raise
    finally:
        bar.close()
    failed = sum(r.error is not None for r in results.values())
    if failed:
        first = next(r for r in results.values() if r.error is not None)
        log.warning("%d of %d tasks failed; first error (task %d): %s", failed, len(tasks),
                    first.index, first.error.splitlines()[0])
    return [results[t.index] for t in tasks]


def plan_workers(max_workers: int | None, n_tasks: int, context_bytes: int) -> int:
    """Workers for ``n_tasks``: the configured/CPU count, capped by memory and open files."""
    workers = resolve_workers(max_workers, n_tasks)
    per_worker = worker_memory(context_bytes)
    workers, why = memory_cap(workers, per_worker, available_memory())
    if why:
        log.warning("memory: %s", why)
    workers, why = fd_cap(workers)
    if why:
        log.warning("open files: %s", why)
    return workers


def _run_pool(
    pending: Sequence[Task],
    ctx: WorkerContext,
    max_workers: int | None,
    record: Callable[[Task, TaskResult], None],
    max_crashes: int,
    start_method: str | None,
) -> None:
    payload = pickle.dumps(ctx, protocol=pickle.HIGHEST_PROTOCOL)
    workers = plan_workers(max_workers, len(pending), len(payload))
    log.info("running %d tasks on %d worker processes (context %.1f MB, est. %.0f MB per "
             "worker)", len(pending), workers, len(payload) / 2**20,
             worker_memory(len(payload)) / 2**20)
    mp = _mp_context(start_method)
    d = len(ctx.problem.schema)
    window = 2 * workers  # tasks submitted ahead: workers never wait, a crash loses few
    queue = collections.deque(pending)
    suspects: collections.deque[Task] = collections.deque()  # run alone after a crash
    strikes: dict[int, int] = collections.Counter()
    inflight: dict[Future, Task] = {}
    peak = 0

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, mp_context=mp, initializer=_init_worker,
                                   initargs=(payload,))

    refused = False  # the pool refused a submission: it broke since the last wait

    # Completed futures arrive through a SimpleQueue fed by done-callbacks, instead of
    # concurrent.futures.wait(): wait() takes every future's lock in turn, and a Ctrl-C landing
    # between two of those acquisitions leaks a lock that the executor's own thread then
    # blocks on forever at interpreter exit. SimpleQueue.get is safe to interrupt.
    done_q: queue_mod.SimpleQueue[Future] = queue_mod.SimpleQueue()

    def submit(t: Task) -> bool:
        nonlocal refused
        try:
            fut = pool.submit(_worker_task, t)
        except BrokenProcessPool:
            refused = True
            return False
        inflight[fut] = t
        fut.add_done_callback(done_q.put)
        return True

    def collect(timeout: float | None = None) -> set[Future]:
        """In-flight futures that are done: wait for at least one (up to ``timeout``)."""
        got: set[Future] = set()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not got:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                fut = done_q.get(timeout=left)
            except queue_mod.Empty:
                break
            if fut in inflight:
                got.add(fut)
        while True:
            try:
                fut = done_q.get_nowait()
            except queue_mod.Empty:
                return got
            if fut in inflight:
                got.add(fut)

    pool = new_pool()
    crashes_in_a_row = 0
    try:
        while queue or suspects or inflight:
            refused = False
            if suspects:
                if not inflight and submit(suspects[0]):
                    suspects.popleft()
            else:
                while queue and len(inflight) < window and submit(queue[0]):
                    queue.popleft()
            finished: set[Future] = collect() if inflight else set()
            broken = refused or any(isinstance(f.exception(), BrokenProcessPool)
                                    for f in finished)
            if broken:
                # the executor fails every pending future at once
                deadline = time.monotonic() + BROKEN_WAIT
                while not all(f.done() for f in inflight) and time.monotonic() < deadline:
                    collect(timeout=max(0.0, deadline - time.monotonic()))
                finished = set(inflight)
            lost: list[Task] = []
            for fut in sorted(finished, key=lambda f: inflight[f].index):
                task = inflight.pop(fut)
                exc = fut.exception() if fut.done() else BrokenProcessPool("no answer")
                if exc is None:
                    r = fut.result()
                    peak = max(peak, r.peak_rss)
                    crashes_in_a_row = 0
                    record(task, r)
                elif isinstance(exc, BrokenProcessPool):
                    lost.append(task)
                elif isinstance(exc, WorkerInitError):
                    raise RuntimeError(f"cannot run tasks on worker processes: {exc}") from exc
                else:  # e.g. a result that could not be pickled
                    record(task, failed_result(task, d, f"{type(exc).__name__}: {exc}",
                                               here=False))
            if not broken:
                continue
            pool.shutdown(wait=True, cancel_futures=True)
            crashes_in_a_row += 1
            if crashes_in_a_row > MAX_CRASHES_IN_A_ROW:
                raise RuntimeError(
                    f"worker processes died {crashes_in_a_row} times in a row without finishing "
                    "a task (out of memory? lower experiment_params.max_workers, or run with "
                    "experiment_params.parallel_replications=false to see the error)")
            for task in lost:
                strikes[task.index] += 1
                if strikes[task.index] >= max_crashes:
                    record(task, failed_result(
                        task, d, f"WorkerCrash: the worker running this task died "
                        f"{strikes[task.index]} times (killed by a signal, e.g. SIGKILL "
                        "or the out-of-memory killer, or a crash in native code)",
                        here=False))
                else:
                    suspects.append(task)
            log.warning("a worker process died%s; %d task(s) will be retried one at a time",
                        f" running task {lost[0].index}" if len(lost) == 1 else
                        f" with {len(lost)} tasks in flight", len(suspects))
            pool = new_pool()
    except BaseException:
        _terminate(pool)
        raise
    else:
        pool.shutdown(wait=True)
    if peak:
        log.info("worker peak memory %.0f MB (estimate was %.0f MB)", peak / 2**20,
                 worker_memory(len(payload)) / 2**20)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel what has not started, end the worker processes."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        try:
            p.terminate()
        except Exception:  # noqa: BLE001 - already gone
            pass
    for p in processes:
        p.join(timeout=5)


# ---------------------------------------------------------------------------- reporting
def combination_table(
    tasks: Sequence[Task],
    results: Sequence[TaskResult],
    combinations: Combinations | None = None,
    k: int | None = None,
) -> str:
    """Per actionability combination: tasks, failed, success rate (≥ 1 counterfactual),
    complete rate (k counterfactuals) and mean counterfactuals per task."""
    by_index = {r.index: r for r in results}
    rows: dict[int, dict] = {}
    for t in tasks:
        r = by_index.get(t.index)
        row = rows.setdefault(t.combination, {"tasks": 0, "failed": 0, "success": 0,
                                              "complete": 0, "cfs": 0})
        row["tasks"] += 1
        if r is None or r.error is not None:
            row["failed"] += 1
            continue
        n = len(r.counterfactuals)
        row["cfs"] += n
        row["success"] += n > 0
        row["complete"] += k is not None and n >= k
    if not rows:
        return "(no tasks)"
    header = ["combination", "tasks", "failed", "success", "complete", "mean_cfs"]
    if combinations is not None:
        header.append("rules")
    lines = []
    for c in sorted(rows):
        row = rows[c]
        n = row["tasks"]
        cells = [str(c), str(n), str(row["failed"]), f"{row['success'] / n:.3f}",
                 f"{row['complete'] / n:.3f}" if k is not None else "-",
                 f"{row['cfs'] / n:.2f}"]
        if combinations is not None:
            cells.append(combinations.label(c))
        lines.append(cells)
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i == len(cells) - 1 and combinations is not None else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    return "\n".join([fmt(header), *(fmt(r) for r in lines)])
