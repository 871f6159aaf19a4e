"""Split thresholds of a tree ensemble as grid values: where a feature's prediction can change.

With every other feature fixed, a forest's prediction is constant between two consecutive split
thresholds on a feature. sklearn sends ``x`` left when ``float64(float32(x)) <= t``. For each
threshold ``t`` this module keeps, on the data's grid (``k / 10**decimals``), ``right`` = the
smallest value sent right and ``left`` = the largest value sent left. Moving a changed feature
to the edge of its own segment nearest the query therefore keeps the prediction exactly, and the
edges of the segments between the query and the counterfactual are the only other values worth
trying (see :func:`cfgen.search.refine.shrink`).
"""

from __future__ import annotations

import numpy as np

from cfgen.schema import FeatureSchema


def _trees(estimator) -> list | None:
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    inner = getattr(estimator, "model", None)  # a wrapper answering class indices (cfgen.api)
    if inner is not None and not isinstance(estimator, (RandomForestClassifier,
                                                         ExtraTreesClassifier,
                                                         DecisionTreeClassifier)):
        estimator = inner

    if isinstance(estimator, (RandomForestClassifier, ExtraTreesClassifier)):
        return [t.tree_ for t in getattr(estimator, "estimators_", [])] or None
    if isinstance(estimator, DecisionTreeClassifier) and hasattr(estimator, "tree_"):
        return [estimator.tree_]
    return None


class SplitEdges:
    """Per non-categorical feature: sorted ``left`` / ``right`` grid values of its thresholds."""

    def __init__(self, left: list[np.ndarray], right: list[np.ndarray]) -> None:
        self.left = left
        self.right = right

    @classmethod
    def from_estimator(cls, estimator, schema: FeatureSchema) -> "SplitEdges | None":
        """Edges of a fitted sklearn tree / forest (or a wrapper holding it as ``.model``);
        ``None`` for any other model."""
        trees = _trees(estimator)
        if trees is None:
            return None
        d = len(schema)
        feats = np.concatenate([t.feature for t in trees])
        thr = np.concatenate([t.threshold for t in trees])
        dec = np.where(schema.continuous, schema.decimals, 0).astype(float)
        cat = schema.categorical
        left: list[np.ndarray] = []
        right: list[np.ndarray] = []
        for j in range(d):
            t = np.unique(thr[feats == j]) if not cat[j] else np.zeros(0)
            f = 10.0 ** dec[j]
            k = np.floor(t * f) - 2.0
            # smallest k with float32(k / f) > t (a few steps from below)
            for _ in range(6):
                below = (k / f).astype(np.float32).astype(np.float64) <= t
                if not below.any():
                    break
                k = k + below
            right.append(k / f)
            left.append((k - 1.0) / f)
        return cls(left, right)

    def candidates(
        self, j: int, x_j: float, c: np.ndarray, n_near: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Trial values for feature ``j`` of rows whose value ``c`` (m,) moved away from ``x_j``.

        Returns ``(row, value)`` pairs: for each row the ``n_near`` segment edges nearest the query
        (closest first) plus the edge of the row's own segment nearest the query. Rows with no
        threshold between the query and their value get no trials.
        """
        rows_out, vals_out = [], []
        ar = np.arange(n_near)
        up = np.flatnonzero(c > x_j)
        if up.size:
            r = self.right[j]
            lo = np.searchsorted(r, x_j, side="right")  # first edge > x_j
            hi = np.searchsorted(r, c[up], side="right")  # edges <= c
            has = hi > lo
            if has.any():
                up, hi = up[has], hi[has]
                pos = np.broadcast_to(lo + ar, (len(up), n_near))
                own = hi - 1
                keep = (pos < own[:, None])
                pos = np.column_stack([pos, own])
                keep = np.column_stack([keep, np.ones(len(up), dtype=bool)])
                rows_out.append(np.broadcast_to(up[:, None], pos.shape)[keep])
                vals_out.append(r[pos[keep]])
        down = np.flatnonzero(c < x_j)
        if down.size:
            left = self.left[j]
            hi = np.searchsorted(left, x_j, side="left")  # edges < x_j: positions < hi
            lo = np.searchsorted(left, c[down], side="left")  # edges >= c
            has = lo < hi
            if has.any():
                down, lo = down[has], lo[has]
                pos = np.broadcast_to(hi - 1 - ar, (len(down), n_near))
                keep = pos > lo[:, None]
                pos = np.column_stack([pos, lo])
                keep = np.column_stack([keep, np.ones(len(down), dtype=bool)])
                rows_out.append(np.broadcast_to(down[:, None], pos.shape)[keep])
                vals_out.append(left[np.maximum(pos, 0)[keep]])
        if not rows_out:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        return np.concatenate(rows_out).astype(np.intp), np.concatenate(vals_out)
