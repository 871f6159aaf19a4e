"""Objectives of a whole population in a handful of array operations, and the scalar fitness.

Every term is normalised per feature: ``distance`` (MAD-scaled L1 to the query, categoricals 1 per
change), ``changes`` (share of changed features), ``implausibility`` (the same distance to the
nearest training row of the target class), ``outside`` (share of features outside the target's
class bounds). Validity is a feasibility rule: every valid individual beats every invalid one;
invalid ones rank by how far the target class is from winning the vote.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cfgen.config import GAConfig
from cfgen.search.distance import MixedDistance
from cfgen.search.space import SearchSpace

INVALID = 1e6  # fitness offset of invalid individuals


@dataclass
class Objectives:
    """Per-individual objective values (all arrays of shape (n,))."""

    valid: np.ndarray
    margin: np.ndarray
    distance: np.ndarray
    changes: np.ndarray
    implausibility: np.ndarray
    outside: np.ndarray

    def take(self, idx) -> Objectives:
        return Objectives(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))

    @staticmethod
    def concat(parts: list[Objectives]) -> Objectives:
        return Objectives(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in Objectives.__dataclass_fields__
            )
        )


class Evaluator:
    """Evaluates populations for one query and target (one batched predict per call)."""

    def __init__(
        self,
        predictor,
        target: int,
        space: SearchSpace,
        metric: MixedDistance,
        reference_s: np.ndarray,
        params: GAConfig,
    ) -> None:
        self.predictor = predictor
        self.target = target
        self.space = space
        self.metric = metric
        self.x = space.x
        self.x_s = metric.scaled(space.x)
        self.ref_s = reference_s
        self.params = params
        self.inv_d = 1.0 / len(space.x)
        self.n_evals = 0
        self.always_implausibility = False  # set for the final choice

    def valid(self, pop: np.ndarray) -> np.ndarray:
        """Does the model put each row in the target class (argmax, as ``predict``)."""
        self.n_evals += len(pop)
        return np.argmax(self.predictor.predict_proba(pop), axis=1) == self.target

    def __call__(self, pop: np.ndarray, pop_s: np.ndarray | None = None) -> Objectives:
        self.n_evals += len(pop)
        proba = self.predictor.predict_proba(pop)
        valid = np.argmax(proba, axis=1) == self.target
        p_t = proba[:, self.target].copy()
        proba[:, self.target] = -np.inf
        margin = p_t - proba.max(axis=1)
        if pop_s is None:
            pop_s = self.metric.scaled(pop)
        dist = self.metric.to(pop_s, self.x_s) * self.inv_d
        changes = np.count_nonzero(pop != self.x, axis=1) * self.inv_d
        if len(self.ref_s) and (self.params.w_plausibility > 0 or self.always_implausibility):
            impl = self.metric.nearest(pop_s, self.ref_s) * self.inv_d
        else:
            impl = np.zeros(len(pop))
        outside = self.space.outside_target(pop)
        return Objectives(valid, margin, dist, changes, impl, outside)

    def quality(self, o: Objectives) -> np.ndarray:
        """Weighted sum of the minimised terms (no validity, no diversity)."""
        p = self.params
        return (
            p.w_distance * o.distance
            + p.w_sparsity * o.changes
            + p.w_plausibility * o.implausibility
            + p.w_bounds * o.outside
        )

    def fitness(self, o: Objectives, pop_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(fitness, quality)``: fitness is minimised, valid < invalid, diversity rewarded.

        A valid individual's fitness is its quality minus ``w_diversity`` times its distance to
        the nearest other valid individual (capped at the mean distance of the valid ones to
        the query), so copies of one point do not crowd the population.
        """
        q = self.quality(o)
        fit = np.where(o.valid, q, INVALID + (1.0 - o.margin) + 1e-3 * q)
        w = self.params.w_diversity
        nv = int(o.valid.sum())
        if w > 0 and nv >= 2:
            idx = np.flatnonzero(o.valid)
            V = pop_s[idx]
            D = self.metric.pairwise(V, V) * self.inv_d
            np.fill_diagonal(D, np.inf)
            cap = float(o.distance[idx].mean())
            fit[idx] -= w * np.minimum(D.min(axis=1), cap)
        return fit, q
