"""Per-feature scale and the mixed distance every objective of the search is measured in.

A continuous or integer feature counts ``|a - b| / MAD``; a categorical one counts 1 when the codes
differ. Rows are scaled once (``X / scale``) and capped per feature (categoricals at 1), so a
distance is one subtraction, one ``abs``, one ``minimum`` and one sum.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from cfgen.metrics import guarded_mad
from cfgen.schema import FeatureSchema


def feature_scale(X: np.ndarray, schema: FeatureSchema) -> np.ndarray:
    """Per-feature scale: the MAD of the training data (``cfgen.metrics.guarded_mad``: mean
    absolute deviation where the MAD is 0, 1 for a constant column); categoricals get 1."""
    X = np.asarray(X, dtype=float)
    scale = np.ones(X.shape[1])
    num = ~schema.categorical
    if num.any():
        scale[num] = guarded_mad(X[:, num])
    return scale


class MixedDistance:
    """MAD-scaled L1 over non-categorical features plus the count of changed categoricals.

    Pairwise distances use ``scipy.spatial.distance.cdist`` (``cityblock`` on the scaled
    non-categorical columns, ``hamming`` times their number on the categorical ones): a numpy
    broadcast over a short feature axis is several times slower.
    """

    def __init__(self, scale: np.ndarray, categorical: np.ndarray) -> None:
        categorical = np.asarray(categorical, dtype=bool)
        self.inv = 1.0 / np.asarray(scale, dtype=float)
        self.cap = np.where(categorical, 1.0, np.inf)
        self.has_cat = bool(categorical.any())
        self.cat = np.flatnonzero(categorical)
        self.num = np.flatnonzero(~categorical)
        self.all_num = not self.has_cat

    def scaled(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=float) * self.inv

    def per_feature(self, As: np.ndarray, bs: np.ndarray) -> np.ndarray:
        """Per-feature distances of scaled rows ``As`` (n, d) to scaled row(s) ``bs``."""
        D = np.abs(As - bs)
        if self.has_cat:
            np.minimum(D, self.cap, out=D)
        return D

    def to(self, As: np.ndarray, bs: np.ndarray) -> np.ndarray:
        """Distances (n,) of scaled rows ``As`` to one scaled row ``bs`` (or aligned rows)."""
        return self.per_feature(As, bs).sum(axis=-1)

    def pairwise(self, As: np.ndarray, Bs: np.ndarray) -> np.ndarray:
        """(len(As), len(Bs)) distances between scaled rows."""
        if len(As) == 0 or len(Bs) == 0:
            return np.zeros((len(As), len(Bs)))
        if self.all_num:
            return cdist(As, Bs, "cityblock")
        D = cdist(As[:, self.cat], Bs[:, self.cat], "hamming") * len(self.cat)
        if len(self.num):
            D += cdist(As[:, self.num], Bs[:, self.num], "cityblock")
        return D

    def nearest(self, As: np.ndarray, Bs: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
        """Distance (len(As),) from each scaled row of ``As`` to its nearest row of ``Bs``."""
        if len(Bs) == 0:
            return np.zeros(len(As))
        step = max(1, chunk // max(1, len(As)))
        if step >= len(Bs):
            return self.pairwise(As, Bs).min(axis=1)
        best = np.full(len(As), np.inf)
        for i in range(0, len(Bs), step):
            np.minimum(best, self.pairwise(As, Bs[i : i + step]).min(axis=1), out=best)
        return best


_HASH = np.random.default_rng(20240611).standard_normal(4096)


def row_keys(X: np.ndarray) -> np.ndarray:
    """One float key per row: a fixed random projection (equal rows, equal keys; distinct rows
    practically never share one)."""
    d = X.shape[1]
    r = _HASH[:d] if d <= len(_HASH) else np.resize(_HASH, d)
    return np.asarray(X, dtype=float) @ r


def unique_rows(X: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct row of ``X`` (in order of appearance).

    Rows are keyed by a fixed random projection (``X @ r``): equal rows always share a key and
    distinct rows practically never do; several times faster than ``np.unique(axis=0)``.
    """
    if len(X) == 0:
        return np.zeros(0, dtype=np.intp)
    _, first = np.unique(row_keys(X), return_index=True)
    return np.sort(first)
