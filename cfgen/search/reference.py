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
    """Per-query reference rows (scaled) and valid projected anchors."""

    reference_s: np.ndarray
    anchors: np.ndarray
    n_evals: int = 0


class TrainingReference:
    def __init__(
        self, X_train: np.ndarray, y_train: np.ndarray, predicted: np.ndarray, metric: MixedDistance
    ) -> None:
        X = np.asarray(X_train, dtype=float)
        y = np.asarray(y_train).astype(int)
        predicted = np.asarray(predicted).astype(int)
        self.metric = metric
        self.rows: dict[int, np.ndarray] = {}
        self.rows_s: dict[int, np.ndarray] = {}
        self.is_anchor: dict[int, np.ndarray] = {}
        self.extra_anchors: dict[int, np.ndarray] = {}
        self.span: dict[int, tuple[np.ndarray, np.ndarray] | None] = {}
        for c in np.union1d(np.unique(y), np.unique(predicted)):
            c = int(c)
            own = y == c
            self.rows[c] = X[own]
            self.rows_s[c] = metric.scaled(X[own])
            self.is_anchor[c] = predicted[own] == c
            # no labelled row of c is predicted c: any row predicted c is an anchor
            self.extra_anchors[c] = (
                X[predicted == c] if not self.is_anchor[c].any() else np.zeros((0, X.shape[1]))
            )
            a = self.extra_anchors[c] if len(self.extra_anchors[c]) else X[own][self.is_anchor[c]]
            self.span[c] = (a.min(axis=0), a.max(axis=0)) if len(a) else None

    def for_query(
        self, space: SearchSpace, target: int, n_reference: int, n_anchors: int, valid_fn
    ) -> QueryGuides:
        d = space.d
        metric = self.metric
        x_s = metric.scaled(space.x)
        rows = self.rows.get(target, np.zeros((0, d)))
        rows_s = self.rows_s.get(target, np.zeros((0, d)))
        dist = metric.pairwise(rows_s, x_s[None, :])[:, 0] if len(rows_s) else np.zeros(0)
        ref_s = rows_s
        if len(rows_s) > n_reference > 0:
            ref_s = rows_s[np.argpartition(dist, n_reference - 1)[:n_reference]]
        if n_anchors <= 0:
            return QueryGuides(ref_s, np.zeros((0, d)))
        if len(self.extra_anchors.get(target, ())):
            cand = self.extra_anchors[target]
            cand_dist = metric.pairwise(metric.scaled(cand), x_s[None, :])[:, 0]
        else:
            mask = self.is_anchor.get(target, np.zeros(0, dtype=bool))
            cand, cand_dist = rows[mask], dist[mask]
        if len(cand) == 0:
            return QueryGuides(ref_s, np.zeros((0, d)))
        span = self.span[target]
        assert span is not None  # there are anchor candidates
        a_min, a_max = span
        ruled = np.flatnonzero(
            (space.lo > np.minimum(a_min, space.x)) | (space.hi < np.maximum(a_max, space.x))
        )
        if ruled.size:  # distances after projection onto the box: correct the clipped columns
            sub = cand[:, ruled]
            before = np.minimum(
                np.abs(sub - space.x[ruled]) * metric.inv[ruled], metric.cap[ruled]
            ).sum(axis=1)
            clipped = np.clip(sub, space.lo[ruled], space.hi[ruled])
            after = np.minimum(
                np.abs(clipped - space.x[ruled]) * metric.inv[ruled], metric.cap[ruled]
            ).sum(axis=1)
            cand_dist = cand_dist - before + after
        if len(cand) > n_anchors:
            near = np.argpartition(cand_dist, n_anchors - 1)[:n_anchors]
        else:
            near = np.arange(len(cand))
        near = near[np.argsort(cand_dist[near], kind="stable")]
        proj = space.repair(np.clip(cand[near], space.lo, space.hi))
        ok = valid_fn(proj) & (np.count_nonzero(proj != space.x, axis=1) > 0)
        proj = proj[ok]
        return QueryGuides(ref_s, proj, n_evals=len(near))
