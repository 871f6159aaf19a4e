"""Where the tasks run: in this process, on a process pool, or as a Slurm job array.

``experiment_params.executor``:

* ``local``: one after the other in this process (also ``parallel_replications=false``);
* ``process`` (default): worker processes. With ``max_workers`` set, exactly that many
  (capped by tasks, memory and open files) and every task runs in a worker, so a task that
  crashes its process costs a retry, not the run. With ``max_workers: null`` the runner pays
  for a pool only when it pays back: it starts the forkserver, runs the first tasks here while
  it starts (measuring what a task costs), and moves the rest to a pool of one worker per
  usable CPU once the pool is up, if the work left outweighs starting it; a small run simply
  finishes here ("18 tasks ≈ 0.1 s: running in this process");
* ``slurm``: a Slurm job array through submitit (:mod:`cfgen.runner.slurm`).

Results depend only on the task (its seed), so every choice gives the same bytes.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from typing import Any, Callable, Iterable, Sequence

from cfgen.errors import ConfigError
from cfgen.plan import Task
from cfgen.runner import forkserver
from cfgen.runner.context import WorkerContext
from cfgen.runner.cost import CostMeter
from cfgen.runner.pool import MAX_CRASHES, ChunkPool, Record
from cfgen.runner.progress import Progress
from cfgen.runner.resources import (
    CpuSampler,
    cap_workers,
    check_max_workers,
    pool_speedup,
    resolve_workers,
    worker_memory,
)
from cfgen.runner.task import TaskResult, run_task

log = logging.getLogger("cfgen.runner")

EXECUTORS = ("process", "local", "slurm")
POOL_START_SECONDS = 0.15  # a pool's own start once the forkserver serves forks
MEASURE_TASKS = 3  # tasks measured here before a run too small for any pool stays here
MEASURE_SECONDS = 0.25  # otherwise this long (the machine's load too; 4 × as long for 1 task)


def run_tasks(
    tasks: Iterable[Task],
    ctx: WorkerContext,
    parallel: bool = True,
    max_workers: int | None = None,
    on_result: Callable[[TaskResult], None] | None = None,
    *,
    journal: Any = None,
    progress: bool | None = None,
    max_crashes: int = MAX_CRASHES,
    start_method: str | None = None,
    executor: str = "process",
    slurm: Any = None,
    resume: bool = False,
) -> list[TaskResult]:
    """Run every task; results come back sorted by task index.

    ``journal``: tasks in ``journal.done`` are skipped and reused; every new result is
    appended (``journal.append(task, result)``) as it arrives. ``progress``: None = a tqdm bar
    only on a terminal. Ctrl-C / SIGTERM stop the workers and propagate; the journal keeps every
    task finished so far. ``slurm``: the ``experiment_params.slurm`` settings (executor=slurm);
    ``resume``: ``experiment_params.resume`` (a Slurm run then merges the journal segments an
    earlier attempt left).
    """
    if executor not in EXECUTORS:
        raise ConfigError(
            f"experiment_params.executor={executor!r} is not allowed: expected "
            f"one of {', '.join(EXECUTORS)}"
        )
    workers = check_max_workers(max_workers)
    tasks = list(tasks)
    done: dict[int, TaskResult] = dict(getattr(journal, "done", None) or {})
    pending = [t for t in tasks if t.index not in done]
    results = {t.index: done[t.index] for t in tasks if t.index in done}
    bar = Progress(len(tasks), len(results), "tasks", progress)

    def record(task: Task, result: TaskResult) -> None:
        results[task.index] = result
        if journal is not None:
            journal.append(task, result)
        if on_result is not None:
            on_result(result)
        bar.update(result)

    try:
        with bar.logging():
            if not pending:
                pass
            elif executor == "local" or not parallel:
                run_here(pending, ctx, record)
            elif executor == "slurm":
                from cfgen.runner.slurm import run_slurm

                run_slurm(pending, ctx, record, slurm, journal=journal, resume=resume)
            elif workers is not None:
                run_pool(pending, ctx, record, workers, max_crashes, start_method)
            else:
                run_auto(pending, ctx, record, max_crashes, start_method)
    except KeyboardInterrupt:
        log.warning(
            "interrupted: %d of %d tasks finished%s",
            len(results),
            len(tasks),
            "; they are in the journal: run the same command with "
            "experiment_params.resume=true to finish"
            if journal is not None
            else "",
        )
        raise
    finally:
        bar.close()
    _log_failures(results, len(tasks))
    return [results[t.index] for t in tasks]


def _log_failures(results: dict[int, TaskResult], n_tasks: int) -> None:
    failed = [r for r in results.values() if r.error is not None]
    if failed:
        first = min(failed, key=lambda r: r.index)
        log.warning(
            "%d of %d tasks failed; first error (task %d): %s",
            len(failed),
            n_tasks,
            first.index,
            (first.error or "").splitlines()[0],
        )


def run_here(
    tasks: Sequence[Task], ctx: WorkerContext, record: Record, meter: CostMeter | None = None
) -> None:
    """One after the other in this process."""
    if meter is None:
        log.info("running %d tasks in this process", len(tasks))
    for t in tasks:
        start = time.perf_counter()
        r = run_task(t, ctx)
        if meter is not None:
            meter.add(time.perf_counter() - start)
        record(t, r)


def run_pool(
    tasks: Sequence[Task],
    ctx: WorkerContext,
    record: Record,
    workers: int,
    max_crashes: int = MAX_CRASHES,
    start_method: str | None = None,
    meter: CostMeter | None = None,
) -> None:
    """On a pool of ``workers`` processes (capped by tasks, memory and open files)."""
    payload = ctx.dumps()
    workers = cap_workers(max(1, min(workers, len(tasks))), len(payload))
    mp = forkserver.mp_context(start_method)
    log.info(
        "running %d tasks on %d worker processes (context %.1f MB, est. %.0f MB per worker)",
        len(tasks),
        workers,
        len(payload) / 2**20,
        worker_memory(len(payload)) / 2**20,
    )
    pool = ChunkPool(
        payload,
        workers,
        mp,
        record,
        main_pid=os.getpid(),
        n_features=ctx.n_features,
        k=ctx.k,
        max_crashes=max_crashes,
        meter=meter,
    )
    pool.run(tasks)
    if pool.peak:
        log.info(
            "worker peak memory %.0f MB (estimate was %.0f MB)",
            pool.peak / 2**20,
            worker_memory(len(payload)) / 2**20,
        )


def pool_pays(n_left: int, meter: CostMeter, speedup: float, wait: float) -> bool:
    """Whether moving ``n_left`` tasks to workers that finish ``speedup`` × faster, ready in
    ``wait`` seconds (this process keeps working meanwhile), beats running them here."""
    per = meter.per_task
    if per is None or speedup <= 1.0:
        return False
    left = n_left * per - wait  # work still left when the pool can start
    start = POOL_START_SECONDS + meter.setup  # workers also build the explainer first
    return left * (1 - 1 / speedup) > start


def run_auto(
    tasks: Sequence[Task],
    ctx: WorkerContext,
    record: Record,
    max_crashes: int = MAX_CRASHES,
    start_method: str | None = None,
) -> None:
    """``max_workers: null``: here while the pool starts, then on the pool if it pays.

    The gain of one worker per usable CPU is discounted by the CPUs other processes keep busy
    (measured while the first tasks run here): on a machine others saturate, a pool cannot
    be faster, and the run stays here."""
    usable = resolve_workers(None, len(tasks))
    sampler = CpuSampler([os.getpid()])

    def start_server() -> None:  # it imports while this process works
        forkserver.mp_context(start_method)
        pid = forkserver.server_pid()
        if pid is not None and pid not in sampler.ours:
            sampler.ours.append(pid)  # a new process: all its CPU is within the window

    # A large plan starts the forkserver now (the command line did already); a small one only
    # once its first task says a pool could pay even after a cold start (18 tasks of 10 ms
    # never do: no process is started, nothing competes with this one for a CPU)
    started = usable >= 2 and (
        len(tasks) >= forkserver.WARM_UP_TASKS or forkserver.server_pid() is not None
    )
    if started:
        start_server()
    queue, meter = deque(tasks), CostMeter()
    start, speedup, others, announced = time.perf_counter(), 0.0, None, False
    while queue:
        if not started and usable >= 2 and meter.n >= 1:
            if pool_pays(len(queue), meter, usable, forkserver.seconds_until_ready()):
                started = True
                start_server()
        elapsed = time.perf_counter() - start
        small = meter.n >= MEASURE_TASKS and not pool_pays(len(queue), meter, usable, 0.0)
        if small or (meter.n >= 2 and elapsed >= MEASURE_SECONDS) or elapsed >= 4 * MEASURE_SECONDS:
            wait = forkserver.seconds_until_ready()
            if not announced:  # the machine's load over the measuring, once
                others = sampler.others() if usable >= 2 and not small else None
                speedup = pool_speedup(usable, others) if usable >= 2 else 1.0
            pays = not small and pool_pays(len(queue), meter, speedup, wait)
            if not announced:
                announced = True
                _announce(len(tasks), meter, usable, speedup, others, pays, wait)
            if not pays:
                run_here(list(queue), ctx, record, meter)
                return
            if wait == 0.0:
                break
        t = queue.popleft()
        t0 = time.perf_counter()
        r = run_task(t, ctx)
        meter.add(time.perf_counter() - t0)
        record(t, r)
    if queue:
        run_pool(list(queue), ctx, record, usable, max_crashes, start_method, meter)


def _announce(
    n: int,
    meter: CostMeter,
    workers: int,
    speedup: float,
    others: float | None,
    pays: bool,
    wait: float,
) -> None:
    per = meter.per_task or 0.0
    busy = f"other processes keep {others:.1f} CPUs busy" if others and others >= 0.5 else ""
    if pays:
        log.info(
            "%d tasks ≈ %.1f s: %d worker processes (≈ %.1f× faster%s; this process works "
            "until they are up, ≈ %.1f s)",
            n,
            n * per,
            workers,
            speedup,
            f", {busy}" if busy else "",
            wait,
        )
        return
    if workers < 2:
        why = "one usable CPU"
    elif speedup > 1:
        why = f"a pool, ≈ {speedup:.1f}× faster, would not pay for its start"
    else:
        why = ""
    why = ", ".join(w for w in (why, busy) if w)
    log.info("%d tasks ≈ %.1f s: running in this process%s", n, n * per, f" ({why})" if why else "")
