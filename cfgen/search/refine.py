"""The final pass over candidate counterfactuals, batched over all candidates at once.

* :func:`reset` — put changed features back to the query's value while the prediction survives
  (per candidate the largest set of individually safe resets that holds together).
* :func:`shrink` — move each changed non-categorical feature to the nearest-to-query edge of the
  forest's split segments that keeps the prediction (exact: between two thresholds nothing
  changes; see :mod:`cfgen.search.thresholds`); for models without thresholds, scale the whole
  change towards the query on a grid of steps.
* :func:`towards_anchors` — the plausibility side: step each candidate feature by feature towards
  its nearest anchor (a valid real row of the target class), largest gaps first, keeping the
  valid steps. These trade distance to the query for closeness to real data.
* :func:`thin_anchors` — anchors with their *smallest* changes reset to the query: few changes,
  still close to a real row.

Every function returns rows that are valid (the predictor puts them in the target class),
snapped and inside the feasible box.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from cfgen.search.distance import MixedDistance
from cfgen.search.space import SearchSpace
from cfgen.search.thresholds import SplitEdges

ValidFn = Callable[[np.ndarray], np.ndarray]


def _apply_best(
    C: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
    gain: np.ndarray,
    ok: np.ndarray,
    valid_fn: ValidFn,
) -> tuple[np.ndarray, bool]:
    """Apply as many accepted single moves per candidate as hold together.

    ``ok`` marks moves that keep a candidate valid on their own. Per candidate the moves are
    ranked by ``gain``; the trials apply the best ``ceil(n / 2**l)`` of them (``l = 0, 1, ...``,
    all in one batch) and the largest set that is still valid wins (the single best move always
    is). Returns the new candidates and whether anything moved.
    """
    if not ok.any():
        return C, False
    rows, cols, vals, gain = rows[ok], cols[ok], vals[ok], gain[ok]
    order = np.lexsort((-gain, cols, rows))
    rows, cols, vals, gain = rows[order], cols[order], vals[order], gain[order]
    first = np.ones(len(rows), dtype=bool)  # one move per (row, col): the best
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    rows, cols, vals, gain = rows[first], cols[first], vals[first], gain[first]
    order = np.lexsort((-gain, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    touched, start, counts = np.unique(rows, return_index=True, return_counts=True)
    pos = np.repeat(np.arange(len(touched)), counts)  # index into touched
    rank = np.arange(len(rows)) - start[pos]
    levels = int(np.ceil(np.log2(counts.max()))) + 1 if counts.max() > 1 else 1
    base = C[touched]
    trials = []
    for level in range(levels):
        size = -(-counts // (1 << level))  # ceil(counts / 2**level)
        T = base.copy()
        m = rank < size[pos]
        T[pos[m], cols[m]] = vals[m]
        trials.append(T)
    ok_levels = valid_fn(np.vstack(trials)).reshape(levels, len(touched))
    ok_levels[-1] = True  # the single best move was tested on its own
    pick = np.argmax(ok_levels, axis=0)  # first (largest) valid level
    out = C.copy()
    out[touched] = np.stack(trials)[pick, np.arange(len(touched))]
    return out, True


def reset(
    C: np.ndarray, space: SearchSpace, metric: MixedDistance, valid_fn: ValidFn, max_rounds: int = 8
) -> np.ndarray:
    """Reset changed features to the query's value while every row stays valid."""
    x = space.x
    C = C.copy()
    for _ in range(max_rounds):
        changed = (C != x) & space.movable
        rows, cols = np.nonzero(changed)
        if rows.size == 0:
            break
        trial = C[rows]
        trial[np.arange(rows.size), cols] = x[cols]
        ok = valid_fn(trial)
        gain = np.abs(C[rows, cols] - x[cols]) * metric.inv[cols]
        gain = np.minimum(gain, metric.cap[cols]) + 1.0  # a reset also removes a change
        C, moved = _apply_best(C, rows, cols, x[cols], gain, ok, valid_fn)
        if not moved:
            break
    return C


