"""A quick valid counterfactual to start the MILP from (an upper bound on the optimum).

Training rows the model puts in the target class are projected into the query's domains, and
the nearest valid ones are made closer one feature at a time: each changed feature moves to the
representative nearest the query (the query itself first) that keeps the prediction. Its
distance bounds the optimum, which lets the method drop every value farther from the query than
that before building the MILP, and HiGHS gets the row as its first incumbent.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cfgen.exact.cells import CategoricalCells, NumericCells
from cfgen.exact.grid import Domain
from cfgen.exact.milp import Cells
from cfgen.search.distance import MixedDistance


def _project(X: np.ndarray, doms: list[Domain]) -> np.ndarray:
    """Rows clipped into each feature's domain (categoricals outside it: the query's code)."""
    X = X.copy()
    for j, dom in enumerate(doms):
        col = X[:, j]
        if dom.categorical:
            X[:, j] = np.where(np.isin(col, dom.codes), col, dom.x)
        elif dom.klo > dom.khi:
            X[:, j] = dom.x
        else:
            lo, hi = dom.low_high()
            snapped = np.clip(np.rint(col * dom.factor), dom.klo, dom.khi) / dom.factor
            X[:, j] = np.where(
                (col >= lo) & (col <= hi) & ((col == snapped) | (col == dom.x)), col, snapped
            )
    return X


def _options(cell: Cells, v: float, x: float) -> np.ndarray:
    """Values of feature's cells strictly closer to the query than ``v``, nearest first."""
    if isinstance(cell, CategoricalCells):
        return np.array([x]) if v != x else np.zeros(0)
    if not isinstance(cell, NumericCells):
        return np.array([x]) if v != x else np.zeros(0)
    reps = cell.reps
    far = abs(v - x)
    near = reps[np.abs(reps - x) < far]
    return near[np.argsort(np.abs(near - x), kind="stable")]


def shrink(
    row: np.ndarray,
    x: np.ndarray,
    cells: list[Cells],
    valid: Callable,
    metric: MixedDistance,
    passes: int = 3,
) -> np.ndarray:
    """Greedy: per changed feature (costliest first) the nearest option that stays valid."""
    row = row.copy()
    sx = metric.scaled(x)
    for _ in range(passes):
        moved = False
        cost = metric.per_feature(metric.scaled(row)[None, :], sx[None, :])[0]
        for j in np.argsort(-cost, kind="stable"):
            if row[j] == x[j]:
                continue
            opts = _options(cells[j], row[j], x[j])
            if not len(opts):
                continue
            trial = np.repeat(row[None, :], len(opts), axis=0)
            trial[:, j] = opts
            ok = np.flatnonzero(valid(trial))
            if len(ok):
                row[j] = opts[ok[0]]
                moved = True
        if not moved:
            break
    return row


def start_row(
    X_train: np.ndarray,
    x: np.ndarray,
    doms: list[Domain],
    cells: list[Cells],
    valid: Callable,
    metric: MixedDistance,
    n_seeds: int = 8,
) -> np.ndarray | None:
    """The closest of ``n_seeds`` shrunk projected training rows that are valid, or ``None``."""
    P = _project(np.asarray(X_train, dtype=float), doms)
    P = P[valid(P)]
    if not len(P):
        return None
    sx = metric.scaled(x)[None, :]
    dist = metric.to(metric.scaled(P), sx)
    seeds = P[np.argsort(dist, kind="stable")[:n_seeds]]
    rows = np.array([shrink(r, x, cells, valid, metric) for r in seeds])
    best = int(np.argmin(metric.to(metric.scaled(rows), sx)))
    return rows[best]
