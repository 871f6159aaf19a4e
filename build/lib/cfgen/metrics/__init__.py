"""Guidotti's (2022) counterfactual metric suite, for every query of a run at once.

The suite is the one of the ECE ``cf_eval`` code (``cf_eval/metrics.py``, Guidotti, "Counterfactual
explanations and how to find them", DMKD 2022) that the DPG-vs-DiCE tables report. cfgen computes
it for each query ``x`` and its returned counterfactual set ``C`` (``|C| <= k``) with the original's
defects fixed (:class:`~cfgen.metrics.cfgen_suite.CfgenSuite`); ``compat="ece"`` reproduces the
original definitions, defects included (:class:`~cfgen.metrics.ece_suite.EceSuite`), so numbers
can be put next to published tables. Every definition, its direction and scale, and what changed
from the original is in ``docs/metrics.md``.

Usage::

    ctx = MetricContext(schema, X_train, y_train, X_test, model.predict_proba)   # once per run
    frame = metrics_frame(ctx, tasks, results, k, schemas_by_combination)       # all tasks
    summary = summarize_rows(frame)      # n_failed, n_timed_out, validity, per-metric stats
    row = ctx.compute(x, cfs, target, k, runtime)                               # one query

All arrays live in the model's encoded space: categoricals are integer codes, classes ``0..C-1``
(column ``c`` of ``predict_proba`` is class ``c``). Integer features are ordinal numbers and are
treated like continuous ones ("non-categorical") everywhere, as the original did.
"""

from __future__ import annotations

from cfgen.metrics.aggregate import aggregate, failure_mask, summarize_rows
from cfgen.metrics.common import guarded_mad
from cfgen.metrics.context import MetricContext, Suite
from cfgen.metrics.frame import (
    COLUMNS,
    combination_schemas,
    explanation_of,
    is_failure,
    metrics_frame,
    task_row,
)
from cfgen.metrics.names import COMPAT_MODES, COUNT_LIKE, DIRECTIONS, METRIC_NAMES, SCALES

__all__ = [
    "COLUMNS",
    "COMPAT_MODES",
    "COUNT_LIKE",
    "DIRECTIONS",
    "METRIC_NAMES",
    "SCALES",
    "MetricContext",
    "Suite",
    "aggregate",
    "combination_schemas",
    "explanation_of",
    "failure_mask",
    "guarded_mad",
    "is_failure",
    "metrics_frame",
    "summarize_rows",
    "task_row",
]