def shrink(
    C: np.ndarray,
    space: SearchSpace,
    metric: MixedDistance,
    valid_fn: ValidFn,
    edges: SplitEdges | None,
    n_near: int = 6,
    rounds: int = 1,
) -> np.ndarray:
    """Move changed non-categorical features as close to the query as the prediction allows."""
    x = space.x
    C = C.copy()
    if edges is None:
        return _shrink_grid(C, space, valid_fn)
    num = ~space.categorical & space.movable
    for _ in range(rounds):
        rows, cols = np.nonzero((C != x) & num)
        if rows.size == 0:
            break
        pair, vals = edges.candidates(cols, x[cols], C[rows, cols], n_near)
        if pair.size == 0:
            break
        rows, cols = rows[pair], cols[pair]
        vals = np.clip(vals, space.lo[cols], space.hi[cols])
        trial = C[rows]
        trial[np.arange(rows.size), cols] = vals
        ok = valid_fn(trial)
        gain = (np.abs(C[rows, cols] - x[cols]) - np.abs(vals - x[cols])) * metric.inv[cols]
        ok &= gain > 0
        C, moved = _apply_best(C, rows, cols, vals, gain, ok, valid_fn)
        if not moved:
            break
    return C


def _shrink_grid(C: np.ndarray, space: SearchSpace, valid_fn: ValidFn) -> np.ndarray:
    """Fallback for models without split thresholds: the whole change scaled towards x."""
    x = space.x
    alphas = np.linspace(0.1, 0.9, 9)
    num = ~space.categorical
    delta = (C - x) * num
    trial = x + alphas[None, :, None] * delta[:, None, :]
    trial = np.where(num, trial, C[:, None, :]).reshape(-1, space.d)
    trial = space.repair(trial)
    ok = valid_fn(trial).reshape(len(C), len(alphas))
    trial = trial.reshape(len(C), len(alphas), space.d)
    out = C.copy()
    has = ok.any(axis=1)
    first = np.argmax(ok, axis=1)
    out[has] = trial[np.flatnonzero(has), first[has]]
    return out


def towards_anchors(
    C: np.ndarray,
    anchors: np.ndarray,
    space: SearchSpace,
    metric: MixedDistance,
    valid_fn: ValidFn,
    steps: int,
) -> np.ndarray:
    """Valid rows on the way from each candidate to its nearest anchor, feature by feature."""
    if steps <= 0 or len(anchors) == 0 or len(C) == 0:
        return np.zeros((0, space.d))
    C_s, A_s = metric.scaled(C), metric.scaled(anchors)
    nearest = np.argmin(metric.pairwise(C_s, A_s), axis=1)
    A = anchors[nearest]
    gap = metric.per_feature(C_s, A_s[nearest])
    gap[:, ~space.movable] = 0.0
    order = np.argsort(-gap, axis=1, kind="stable")[:, :steps]
    n_gap = np.count_nonzero(gap > 0, axis=1)
    rows = np.arange(len(C))
    out = []
    P = C.copy()
    for s in range(order.shape[1]):
        j = order[:, s]
        live = s < n_gap - 1  # the last step would be the anchor itself
        if not live.any():
            break
        P = P.copy()
        P[rows[live], j[live]] = A[rows[live], j[live]]
        out.append(P[live])
    if not out:
        return np.zeros((0, space.d))
    T = np.vstack(out)
    return T[valid_fn(T)]


def thin_anchors(
    A: np.ndarray,
    space: SearchSpace,
    metric: MixedDistance,
    valid_fn: ValidFn,
    fractions=(0.2, 0.4, 0.6, 0.8, 0.9, 1.0),
) -> np.ndarray:
    """Valid sparser versions of anchors: reset the changes with the *smallest* gaps first.

    For an anchor that changes ``m`` features, the trials reset its ``round(f * m)`` smallest
    changes (scaled) to the query's values, for each ``f`` in ``fractions``. The large moves that
    make it a real row of the target class stay, so each valid trial changes fewer features and
    stays close to real data (its implausibility is at most the sum of the reset gaps).
    """
    if len(A) == 0:
        return np.zeros((0, space.d))
    x = space.x
    gap = metric.per_feature(metric.scaled(A), metric.scaled(x))
    gap[~((A != x) & space.movable)] = np.inf
    n_changed = np.count_nonzero(np.isfinite(gap), axis=1)
    order = np.argsort(gap, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(space.d)[None, :].repeat(len(A), 0), axis=1)
    trials = []
    for f in fractions:
        m = np.minimum(np.round(f * n_changed).astype(int), n_changed - 1)
        use = m > 0
        if not use.any():
            continue
        T = A[use].copy()
        reset_mask = rank[use] < m[use, None]
        T[reset_mask] = np.broadcast_to(x, T.shape)[reset_mask]
        trials.append(T)
    if not trials:
        return np.zeros((0, space.d))
    T = np.vstack(trials)
    return T[valid_fn(T)]
