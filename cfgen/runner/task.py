"""One task's result, and running one task (or a chunk of them) against a worker context."""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from cfgen.explanation import Explanation
from cfgen.plan import Task
from cfgen.runner.context import WorkerContext
from cfgen.runner.resources import peak_rss


@dataclass
class TaskResult:
    """What one task returns: its :class:`Explanation`, or an empty one and the error.

    A plain dataclass of these five fields (the journal stores them without pickle).
    ``peak_rss`` (bytes) and ``pid`` describe the process that ran the task (0: the parent
    recorded a task whose worker died).
    """

    index: int
    explanation: Explanation
    error: str | None = None
    peak_rss: int = 0
    pid: int = 0

    # -- read-only aliases for readers not yet moved to ``.explanation`` (one release) --
    @property
    def counterfactuals(self) -> np.ndarray:
        return self.explanation.counterfactuals

    @property
    def seconds(self) -> float:
        return self.explanation.seconds

    @property
    def reason(self) -> str | None:
        return self.explanation.reason

    @property
    def generations(self) -> int:
        return self.explanation.generations

    @property
    def best_fitness(self) -> np.ndarray:
        return self.explanation.best_fitness

    @property
    def mean_fitness(self) -> np.ndarray:
        return self.explanation.mean_fitness

    @property
    def best_per_generation(self) -> np.ndarray:
        return self.explanation.best_per_generation

    @property
    def timed_out(self) -> bool:
        exp = self.explanation
        return bool(exp.timed_out or exp.extra.get("timed_out", False))


class WorkerInitError(RuntimeError):
    """A worker could not set itself up (e.g. the context failed to unpickle)."""


def failed_result(task: Task, d: int, k: int, error: str, seconds: float = 0.0,
                  here: bool = True) -> TaskResult:
    """A failed task: no counterfactuals, the error's first line as the reason, the full text
    as ``error`` (``here``: this process ran the task; false when the parent records a task
    whose worker died)."""
    reason = (error.splitlines() or ["failed"])[0]
    return TaskResult(task.index, Explanation.empty(d, task.target, k, seconds, reason),
                      error=error, peak_rss=peak_rss() if here else 0,
                      pid=os.getpid() if here else 0)


def run_task(task: Task, ctx: WorkerContext) -> TaskResult:
    """Explain one task's query; a raised error becomes a failed result, not a crash."""
    start = time.perf_counter()
    try:
        x = ctx.problem.X_test[task.query]
        rng = np.random.default_rng(task.seed)
        exp = ctx.explainer(task.combination).explain(x, task.target, ctx.k, rng)
        return TaskResult(task.index, exp, peak_rss=peak_rss(), pid=os.getpid())
    except Exception as exc:  # noqa: BLE001 - a failing task is recorded, the run goes on
        return failed_result(task, ctx.n_features, ctx.k,
                             f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}",
                             time.perf_counter() - start)


def run_chunk(tasks: Sequence[Task], ctx: WorkerContext) -> list[TaskResult]:
    """Run tasks one after the other (a chunk shipped to a worker as one message)."""
    return [run_task(t, ctx) for t in tasks]
