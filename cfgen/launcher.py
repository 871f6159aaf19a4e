"""Running tasks: sequentially or on a ProcessPoolExecutor, results in task order."""

from __future__ import annotations

import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from cfgen.plan import Combinations, Task


@dataclass
class WorkerContext:
    """Heavy objects every worker needs once: data, fitted model, bounds, method settings."""

    data: object
    model: object
    bounds: object
    method: str
    ga_cfg: dict
    combinations: Combinations
    k: int
    _explainers: dict = field(default_factory=dict, repr=False)

    def explainer(self, combination: int):
        """The explainer for one actionability combination (built once per worker)."""
        ex = self._explainers.get(combination)
        if ex is None:
            from cfgen.methods import build_explainer

            schema = self.data.schema.with_rules(self.combinations[combination])
            ex = build_explainer(self.method, self.ga_cfg, self.model, self.data, self.bounds, schema)
            self._explainers[combination] = ex
        return ex


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


_CONTEXT: WorkerContext | None = None


def _init_worker(ctx: WorkerContext) -> None:
    global _CONTEXT
    _CONTEXT = ctx
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def run_task(task: Task, ctx: WorkerContext | None = None) -> TaskResult:
    """Explain one task's query; a raised error becomes a failed result, not a crash."""
    ctx = ctx or _CONTEXT
    assert ctx is not None, "worker context not initialised"
    start = time.perf_counter()
    try:
        x = ctx.data.X_test[task.query]
        rng = np.random.default_rng(task.seed)
        exp = ctx.explainer(task.combination).explain(x, task.target, ctx.k, rng)
        return TaskResult(task.index, exp.counterfactuals, exp.seconds, exp.reason,
                          exp.generations, exp.best_fitness, exp.mean_fitness,
                          exp.best_per_generation)
    except Exception as exc:  # noqa: BLE001 - a failing task is recorded, the run goes on
        d = len(ctx.data.schema)
        return TaskResult(task.index, np.empty((0, d)), time.perf_counter() - start, None, 0,
                          np.empty(0), np.empty(0), np.empty((0, d)),
                          error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")


def usable_cpus() -> int:
    """CPUs this process may run on (affinity-aware where the OS supports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def resolve_workers(max_workers: int | None, n_tasks: int) -> int:
    """``max_workers`` or usable CPUs − 1; at least 1, never more than tasks."""
    n = max_workers if max_workers is not None else usable_cpus() - 1
    return max(1, min(n, n_tasks))


def run_tasks(
    tasks: Iterable[Task],
    ctx: WorkerContext,
    parallel: bool,
    max_workers: int | None,
    on_result: Callable[[TaskResult], None] | None = None,
) -> list[TaskResult]:
    """Run every task; results come back sorted by task index."""
    tasks = list(tasks)
    results: list[TaskResult] = []
    workers = resolve_workers(max_workers, len(tasks))
    if not parallel or workers == 1 or len(tasks) <= 1:
        for t in tasks:
            r = run_task(t, ctx)
            results.append(r)
            if on_result:
                on_result(r)
    else:
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(ctx,)) as pool:
            futures = [pool.submit(run_task, t) for t in tasks]
            for fut in as_completed(futures):
                r = fut.result()
                results.append(r)
                if on_result:
                    on_result(r)
    results.sort(key=lambda r: r.index)
    return results
