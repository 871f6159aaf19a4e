"""Choosing the returned set: NSGA-II ranking over (distance, changes, implausibility), then a
greedy max-min pick for quality and diversity together.

:func:`nsga2_select` is DEAP's ``tools.selNSGA2`` (non-dominated fronts, then crowding distance
on the last front) computed on an objective array with a dominance matrix instead of Python
loops over individuals; :func:`deap_nsga2_select` runs DEAP's own on ``creator`` individuals (the
reference the tests compare against).
"""

from __future__ import annotations

import numpy as np
from deap import base, creator, tools

if not hasattr(creator, "CfFitness"):
    # minimised objectives of a counterfactual: distance, changes, implausibility
    creator.create("CfFitness", base.Fitness, weights=(-1.0, -1.0, -1.0))
if not hasattr(creator, "CfIndividual"):
    creator.create("CfIndividual", np.ndarray, fitness=creator.CfFitness)


def nondominated_fronts(F: np.ndarray, enough: int | None = None) -> np.ndarray:
    """Front number (0 = Pareto front) of each row of the minimised objectives ``F`` (n, m).

    With ``enough``, peeling stops once the fronts found hold that many rows; the rest get -1.
    """
    n = len(F)
    # one (n, n) comparison per objective: reductions over a short last axis are slow
    le = np.ones((n, n), dtype=bool)
    lt = np.zeros((n, n), dtype=bool)
    for k in range(F.shape[1]):
        col = F[:, k]
        le &= col[:, None] <= col[None, :]
        lt |= col[:, None] < col[None, :]
    dom = le & lt  # dom[i, j]: i dominates j
    n_dom = dom.sum(axis=0)  # how many rows dominate each row
    front = np.full(n, -1)
    current = np.flatnonzero(n_dom == 0)
    level, count = 0, 0
    while current.size:
        front[current] = level
        count += current.size
        if enough is not None and count >= enough:
            break
        n_dom = n_dom - dom[current].sum(axis=0)
        n_dom[front >= 0] = -1
        current = np.flatnonzero(n_dom == 0)
        level += 1
    return front


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """DEAP's crowding distance of one front (boundary points get ``inf``)."""
    n, m = F.shape
    dist = np.zeros(n)
    if n == 0:
        return dist
    for k in range(m):
        order = np.argsort(F[:, k], kind="stable")
        col = F[order, k]
        dist[order[0]] = dist[order[-1]] = np.inf
        norm = m * (col[-1] - col[0])
        if norm == 0 or n < 3:
            continue
        dist[order[1:-1]] += (col[2:] - col[:-2]) / norm
    return dist


def nsga2_select(F: np.ndarray, k: int) -> np.ndarray:
    """Indices of ``k`` rows chosen as ``tools.selNSGA2`` would: whole fronts, then the most
    crowding-distant rows of the first front that does not fit."""
    n = len(F)
    if k >= n:
        return np.arange(n)
    front = nondominated_fronts(F, enough=k)
    chosen: list[np.ndarray] = []
    count = 0
    for level in range(front.max() + 1):
        idx = np.flatnonzero(front == level)
        if count + len(idx) <= k:
            chosen.append(idx)
            count += len(idx)
            if count == k:
                break
            continue
        cd = crowding_distance(F[idx])
        order = np.argsort(-cd, kind="stable")
        chosen.append(idx[order[: k - count]])
        break
    return np.concatenate(chosen)


def deap_nsga2_select(F: np.ndarray, k: int) -> np.ndarray:
    """The same choice with DEAP's own ``tools.selNSGA2`` on ``creator.CfIndividual``s."""
    inds = []
    for i, values in enumerate(F):
        ind = creator.CfIndividual(np.array([i]))
        ind.fitness.values = tuple(float(v) for v in values)
        inds.append(ind)
    return np.array([int(ind[0]) for ind in tools.selNSGA2(inds, k)], dtype=int)


def greedy_diverse(X_s: np.ndarray, score: np.ndarray, k: int, weight: float, metric,
                   inv_d: float) -> np.ndarray:
    """Greedy max-min: the best row first, then repeatedly the row minimising
    ``score - weight * (distance to the nearest chosen row)``; exact copies are never chosen."""
    n = len(score)
    if n == 0 or k <= 0:
        return np.zeros(0, dtype=int)
    D = metric.pairwise(X_s, X_s) * inv_d
    chosen = [int(np.argmin(score))]
    mind = D[chosen[0]].copy()
    for _ in range(min(k, n) - 1):
        gain = score - weight * mind
        gain[mind <= 0] = np.inf  # chosen rows and their copies
        nxt = int(np.argmin(gain))
        if not gain[nxt] < np.inf:
            break
        chosen.append(nxt)
        np.minimum(mind, D[nxt], out=mind)
    return np.array(chosen, dtype=int)


#: what comes first for each ``method.select`` (then the other representatives, then diverse)
ORDERS: dict[str, tuple[str, ...]] = {
    "closest": ("closest", "sparsest", "plausible"),
    "sparsest": ("sparsest", "closest", "plausible"),
    "plausible": ("plausible", "closest", "sparsest"),
    "balanced": ("balanced", "closest", "sparsest", "plausible"),
}


def representatives(distance: np.ndarray, changes: np.ndarray, implausibility: np.ndarray,
                    balanced: np.ndarray, select: str) -> list[tuple[int, str]]:
    """``(row, role)`` of the front's extremes in ``ORDERS[select]`` order, each row once.

    ``closest`` is the smallest distance (ties: fewer changes, then more plausible),
    ``sparsest`` the fewest changes (ties: closer), ``plausible`` the smallest implausibility
    (ties: closer, sparser), ``balanced`` the smallest weighted compromise ``balanced``. A row
    that is the extreme of several objectives keeps the first role.
    """
    keys = {
        "closest": (implausibility, changes, distance),
        "sparsest": (implausibility, distance, changes),
        "plausible": (changes, distance, implausibility),
        "balanced": (changes, distance, balanced),
    }
    out: list[tuple[int, str]] = []
    taken: set[int] = set()
    for role in ORDERS[select]:
        i = int(np.lexsort(keys[role])[0])
        if i not in taken:
            taken.add(i)
            out.append((i, role))
    return out


def max_min_diverse(D: np.ndarray, chosen: list[int], k: int,
                    tie: np.ndarray) -> list[int]:
    """Greedy max-min: add the row farthest (``D``, pairwise) from its nearest chosen row until
    ``k`` are chosen (ties: smallest ``tie``); rows at distance 0 (copies) are never added."""
    chosen = list(chosen)
    n = len(D)
    if not chosen or n == 0:
        return chosen
    mind = D[chosen].min(axis=0)
    order = np.lexsort((np.arange(n), tie))  # tie-break order
    while len(chosen) < min(k, n):
        gain = mind[order]
        best = int(np.argmax(gain))
        if not gain[best] > 0:
            break
        nxt = int(order[best])
        chosen.append(nxt)
        np.minimum(mind, D[nxt], out=mind)
    return chosen
