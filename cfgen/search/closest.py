"""The closest counterfactual of a tree ensemble: a beam search over split flips from the query.

A tree ensemble's prediction only changes when a feature crosses a threshold of a split on the
point's current decision paths. From any point ``P`` the *flip* moves are therefore: for every
split node on ``P``'s paths (all trees), move its feature just across the threshold, to the grid
value nearest it on the other side (:class:`FlipGrid`). A move never brings a feature back
towards the query, so a point's cost (the search's distance to the query) only grows along a
sequence of flips, and every counterfactual whose changed features sit at split edges — the
closest one among them — is the end of such a sequence: uniform-cost search over flips is
exact. :func:`flip_search` keeps it affordable with a beam: each layer expands every kept point
by all its flips at once (one leaf look-up and one batched predict), collects the valid ones,
and keeps the ``beam`` most promising invalid ones, ranked by ``cost + lambda * deficit``
(``deficit``: how far the target's probability is from winning) for a spread of exchange rates
``lambda`` (the cheap and the decisive moves both survive). It stops once no kept point is
cheaper than the best counterfactual found (costs only grow), or after ``layers`` layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cfgen.search.distance import MixedDistance, row_keys
from cfgen.search.space import SearchSpace


class FlipGrid:
    """Per split node of a :class:`cfgen.trees.TreeEnsemble`: its feature and the grid values
    just left (``cast(v) <= threshold``) and just right of its threshold.

    ``factor`` is the data's grid per feature (``10**decimals``; 1 for integers and codes).
    """

    def __init__(self, ens: Any, factor: np.ndarray) -> None:
        self.ens = ens
        n = ens.n_nodes
        split = np.flatnonzero(ens.feature >= 0)
        f = ens.feature[split]
        t = ens.threshold[split]
        fac = np.asarray(factor, dtype=float)[f]
        k = np.floor(t * fac) - 2.0
        for _ in range(8):  # smallest k with cast(k / fac) > t
            below = ens.cast(k / fac) <= t
            if not below.any():
                break
            k = k + below
        self.feature = np.asarray(ens.feature, dtype=np.intp)
        self.threshold = np.asarray(ens.threshold, dtype=float)
        self.left = np.full(n, np.nan)
        self.right = np.full(n, np.nan)
        self.right[split] = k / fac
        self.left[split] = (k - 1.0) / fac
        parent = np.asarray(ens.parent, dtype=np.intp)
        # ancestors of every node, nearest first, -1 padded: a leaf's path is one gather
        depth = max(int(ens.max_depth), 1)
        anc = np.full((n, depth), -1, dtype=np.intp)
        cur = np.arange(n)
        for level in range(depth):
            cur = np.where(cur >= 0, parent[np.maximum(cur, 0)], -1)
            anc[:, level] = cur
        self.ancestors = anc

    def path_nodes(self, leaves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(row, node)`` of every split node on the paths ending at ``leaves`` (n, T)."""
        A = self.ancestors[leaves]  # (n, T, depth)
        rows, _, _ = np.nonzero(A >= 0)
        return rows, A[A >= 0]


