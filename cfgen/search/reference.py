"""Real training rows the search leans on: implausibility reference and anchors.

For each class ``c`` (built once per explainer):

* the *reference* rows are the training rows labelled ``c``: a counterfactual's implausibility is
  its distance to the nearest of them;
* the *anchors* are the training rows labelled ``c`` that the model also puts in ``c`` (if none,
  any row the model puts in ``c``): real, valid points of the target class.

Per query (:meth:`TrainingReference.for_query`): the ``reference_rows`` reference rows nearest the
query (implausibility is measured against them: exact for every point near the query, cheap for
wide data), and the ``anchors`` anchors nearest the query after projecting them onto the query's
feasible box (actionability), kept only where the projection is still valid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cfgen.search.distance import MixedDistance
from cfgen.search.space import SearchSpace


@dataclass
class QueryGuides:
    """Per-query reference rows (scaled) and valid projected anchors (raw and scaled)."""

    reference_s: np.ndarray
    anchors: np.ndarray
    anchors_s: np.ndarray
    n_evals: int = 0


class TrainingReference:
    def __init__(self, X_train: np.ndarray, y_train: np.ndarray, predicted: np.ndarray,
                 metric: MixedDistance) -> None:
        X = np.asarray(X_train, dtype=float)
        y = np.asarray(y_train).astype(int)
        predicted = np.asarray(predicted).astype(int)
        self.metric = metric
        self.rows: dict[int, np.ndarray] = {}
        self.rows_s: dict[int, np.ndarray] = {}
        self.anchors: dict[int, np.ndarray] = {}
        self.anchors_s: dict[int, np.ndarray] = {}
        for c in np.union1d(np.unique(y), np.unique(predicted)):
            c = int(c)
            own = y == c
            self.rows[c] = X[own]
            self.rows_s[c] = metric.scaled(X[own])
            good = own & (predicted == c)
            if not good.any():
                good = predicted == c
            self.anchors[c] = X[good]
            self.anchors_s[c] = metric.scaled(X[good])

    def for_query(
        self, space: SearchSpace, target: int, n_reference: int, n_anchors: int, valid_fn
    ) -> QueryGuides:
        d = space.d
        x_s = self.metric.scaled(space.x)
        rows_s = self.rows_s.get(target, np.zeros((0, d)))
        if len(rows_s) > n_reference > 0:
            dist = self.metric.to(rows_s, x_s)
            rows_s = rows_s[np.argpartition(dist, n_reference - 1)[:n_reference]]
        anchors = self.anchors.get(target, np.zeros((0, d)))
        if len(anchors) == 0 or n_anchors <= 0:
            return QueryGuides(rows_s, np.zeros((0, d)), np.zeros((0, d)))
        proj = np.clip(anchors, space.lo, space.hi)
        if not space.movable.all():
            proj[:, ~space.movable] = space.x[~space.movable]
        proj_s = self.metric.scaled(proj)
        dist = self.metric.to(proj_s, x_s)
        if len(proj) > n_anchors:
            near = np.argpartition(dist, n_anchors - 1)[:n_anchors]
        else:
            near = np.arange(len(proj))
        near = near[np.argsort(dist[near], kind="stable")]
        proj = space.repair(proj[near])
        ok = valid_fn(proj)
        proj = proj[ok & (np.count_nonzero(proj != space.x, axis=1) > 0)]
        return QueryGuides(rows_s, proj, self.metric.scaled(proj), n_evals=len(near))
