"""Where a counterfactual of one query may live: feasible ranges, snapping and repair."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cfgen.constraints import ClassBounds
from cfgen.schema import FeatureSchema, Rule


@dataclass
class SearchSpace:
    """Per-feature feasible box for one query and target, after actionability rules.

    ``lo``/``hi`` bound every gene (rules included: ``no_change`` pins the gene to x,
    ``non_increasing`` caps it at x, ``non_decreasing`` floors it at x). ``t_lo``/``t_hi`` are the
    target class's bounds clipped into that box (equal to ``lo``/``hi`` where the class is open).
    """

    x: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    t_lo: np.ndarray
    t_hi: np.ndarray
    movable: np.ndarray
    categorical: np.ndarray
    integer: np.ndarray
    n_categories: np.ndarray
    allowed: list[np.ndarray | None]
    outside_bounds_ok: bool

    @classmethod
    def build(
        cls, x: np.ndarray, target: int, schema: FeatureSchema, bounds: ClassBounds | None
    ) -> "SearchSpace":
        x = np.asarray(x, dtype=float)
        lo = np.minimum(schema.lows, x)
        hi = np.maximum(schema.highs, x)
        rules = schema.rules
        for j, rule in enumerate(rules):
            if rule is Rule.NO_CHANGE:
                lo[j] = hi[j] = x[j]
            elif rule is Rule.NON_INCREASING:
                hi[j] = x[j]
            elif rule is Rule.NON_DECREASING:
                lo[j] = x[j]
        categorical = schema.categorical
        integer = schema.integer | categorical
        n_cat = np.array([max(len(f.categories), 1) for f in schema.features], dtype=float)
        if bounds is not None:
            # ``low < v <= high``: for snapped genes the open lower end is excluded via +1 on ints
            t_lo = np.clip(bounds.low[target], lo, hi)
            t_hi = np.clip(bounds.high[target], lo, hi)
            empty = t_lo > t_hi
            t_lo[empty], t_hi[empty] = lo[empty], hi[empty]
            allowed = list(bounds.allowed[target]) if bounds.allowed else [None] * len(x)
        else:
            t_lo, t_hi = lo.copy(), hi.copy()
            allowed = [None] * len(x)
        # A categorical gene whose rule pins or orders it keeps only codes the rule permits.
        allowed = [
            None if a is None else a[(a >= lo[j]) & (a <= hi[j])] for j, a in enumerate(allowed)
        ]
        allowed = [None if a is not None and a.size == 0 else a for a in allowed]
        movable = hi > lo
        return cls(x, lo, hi, t_lo, t_hi, movable, categorical, integer, n_cat, allowed,
                   bounds is None)

    def repair(self, pop: np.ndarray) -> np.ndarray:
        """Snap integers and categories, clip into the feasible box, pin unmovable genes."""
        np.clip(pop, self.lo, self.hi, out=pop)
        if self.integer.any():
            pop[:, self.integer] = np.round(pop[:, self.integer])
            # rounding may leave the box only when lo/hi are fractional: clip back inwards
            ints = self.integer
            pop[:, ints] = np.clip(pop[:, ints], np.ceil(self.lo[ints] - 1e-9),
                                   np.floor(self.hi[ints] + 1e-9))
            pop[:, ints] = np.where(self.movable[ints], pop[:, ints], self.x[ints])
        pop[:, ~self.movable] = self.x[~self.movable]
        return pop

    def outside_target(self, pop: np.ndarray) -> np.ndarray:
        """Share of genes outside the target class's interval (or allowed category set)."""
        out = (pop < self.t_lo) | (pop > self.t_hi)
        for j, a in enumerate(self.allowed):
            if a is not None:
                out[:, j] = ~np.isin(pop[:, j], a)
        return out.mean(axis=1)

    def sample_target(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` rows drawn uniformly inside the target interval (categories from allowed sets)."""
        vals = rng.uniform(self.t_lo, self.t_hi, size=(n, len(self.x)))
        for j in np.flatnonzero(self.categorical & self.movable):
            a = self.allowed[j]
            if a is None:
                a = np.arange(int(self.lo[j]), int(self.hi[j]) + 1)
            vals[:, j] = rng.choice(a, size=n)
        return vals
