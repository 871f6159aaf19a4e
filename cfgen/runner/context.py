"""The worker context: what every worker needs once (problem, class bounds, method, plan).

It travels to each worker pickled once (the pool initializer, or a file for a Slurm array),
never with a task. A task is a small :class:`~cfgen.plan.Task`; the explainer for its
actionability combination is built from the context on first use and kept for the next tasks.
"""

from __future__ import annotations

import collections
import pickle
from dataclasses import dataclass, field
from typing import Any, Callable

from cfgen.plan import Combinations

EXPLAINER_CACHE = 4  # explainers (one per actionability combination) kept per worker

#: ``factory(problem, schema, class_bounds) -> Explainer``; picklable (a top-level function or
#: a ``functools.partial``, e.g. ``hydra.utils.instantiate(cfg.method)``)
Factory = Callable[[Any, Any, Any], Any]


@dataclass
class WorkerContext:
    """Heavy objects every worker needs once.

    ``problem`` holds the data and the fitted model (:class:`cfgen.problem.Problem`; the runner
    reads ``schema`` and ``X_test``); ``factory(problem, schema, class_bounds)`` builds the
    explainer of one actionability combination (``cfgen.methods.method_factory(cfg.method)``,
    or a test's own), ``schema`` being the problem's schema with that combination's rules.
    """

    problem: Any
    factory: Factory
    class_bounds: Any
    combinations: Combinations
    k: int
    _explainers: collections.OrderedDict = field(
        default_factory=collections.OrderedDict, repr=False, compare=False
    )

    @property
    def n_features(self) -> int:
        return len(self.problem.schema)

    def explainer(self, combination: int) -> Any:
        """The explainer for one actionability combination (kept for the next tasks)."""
        ex = self._explainers.get(combination)
        if ex is not None:
            self._explainers.move_to_end(combination)
            return ex
        schema = self.problem.schema.with_rules(self.combinations[combination])
        ex = self.factory(self.problem, schema, self.class_bounds)
        self._explainers[combination] = ex
        while len(self._explainers) > EXPLAINER_CACHE:
            self._explainers.popitem(last=False)
        return ex

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_explainers"] = collections.OrderedDict()  # never ship built explainers
        return state

    def dumps(self) -> bytes:
        """The context pickled once, for every worker."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
