"""Split thresholds of a tree ensemble as grid values: where a feature's prediction can change.

With every other feature fixed, a tree ensemble's prediction is constant between two consecutive
split thresholds on a feature. Every supported library sends ``x`` left when
``float64(x.astype(input_dtype)) <= threshold`` in the :class:`~cfgen.trees.TreeEnsemble` view
(sklearn: float32 ``x`` against the float64 threshold; XGBoost: float32 ``x < split``, stored
as the largest float32 below ``split``; LightGBM / HistGB: float64 ``x <= threshold``). For each
threshold ``t`` this module keeps, on the data's grid (``k / 10**decimals``), ``right`` = the
smallest value sent right and ``left`` = the largest value sent left. Moving a changed feature
to the edge of its own segment nearest the query therefore keeps the prediction exactly, and the
edges of the segments between the query and the counterfactual are the only other values worth
trying (see :func:`cfgen.search.refine.shrink`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cfgen.schema import FeatureSchema
from cfgen.trees import TreeEnsemble, UnsupportedModel


def _count(
    flat: np.ndarray, start: np.ndarray, end: np.ndarray, v: np.ndarray, right: bool
) -> np.ndarray:
    """Vectorised ``searchsorted`` in many sorted segments ``flat[start:end]`` at once.

    Returns, per query value, the absolute index of the first element ``> v`` (``right``) or
    ``>= v`` (left) within its segment (``end`` if none).
    """
    lo, hi = start.copy(), end.copy()
    while True:
        live = lo < hi
        if not live.any():
            return lo
        mid = (lo + hi) // 2
        m = flat[np.minimum(mid, len(flat) - 1)] if len(flat) else np.zeros(len(mid))
        go = (m <= v) if right else (m < v)
        go &= live
        lo = np.where(go, mid + 1, lo)
        hi = np.where(live & ~go, mid, hi)


class SplitEdges:
    """Per non-categorical feature: sorted ``left`` / ``right`` grid values of its thresholds
    (also flattened: ``*_flat`` with per-feature ``start`` / ``end`` offsets)."""

    def __init__(self, left: list[np.ndarray], right: list[np.ndarray]) -> None:
        self.left = left
        self.right = right
        sizes = np.array([len(r) for r in right], dtype=np.intp)
        self.end = np.cumsum(sizes)
        self.start = self.end - sizes
        self.left_flat = np.concatenate(left) if left else np.zeros(0)
        self.right_flat = np.concatenate(right) if right else np.zeros(0)

    @classmethod
    def from_ensemble(cls, trees: TreeEnsemble | Any, schema: FeatureSchema) -> SplitEdges:
        """Edges of a :class:`TreeEnsemble` (or a fitted model it supports).

        Raises :class:`cfgen.trees.UnsupportedModel` (the compiler's and miners' line) for any
        other model.
        """
        ens = TreeEnsemble.from_model(trees)
        dec = np.where(schema.continuous, schema.decimals, 0).astype(float)
        cat = schema.categorical
        grid = ens.feature_thresholds()
        left: list[np.ndarray] = []
        right: list[np.ndarray] = []
        for j in range(len(schema)):
            t = grid[j] if j < len(grid) and not cat[j] else np.zeros(0)
            f = 10.0 ** dec[j]
            k = np.floor(t * f) - 2.0
            # smallest k with cast(k / f) > t (a few steps from below)
            for _ in range(6):
                below = ens.cast(k / f) <= t
                if not below.any():
                    break
                k = k + below
            right.append(k / f)
            left.append((k - 1.0) / f)
        return cls(left, right)

    @classmethod
    def from_estimator(cls, estimator: Any, schema: FeatureSchema) -> SplitEdges | None:
        """:meth:`from_ensemble`, or ``None`` for a model that is not a supported tree ensemble
        (the genetic search then refines without edges). No wrapper is unwrapped: pass the
        :class:`TreeEnsemble` (``problem.trees``) for wrapped models."""
        try:
            return cls.from_ensemble(estimator, schema)
        except UnsupportedModel:
            return None

    def candidates(
        self, j: np.ndarray, x_j: np.ndarray, c: np.ndarray, n_near: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Trial values for pairs (feature ``j``, query value ``x_j``, current value ``c``).

        All arrays have one entry per pair. Returns ``(pair, value)``: for each pair the
        ``n_near`` segment edges nearest the query (on the side of ``c``) plus the edge of the
        pair's own segment nearest the query. Pairs with no threshold between get no trials.
        """
        j = np.asarray(j, dtype=np.intp)
        start, end = self.start[j], self.end[j]
        ar = np.arange(n_near)
        pairs, vals = [], []
        up = np.flatnonzero(c > x_j)
        if up.size:
            r = self.right_flat
            lo = _count(r, start[up], end[up], x_j[up], right=True)  # first edge > x_j
            hi = _count(r, start[up], end[up], c[up], right=True)  # edges <= c end here
            has = hi > lo
            up, lo, hi = up[has], lo[has], hi[has]
            if up.size:
                pos = lo[:, None] + ar[None, :]
                keep = pos < (hi - 1)[:, None]
                pos = np.column_stack([pos, hi - 1])
                keep = np.column_stack([keep, np.ones(up.size, dtype=bool)])
                pairs.append(np.broadcast_to(up[:, None], pos.shape)[keep])
                vals.append(r[pos[keep]])
        down = np.flatnonzero(c < x_j)
        if down.size:
            left = self.left_flat
            hi = _count(left, start[down], end[down], x_j[down], right=False)  # edges < x_j
            lo = _count(left, start[down], end[down], c[down], right=False)  # first edge >= c
            has = lo < hi
            down, lo, hi = down[has], lo[has], hi[has]
            if down.size:
                pos = (hi - 1)[:, None] - ar[None, :]
                keep = pos > lo[:, None]
                pos = np.column_stack([pos, lo])
                keep = np.column_stack([keep, np.ones(down.size, dtype=bool)])
                pairs.append(np.broadcast_to(down[:, None], pos.shape)[keep])
                vals.append(left[pos[keep]])
        if not pairs:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        return np.concatenate(pairs).astype(np.intp), np.concatenate(vals)
