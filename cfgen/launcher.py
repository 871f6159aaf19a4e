"""Deprecated (one release): the launcher moved to :mod:`cfgen.runner`.

Re-exports the old names, and keeps the old :func:`WorkerContext` signature
``(data, model, bounds, method, ga_cfg, combinations, k, explainer_factory=None,
time_limit=None)`` by building the new context with a method factory from it. New code:
``cfgen.runner.WorkerContext(problem, class_bounds, factory, combinations, k)``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from cfgen.plan import Combinations
from cfgen.runner import context as _context
from cfgen.runner.executors import run_tasks
from cfgen.runner.resources import (
    WORKER_BASELINE_BYTES,
    fd_cap,
    memory_cap,
    peak_rss,
    resolve_workers,
    usable_cpus,
)
from cfgen.runner.summary import combination_table
from cfgen.runner.task import TaskResult, failed_result, run_task

__all__ = ["WORKER_BASELINE_BYTES", "TaskResult", "WorkerContext", "combination_table",
           "failed_result", "fd_cap", "memory_cap", "peak_rss", "resolve_workers", "run_task",
           "run_tasks", "usable_cpus"]


def _legacy_factory(method: str, ga_cfg: Any, model: Any, time_limit: float | None,
                    explainer_factory: Callable | None, problem: Any, schema: Any,
                    class_bounds: Any) -> Any:
    if explainer_factory is not None:
        return explainer_factory(method, ga_cfg, model, problem, class_bounds, schema)
    from cfgen.methods import build_explainer

    return build_explainer(method, ga_cfg, model, problem, class_bounds, schema,
                           time_limit=time_limit)


def WorkerContext(data: Any, model: Any, bounds: Any, method: str, ga_cfg: Any,  # noqa: N802
                  combinations: Combinations, k: int, explainer_factory: Callable | None = None,
                  time_limit: float | None = None) -> _context.WorkerContext:
    """The new context from the old arguments (``data`` stands in for the problem)."""
    factory = functools.partial(_legacy_factory, method, ga_cfg, model, time_limit,
                                explainer_factory)
    return _context.WorkerContext(data, bounds, factory, combinations, k)