def _flips(
    P: np.ndarray,
    x: np.ndarray,
    grid: FlipGrid,
    predictor: Any,
    space: SearchSpace,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row, feature, value)`` of every flip of the points ``P`` away from ``x``."""
    rows, nodes = grid.path_nodes(predictor.leaf_nodes(P))
    j = grid.feature[nodes]
    cur = P[rows, j]
    left = grid.ens.cast(cur) <= grid.threshold[nodes]
    v = np.where(left, grid.right[nodes], grid.left[nodes])
    xj = x[j]
    away = (cur == xj) | (((v - xj) * (cur - xj) > 0) & (np.abs(v - xj) > np.abs(cur - xj)))
    ok = away & space.movable[j] & (v >= space.lo[j]) & (v <= space.hi[j]) & (v != xj)
    return rows[ok], j[ok], v[ok]  # repeats (one split value in several trees) are dropped later


def _deficit(proba: np.ndarray, target: int) -> np.ndarray:
    """How far the target's probability is from the best other class's (0 when it wins)."""
    other = proba.copy()
    other[:, target] = -np.inf
    return np.maximum(other.max(axis=1) - proba[:, target], 0.0)


def _keep(cost: np.ndarray, deficit: np.ndarray, beam: int, rate: float) -> np.ndarray:
    """Indices of up to ``beam`` rows: the best by ``cost + lambda * deficit`` for several
    exchange rates ``lambda`` around ``rate`` (cost per unit of probability), in turn."""
    lambdas = rate * np.array([0.25, 1.0, 4.0, 16.0])
    score = cost[None, :] + lambdas[:, None] * deficit[None, :]  # (4, n)
    n = len(cost)
    if n > beam:
        top = np.argpartition(score, beam - 1, axis=1)[:, :beam]
    else:
        top = np.broadcast_to(np.arange(n), (len(lambdas), n))
    rank = np.take_along_axis(score, top, axis=1)
    order = np.lexsort((top, rank), axis=1)  # per lambda: by score, then index
    ranked = np.take_along_axis(top, order, axis=1).T.ravel()  # in turn: 1st of each, ...
    _, first = np.unique(ranked, return_index=True)
    return ranked[np.sort(first)][:beam]


def _term(metric: MixedDistance, x: np.ndarray, j: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Feature ``j``'s share of the distance of value ``v`` to the query."""
    return np.minimum(np.abs(v - x[j]) * metric.inv[j], metric.cap[j])


def _start(
    x: np.ndarray, start: np.ndarray | None, metric: MixedDistance, sparse: float
) -> tuple[np.ndarray, np.ndarray]:
    """The first layer (``start``, default the query itself) and its cost, in the search's
    cost: the distance to ``x``, or with ``sparse > 0`` the changed features first."""
    P = x[None, :].copy() if start is None else np.array(start, dtype=float, ndmin=2)
    P_cost = metric.to(metric.scaled(P), metric.scaled(x))
    if sparse > 0:
        P_cost = np.count_nonzero(P != x, axis=1) + sparse * P_cost
    return P, P_cost


