"""Any ``deap.tools`` operator on the population array, one individual at a time.

cfgen's vectorised operators (:mod:`cfgen.search.operators`) work on the whole ``(n, d)``
population at once. A ``deap.tools`` crossover, mutation or selection named in the method's
config (``method.ga.operators.mate=cxBlend``, ``mate_args={alpha: 0.5}``) is wrapped here: rows
become ``creator.CfGenes`` lists **in MAD units** (``x / scale``, so Gaussian sigmas and blend
factors mean the same on every feature), the operator runs as DEAP runs it (drawing from
Python's ``random``, seeded per task), and the results go back through the search space's repair
(box, actionability rules, the data's grid, category codes). Slower than the vectorised path —
a Python call per pair or individual — but any DEAP operator works unchanged.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from deap import creator, tools

from cfgen.errors import ConfigError
from cfgen.search import algorithm  # noqa: F401 - creates creator.CfGenes / CfScalarFitness
from cfgen.search.space import SearchSpace

KINDS = {"mate": "cx", "mutate": "mut", "select": "sel"}
PopOp = Callable[[np.ndarray], np.ndarray]
SelectOp = Callable[[np.ndarray, int], np.ndarray]


def deap_operator(kind: str, name: str, prefix: str) -> Callable[..., Any]:
    """The ``deap.tools`` function ``name`` for step ``kind`` (one line if there is none)."""
    stem = KINDS[kind]
    fn = getattr(tools, name, None)
    if fn is None or not name.startswith(stem) or not callable(fn):
        options = sorted(
            n for n in dir(tools) if n.startswith(stem) and callable(getattr(tools, n))
        )
        raise ConfigError(
            f"{prefix}={name!r} is not allowed: expected vectorised or a deap.tools "
            f"{kind} operator: {', '.join(options)}"
        )
    return fn


class PerIndividual:
    """Crossover, mutation and selection by ``deap.tools`` functions on individual rows."""

    def __init__(
        self,
        space: SearchSpace,
        scale: np.ndarray,
        cxpb: float,
        mutpb: float,
        rng: np.random.Generator,
    ) -> None:
        self.space = space
        self.scale = scale
        self.cxpb = cxpb
        self.mutpb = mutpb
        self.rng = rng

    def _genes(self, row: np.ndarray) -> Any:
        return creator.CfGenes((row / self.scale).tolist())

    def _back(self, rows: list[Any]) -> np.ndarray:
        return self.space.repair(np.asarray(rows, dtype=float) * self.scale)

    def mate(self, fn: Callable[..., Any], args: Mapping[str, Any]) -> PopOp:
        def mate(pop: np.ndarray) -> np.ndarray:
            inds = [self._genes(r) for r in pop]
            for i in range(1, len(inds), 2):
                if random.random() < self.cxpb:
                    inds[i - 1], inds[i] = fn(inds[i - 1], inds[i], **args)
            return self._back(inds)

        return mate

    def mutate(self, fn: Callable[..., Any], args: Mapping[str, Any]) -> PopOp:
        def mutate(pop: np.ndarray) -> np.ndarray:
            inds = [self._genes(r) for r in pop]
            for i, ind in enumerate(inds):
                if random.random() < self.mutpb:
                    (inds[i],) = fn(ind, **args)
            return self._back(inds)

        return mutate

    @staticmethod
    def select(fn: Callable[..., Any], args: Mapping[str, Any]) -> SelectOp:
        def select(fitness: np.ndarray, n: int) -> np.ndarray:
            inds = []
            for i, f in enumerate(fitness):
                ind = creator.CfGenes([i])
                ind.fitness.values = (float(f),)
                inds.append(ind)
            return np.array([ind[0] for ind in fn(inds, n, **args)], dtype=np.intp)

        return select
