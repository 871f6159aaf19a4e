"""Per feature, the cells between the ensemble's splits and the cheapest value of each.

A numeric feature's allowed values (:class:`~cfgen.exact.grid.Domain`) are cut by the split
thresholds on it into consecutive *segments* ``[c_s, c_{s+1})``; every value of a segment routes
identically in every tree, so the forest's prediction depends only on the segment. Each cut
``c_i`` is *canonical*: the smallest allowed value sent right, so no segment is empty. A
segment's representative is its allowed value nearest the query (the query itself in the
query's segment), which makes the distance of a segment exact and its value on the data's grid.
A threshold whose cut falls outside the domain is constant (always left or always right).

Categorical features are not cut: the MILP chooses one code (one-hot), and a split sends a code
right when ``code >= first_right(t)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cfgen.exact.grid import Cast, Domain, first_right, float32_cast, routes_right

LEFT, RIGHT = -1, -2  # constant outcomes of a threshold over the whole domain


@dataclass(frozen=True)
class NumericCells:
    """Segments of one numeric feature: ``cuts`` (m,), per segment ``reps`` and ``costs``
    (m+1,), the query's segment ``q``; ``state[i]`` for threshold ``thresholds[i]`` is
    ``LEFT``/``RIGHT`` or the 1-based cut index ``c`` (right exactly when ``y_c = 1``)."""

    thresholds: np.ndarray
    state: np.ndarray
    cuts: np.ndarray
    reps: np.ndarray
    costs: np.ndarray
    q: int

    def lookup(self, t: float) -> int:
        return int(self.state[np.searchsorted(self.thresholds, t)])


@dataclass(frozen=True)
class CategoricalCells:
    """Allowed ``codes`` of one categorical feature, their ``costs`` (0 for the query's code,
    1 otherwise) and the query's position ``q``; ``first[i]`` is the smallest code sent right by
    ``thresholds[i]``."""

    thresholds: np.ndarray
    first: np.ndarray
    codes: np.ndarray
    costs: np.ndarray
    q: int

    def first_code(self, t: float) -> int:
        """Position in ``codes`` of the first code ``t`` sends right (``LEFT`` / ``RIGHT`` when
        it sends all codes one way)."""
        pos = int(np.searchsorted(self.codes, self.first[np.searchsorted(self.thresholds, t)]))
        return LEFT if pos >= len(self.codes) else RIGHT if pos == 0 else pos


def _grid_below(dom: Domain, v: float) -> float:
    """Largest allowed grid index whose value is ``< v``."""
    k = np.floor(v * dom.factor) + 1
    while k / dom.factor >= v:
        k -= 1
    return min(dom.khi, k)


def _canonical(dom: Domain, t: np.ndarray, cast: Cast) -> np.ndarray:
    """Per threshold, the smallest allowed value sent right (``inf`` when none)."""
    out = np.full(len(t), np.inf)
    if dom.klo <= dom.khi:
        k = np.maximum(first_right(t, dom.factor, cast), dom.klo)
        out = np.where(k <= dom.khi, k / dom.factor, np.inf)
    x_right = routes_right(dom.x, t, cast)
    return np.where(x_right & (dom.x < out), dom.x, out)


def numeric_cells(
    dom: Domain, thresholds: np.ndarray, inv_scale: float, cast: Cast = float32_cast
) -> NumericCells:
    """Segments of a numeric feature's domain under ``thresholds`` (sorted, distinct)."""
    t = np.asarray(thresholds, dtype=np.float64)
    key = _canonical(dom, t, cast)
    dmin, dmax = dom.low_high()
    inside = (key > dmin) & (key <= dmax)
    cuts = np.unique(key[inside])
    state = np.where(key <= dmin, RIGHT, LEFT).astype(np.intp)
    state[inside] = np.searchsorted(cuts, key[inside]) + 1
    lows = np.concatenate([[dmin], cuts])
    highs = np.concatenate([cuts, [np.inf]])
    x = dom.x
    reps = np.empty(len(lows))
    for s, (a, b) in enumerate(zip(lows, highs, strict=True)):
        if a <= x < b:
            reps[s] = x
        elif x < a:
            reps[s] = a
        else:
            reps[s] = _grid_below(dom, b) / dom.factor
    q = int(np.searchsorted(cuts, x, side="right"))
    costs = np.abs(reps * inv_scale - x * inv_scale)
    return NumericCells(thresholds=t, state=state, cuts=cuts, reps=reps, costs=costs, q=q)


def categorical_cells(
    dom: Domain, thresholds: np.ndarray, cast: Cast = float32_cast
) -> CategoricalCells:
    """Codes of a categorical feature's domain and how ``thresholds`` split them."""
    t = np.asarray(thresholds, dtype=np.float64)
    codes = dom.codes.astype(float)
    costs = (codes != dom.x).astype(float)
    q = int(np.flatnonzero(codes == dom.x)[0])
    return CategoricalCells(
        thresholds=t, first=first_right(t, 1.0, cast), codes=codes, costs=costs, q=q
    )
