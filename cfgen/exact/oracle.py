"""The exact optimum as a test oracle: no counterfactual method may be closer than it.

:func:`assert_no_method_closer` checks another method's rows against the exact distance;
:func:`brute_force_closest` enumerates, for small forests, every combination of the values
that can be nearest the query in some cell (:func:`cfgen.exact.grid.edge_candidates`) — an
independent check of the MILP.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from cfgen.exact.forest import ensemble_of
from cfgen.exact.grid import Domain, domains, edge_candidates
from cfgen.schema import FeatureSchema, actionability_violations
from cfgen.search.distance import MixedDistance, feature_scale


def _metric(problem, schema: FeatureSchema) -> MixedDistance:
    return MixedDistance(
        feature_scale(np.asarray(problem.X_train, dtype=float), schema), schema.categorical
    )


def _in_domain(dom: Domain, v: float) -> bool:
    if v == dom.x:
        return True
    if dom.categorical:
        return bool(np.isin(v, dom.codes))
    k = np.round(v * dom.factor)
    return bool(k / dom.factor == v and dom.klo <= k <= dom.khi)


def assert_no_method_closer(
    problem,
    method_rows: np.ndarray,
    exact_distance: float,
    *,
    x: np.ndarray,
    target: int,
    schema: FeatureSchema | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-9,
) -> dict[str, Any]:
    """Assert that no row of ``method_rows`` that is a feasible counterfactual of ``x`` in class
    ``target`` (valid under the model's ``predict``, within the actionability rules and on the
    exact method's value domain) is closer than ``exact_distance`` (``rtol`` covers the MIP gap).

    ``schema`` defaults to ``problem.schema`` (pass the one with the task's rules). Returns the
    counts of rows ``compared``, ``invalid`` and ``off_domain`` and the method's ``distances``.
    """
    schema = schema or problem.schema
    rows = np.atleast_2d(np.asarray(method_rows, dtype=float))
    x = np.asarray(x, dtype=float)
    out: dict[str, Any] = {"compared": 0, "invalid": 0, "off_domain": 0, "distances": []}
    if rows.size == 0:
        return out
    metric = _metric(problem, schema)
    dist = metric.to(metric.scaled(rows), metric.scaled(x)[None, :])
    valid = np.asarray(problem.estimator.predict(rows)) == target
    valid &= actionability_violations(x, rows, schema.rules) == 0
    doms = domains(schema, x)
    limit = exact_distance * (1 - rtol) - atol
    for row, dv, ok in zip(rows, dist, valid, strict=True):
        if not ok:
            out["invalid"] += 1
            continue
        if not all(_in_domain(dom, float(v)) for dom, v in zip(doms, row, strict=True)):
            out["off_domain"] += 1
            continue
        out["compared"] += 1
        out["distances"].append(float(dv))
        assert dv >= limit, (
            f"a method's counterfactual is closer ({dv:.12g}) than the exact optimum "
            f"({exact_distance:.12g}): {row.tolist()} for x={x.tolist()}, target={target}"
        )
    return out


def brute_force_closest(
    problem,
    x: np.ndarray,
    target: int,
    schema: FeatureSchema | None = None,
    max_rows: int = 2_000_000,
) -> tuple[float, np.ndarray | None]:
    """Closest valid counterfactual by enumeration of every combination of edge candidates
    (``inf, None`` when there is none). Raises ``ValueError`` past ``max_rows`` combinations."""
    schema = schema or problem.schema
    x = np.asarray(x, dtype=float)
    ens = ensemble_of(problem)
    cands = [
        edge_candidates(dom, ens.thresholds(j), ens.cast)
        for j, dom in enumerate(domains(schema, x))
    ]
    total = int(np.prod([len(c) for c in cands], dtype=float))
    if total > max_rows:
        raise ValueError(f"{total} combinations exceed max_rows={max_rows}")
    metric = _metric(problem, schema)
    best, best_row = np.inf, None
    sx = metric.scaled(x)[None, :]
    chunk = 200_000
    it = itertools.product(*cands)
    while True:
        block = np.array(list(itertools.islice(it, chunk)), dtype=float)
        if block.size == 0:
            return best, best_row
        ok = np.asarray(problem.estimator.predict(block)) == target
        if ok.any():
            dist = metric.to(metric.scaled(block[ok]), sx)
            i = int(np.argmin(dist))
            if dist[i] < best:
                best, best_row = float(dist[i]), block[ok][i]
