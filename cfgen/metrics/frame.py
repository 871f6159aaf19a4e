"""A run's metric rows (``metrics.csv``): every task scored in one batch, failures made explicit.

A task *failed* when its result carries an ``error`` or its explanation ``timed_out``; a failed
task is scored as if it had returned nothing, whatever it returned: its count-like metrics
(``nbr_*``, ``perc_*``) are 0, the metrics defined over the returned set are NaN, and its
``runtime`` is the time it took. Console, ``metrics.csv``, ``summary.json`` and the report
(``cfgen.report.load``) all use this rule (see :func:`~cfgen.metrics.aggregate.summarize_rows`).

:func:`metrics_frame` is what a run calls after its searches (one batch over all tasks);
:func:`task_row` scores one task, a pure function of the context and the task's result, for a
runner that wants the metrics computed in its workers.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from cfgen.explanation import Explanation
from cfgen.metrics.context import MetricContext
from cfgen.metrics.names import METRIC_NAMES
from cfgen.schema import FeatureSchema

KEYS = ("query", "target", "combination", "replication")
INFO = ("generations", "final_fitness", "timed_out", "reason", "error")
#: the columns of :func:`metrics_frame`, in order (``dataset`` / ``method`` are the run's)
COLUMNS: tuple[str, ...] = (*KEYS, *METRIC_NAMES, *INFO)


def explanation_of(result: Any, d: int) -> Explanation:
    """The :class:`Explanation` of a task result.

    Accepts ``TaskResult(index, explanation, error, peak_rss, pid)`` and, until the runner's
    change lands, the older flattened ``TaskResult`` (``counterfactuals``, ``seconds``, ...).
    A result without an explanation is an empty one (no counterfactuals, 0 s).
    """
    exp = getattr(result, "explanation", None)
    if isinstance(exp, Explanation):
        return exp
    if not hasattr(result, "counterfactuals"):
        return Explanation.empty(d, -1, 0, 0.0, reason="no explanation")
    return Explanation(
        counterfactuals=np.asarray(result.counterfactuals, dtype=float).reshape(-1, d),
        target=-1,
        k=0,
        seconds=float(result.seconds),
        reason=result.reason,
        best_fitness=np.asarray(result.best_fitness),
        generations=int(result.generations),
        timed_out=bool(getattr(result, "timed_out", False)),
    )


def is_failure(result: Any, explanation: Explanation) -> bool:
    """Raised (``error``) or went over its time limit (``timed_out``)."""
    return bool(getattr(result, "error", None)) or bool(explanation.timed_out)


def _columns(
    ctx: MetricContext,
    tasks: Sequence[Any],
    results: Sequence[Any],
    k: int,
    schemas: Mapping[int, FeatureSchema | None] | None,
) -> dict[str, Any]:
    by_index = {r.index: r for r in results}
    res = [by_index[t.index] for t in tasks]
    exps = [explanation_of(r, ctx.d) for r in res]
    failed = [is_failure(r, e) for r, e in zip(res, exps, strict=True)]
    empty = np.empty((0, ctx.d))
    cfs = [empty if f else e.counterfactuals for f, e in zip(failed, exps, strict=True)]
    queries = np.array([t.query for t in tasks], dtype=int)
    cols = ctx.evaluate(
        ctx.X_test[queries],
        cfs,
        [t.target for t in tasks],
        k,
        [e.seconds for e in exps],
        [None if schemas is None else schemas[t.combination] for t in tasks],
    )
    errors = [r.error.splitlines()[0] if getattr(r, "error", None) else "" for r in res]
    final = [float(e.best_fitness[-1]) if len(e.best_fitness) else np.nan for e in exps]
    return {
        "query": queries,
        "target": np.array([t.target for t in tasks], dtype=int),
        "combination": np.array([t.combination for t in tasks], dtype=int),
        "replication": np.array([t.replication for t in tasks], dtype=int),
        **cols,
        "generations": np.array([int(e.generations) for e in exps], dtype=int),
        "final_fitness": np.array(final, dtype=float),
        "timed_out": np.array([bool(e.timed_out) for e in exps], dtype=bool),
        "reason": [e.reason or "" for e in exps],
        "error": errors,
    }


def metrics_frame(
    ctx: MetricContext,
    tasks: Sequence[Any],
    results: Sequence[Any],
    k: int,
    schemas_by_combination: Mapping[int, FeatureSchema | None] | None = None,
) -> pd.DataFrame:
    """One row per task (in ``tasks`` order): coordinates, the suite, how the search ended.

    ``results`` are the runner's task results (matched to tasks by ``index``);
    ``schemas_by_combination[t.combination]`` is the schema with that combination's rules
    (``None``: the context's own rules). Columns: :data:`COLUMNS`.
    """
    return pd.DataFrame(
        _columns(ctx, tasks, results, k, schemas_by_combination), columns=list(COLUMNS)
    )


def task_row(
    ctx: MetricContext, task: Any, result: Any, k: int, schema: FeatureSchema | None = None
) -> dict[str, Any]:
    """One task's row of :func:`metrics_frame` (plain Python values), e.g. in a worker."""
    cols = _columns(ctx, [task], [result], k, {task.combination: schema})
    return {name: _plain(cols[name][0]) for name in COLUMNS}


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def combination_schemas(
    schema: FeatureSchema, combinations: Any, tasks: Sequence[Any]
) -> dict[int, FeatureSchema]:
    """``{combination: schema.with_rules(combinations[combination])}`` for the tasks' ones."""
    return {c: schema.with_rules(combinations[c]) for c in sorted({t.combination for t in tasks})}
