"""The one interface every counterfactual method implements, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class Explanation:
    """Result of one search for counterfactuals of one query.

    ``counterfactuals`` is (m, d) in the model's encoded feature space (categoricals as codes),
    m <= k, each re-checked with the estimator's own ``predict`` to be in the target class.
    ``reason`` says why m < k (``None`` when m == k).
    """

    counterfactuals: np.ndarray
    target: int
    k: int
    seconds: float
    reason: str | None = None
    best_fitness: np.ndarray = field(default_factory=lambda: np.empty(0))
    mean_fitness: np.ndarray = field(default_factory=lambda: np.empty(0))
    best_per_generation: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    generations: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def n_found(self) -> int:
        return int(len(self.counterfactuals))


@runtime_checkable
class Explainer(Protocol):
    """A counterfactual method: DEAP search, a DiCE variant, ..."""

    def explain(self, x: np.ndarray, target: int, k: int, rng: np.random.Generator) -> Explanation:
        """Counterfactuals of ``x`` (shape (d,)) in class ``target``; at most ``k``."""
        ...
