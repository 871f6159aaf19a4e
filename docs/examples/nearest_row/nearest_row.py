"""A fifth method in one module: the nearest training rows the model puts in the target class.

A plug-in needs no change to cfgen: this module plus ``conf/method/nearest_row.yaml``, found with
``python -m cfgen --config-dir <this folder>/conf method=nearest_row`` (and this folder on
``PYTHONPATH``). See docs/extending.md.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from cfgen.explanation import Explanation
from cfgen.schema import actionability_violations
from cfgen.search.distance import MixedDistance, feature_scale


class NearestTrainingRow:
    """Counterfactuals = the ``k`` training rows nearest the query (MAD-scaled L1 plus one per
    changed categorical) that the model puts in the target class and that the actionability
    rules allow."""

    needs_bounds: ClassVar[bool] = False  # the run mines no class bounds for this method

    def __init__(self, problem: Any, schema: Any = None, class_bounds: Any = None, *,
                 name: str = "nearest_row", time_limit: float | None = None,
                 max_rows: int = 5000) -> None:
        self.schema = schema if schema is not None else problem.schema
        X = np.asarray(problem.X_train, dtype=float)[:max_rows]
        self.rows = X
        self.predicted = problem.predict(X)  # the model's own verdict, computed once
        self.metric = MixedDistance(feature_scale(problem.X_train, self.schema),
                                    self.schema.categorical)

    def explain(self, x: np.ndarray, target: int, k: int, rng: np.random.Generator
                ) -> Explanation:
        start = time.perf_counter()
        rows = self.rows[self.predicted == target]
        rows = rows[actionability_violations(x, rows, self.schema.rules) == 0]
        if len(rows) == 0:
            return Explanation.empty(len(x), target, k, time.perf_counter() - start,
                                     "no training row of the target class is reachable")
        dist = self.metric.to(self.metric.scaled(rows), self.metric.scaled(x))
        order = np.argsort(dist, kind="stable")[:k]
        reason = None if len(order) == k else f"only {len(order)} reachable rows"
        return Explanation(rows[order], target, k, time.perf_counter() - start, reason=reason,
                           roles=["closest"] + ["nearest"] * (len(order) - 1))