def _children(
    P: np.ndarray,
    P_cost: np.ndarray,
    x: np.ndarray,
    grid: FlipGrid,
    predictor: Any,
    space: SearchSpace,
    metric: MixedDistance,
    sparse: float,
    best: float,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct points one flip from ``P`` cheaper than ``best``, and their costs (priced
    incrementally from ``P_cost``); ``None`` when there is none: the search is then complete,
    since costs only grow along flips."""
    rows, j, v = _flips(P, x, grid, predictor, space)
    if rows.size == 0:
        return None
    w = sparse if sparse > 0 else 1.0
    old = P[rows, j]
    cost = P_cost[rows] + w * (_term(metric, x, j, v) - _term(metric, x, j, old))
    if sparse > 0:
        cost += old == x[j]  # a new changed feature
    keep = cost < best  # costs only grow: nothing dearer than the best found can win
    if not keep.any():
        return None
    rows, j, v, cost = rows[keep], j[keep], v[keep], cost[keep]
    S = P[rows]
    S[np.arange(rows.size), j] = v
    _, first = np.unique(row_keys(S), return_index=True)  # moves never return, so
    first = np.sort(first)  # points repeat only within a layer
    return S[first], cost[first]


def _exchange_rate(
    predictor: Any, P: np.ndarray, target: int, cost: np.ndarray, deficit: np.ndarray
) -> float:
    """Cost per unit of target probability gained by the first layer's moves (median): the
    scale that makes the beam's ``cost + lambda * deficit`` ranking comparable."""
    gain = _deficit(predictor.predict_proba(P), target).max() - deficit
    good = gain > 1e-12
    return float(np.median(cost[good] / gain[good])) if good.any() else 1.0


def _cheapest(
    found: list[np.ndarray], found_cost: list[np.ndarray], keep_valid: int, d: int
) -> np.ndarray:
    """The ``keep_valid`` cheapest of the counterfactuals found over all layers (ties in
    the order found)."""
    if not found:
        return np.zeros((0, d))
    F, c = np.vstack(found), np.concatenate(found_cost)
    return F[np.argsort(c, kind="stable")[:keep_valid]]


def flip_search(
    x: np.ndarray,
    target: int,
    space: SearchSpace,
    metric: MixedDistance,
    predictor: Any,
    grid: FlipGrid,
    beam: int = 16,
    layers: int = 12,
    keep_valid: int = 32,
    start: np.ndarray | None = None,
    bound: float = np.inf,
    patience: int = 3,
    sparse: float = 0.0,
) -> tuple[np.ndarray, int, bool]:
    """Valid counterfactuals of ``x`` reached by flips from ``start`` (default: ``x``;
    cheapest first, at most ``keep_valid``, none costing ``bound`` or more) and the number of
    rows predicted, and whether the search was *complete* (no point ever pruned by the beam,
    no stop by ``patience`` or ``layers``: then the first row is the cheapest counterfactual
    whose changed features sit at split edges). The cost is the distance to ``x``; with
    ``sparse > 0`` it is the number of changed features plus ``sparse`` times the distance
    (the fewest changes, then the closest)."""
    P, P_cost = _start(x, start, metric, sparse)
    found: list[np.ndarray] = []
    found_cost: list[np.ndarray] = []
    best = float(bound)
    rate = None
    n_pred = 0
    stale = -1  # layers since the best improved (-1: nothing found yet)
    complete = beam_full = False
    for _ in range(layers):
        children = _children(P, P_cost, x, grid, predictor, space, metric, sparse, best)
        if children is None:
            complete = True
            break
        S, cost = children
        proba = predictor.predict_proba(S)
        n_pred += len(S)
        deficit = _deficit(proba, target)
        valid = np.argmax(proba, axis=1) == target
        valid &= cost < bound
        stale += stale >= 0
        if valid.any():
            found.append(S[valid])
            found_cost.append(cost[valid])
            if cost[valid].min() < best:
                best, stale = float(cost[valid].min()), 0
        live = ~valid & (cost < best)
        if not live.any():
            complete = True
            break
        if stale >= patience:
            break
        if rate is None:  # cost per unit of probability of the first layer's moves
            rate = _exchange_rate(predictor, P, target, cost, deficit)
        idx = np.flatnonzero(live)
        if len(idx) > beam:
            beam_full = True
            idx = idx[_keep(cost[idx], deficit[idx], beam, rate)]
        P, P_cost = S[idx], cost[idx]
    complete &= not beam_full
    return _cheapest(found, found_cost, keep_valid, len(x)), n_pred, complete


def ruin_and_recreate(
    best: np.ndarray,
    x: np.ndarray,
    target: int,
    space: SearchSpace,
    metric: MixedDistance,
    predictor: Any,
    grid: FlipGrid,
    beam: int = 16,
    layers: int = 12,
) -> tuple[np.ndarray, int, bool]:
    """Counterfactuals cheaper than the valid rows ``best``: each row with one changed feature
    reset to the query is a start of :func:`flip_search`, bounded by the row's cost."""
    x_s = metric.scaled(x)
    starts = []
    for row in np.atleast_2d(best):
        for j in np.flatnonzero(row != x):
            r = row.copy()
            r[j] = x[j]
            starts.append(r)
    if not starts:
        return np.zeros((0, len(x))), 0, True
    bound = float(metric.to(metric.scaled(np.atleast_2d(best)), x_s).max())
    return flip_search(
        x,
        target,
        space,
        metric,
        predictor,
        grid,
        beam=max(beam, len(starts)),
        layers=layers,
        start=np.vstack(starts),
        bound=bound,
    )
