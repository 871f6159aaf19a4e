"""The one interface every counterfactual method implements, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np


@dataclass
class Explanation:
    """Result of one search for counterfactuals of one query.

    ``counterfactuals`` is (m, d) in the model's encoded feature space (categoricals as codes),
    m <= k, each re-checked with the estimator's own ``predict`` to be in the target class.
    ``reason`` says why m < k (``None`` when m == k). ``roles`` names why each row was chosen
    (``closest``, ``sparsest``, ``plausible``, ``diverse``; empty when the method does not say).
    ``timed_out``: the method hit its per-query time limit; such a task counts as a failure
    everywhere (console, ``metrics.csv``, ``summary.json``, report), whatever it returned.
    ``extra`` holds method-specific diagnostics; it must stay JSON-serialisable (numbers,
    strings, booleans, lists, dicts) so the journal can store it without pickle.
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
    timed_out: bool = False
    roles: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_found(self) -> int:
        return int(len(self.counterfactuals))

    @classmethod
    def empty(
        cls, d: int, target: int, k: int, seconds: float, reason: str, **kwargs: Any
    ) -> Explanation:
        """No counterfactual (``reason`` says why)."""
        return cls(
            np.empty((0, d)),
            target,
            k,
            seconds,
            reason=reason,
            best_per_generation=np.empty((0, d)),
            **kwargs,
        )


@runtime_checkable
class Explainer(Protocol):
    """A counterfactual method: the DEAP search, a DiCE variant, NICE, the exact MILP, ...

    Methods are plug-ins built from ``cfgen/conf/method/<name>.yaml`` (``_target_`` +
    ``_partial_: true`` + the method's own settings) as
    ``instantiate(cfg.method)(problem, schema, class_bounds)``; ``needs_bounds`` says whether the
    run must mine class bounds for it.
    """

    needs_bounds: ClassVar[bool]

    def explain(self, x: np.ndarray, target: int, k: int, rng: np.random.Generator) -> Explanation:
        """Counterfactuals of ``x`` (shape (d,)) in class ``target``; at most ``k``."""
        ...
