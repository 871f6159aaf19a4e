"""Deprecated (one release): the launcher moved to :mod:`cfgen.runner`; import from there.

Re-exports the old names. :func:`WorkerContext` also accepts the pre-runner form with an
``explainer_factory`` (older tests and scripts).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from cfgen.console import combination_table
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
from cfgen.runner.task import TaskResult, failed_result, run_task

__all__ = ["WORKER_BASELINE_BYTES", "TaskResult", "WorkerContext", "combination_table",
           "failed_result", "fd_cap", "memory_cap", "peak_rss", "resolve_workers", "run_task",
           "run_tasks", "usable_cpus"]


def _legacy_factory(method: str, ga_cfg: Any, model: Any, time_limit: float | None,
                    explainer_factory: Callable | None, problem: Any, schema: Any,
                    class_bounds: Any) -> Any:
    if explainer_factory is None:
        raise TypeError("cfgen.launcher.WorkerContext(data, model, ...) needs explainer_factory; "
                        "build cfgen.runner.WorkerContext(problem, factory, class_bounds, ...)")
    return explainer_factory(method, ga_cfg, model, problem, class_bounds, schema)


def WorkerContext(*args: Any, **kwargs: Any) -> _context.WorkerContext:  # noqa: N802
    """``cfgen.runner.WorkerContext(problem, factory, class_bounds, combinations, k)``; the
    pre-runner form ``(data, model, bounds, method, ga_cfg, combinations, k,
    explainer_factory=...)`` still builds one (``data`` stands in for the problem)."""
    if len(args) + len(kwargs) <= 5 and "explainer_factory" not in kwargs:
        return _context.WorkerContext(*args, **kwargs)
    names = ("data", "model", "bounds", "method", "ga_cfg", "combinations", "k",
             "explainer_factory", "time_limit")
    a = dict(zip(names, args, strict=False), **kwargs)
    factory = functools.partial(_legacy_factory, a["method"], a["ga_cfg"], a["model"],
                                a.get("time_limit"), a.get("explainer_factory"))
    return _context.WorkerContext(a["data"], factory, a["bounds"], a["combinations"], a["k"])
