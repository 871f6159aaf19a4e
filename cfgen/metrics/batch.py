"""Many queries and their counterfactual sets, stacked, with the model's answers on all of them.

A :class:`Batch` is what a suite evaluates: one array of every counterfactual of every task
(task after task) instead of one small array per task, so the model, the LOF and the distance
code each run once per run instead of once per task.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cfgen.metrics.common import Segments
from cfgen.schema import FeatureSchema, Rule


@dataclass
class Batch:
    """``n`` queries; task ``t``'s counterfactuals are ``cfs[seg.starts[t]:][:seg.counts[t]]``.

    ``no_change`` / ``non_inc`` / ``non_dec`` are (n, d) masks of each task's rules;
    ``proba_x`` (n, C) and ``proba_cf`` (M, C) are the model's probabilities.
    """

    X: np.ndarray
    cfs: np.ndarray
    seg: Segments
    targets: np.ndarray
    k: np.ndarray
    no_change: np.ndarray
    non_inc: np.ndarray
    non_dec: np.ndarray
    proba_x: np.ndarray
    proba_cf: np.ndarray
    _pairs: tuple | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return len(self.X)

    @property
    def m(self) -> np.ndarray:
        """Counterfactuals per task (float, for divisions)."""
        return self.seg.counts.astype(float)

    @property
    def owner(self) -> np.ndarray:
        return self.seg.owner

    @property
    def y_x(self) -> np.ndarray:
        return np.argmax(self.proba_x, axis=1)

    @property
    def y_cf(self) -> np.ndarray:
        return np.argmax(self.proba_cf, axis=1)

    def pairs(self) -> tuple[np.ndarray, np.ndarray, Segments]:
        """Unordered pairs of counterfactuals within each task (see :meth:`Segments.pairs`)."""
        if self._pairs is None:
            self._pairs = self.seg.pairs()
        return self._pairs


def rule_masks(schemas: list[FeatureSchema], d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, d) masks of ``no_change``, ``non_increasing`` and ``non_decreasing`` per task."""
    cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    rows = []
    for s in schemas:
        key = id(s)
        if key not in cache:
            cache[key] = tuple(  # type: ignore[assignment]
                s.rule_mask(r) for r in (Rule.NO_CHANGE, Rule.NON_INCREASING, Rule.NON_DECREASING)
            )
        rows.append(cache[key])
    if not rows:
        empty = np.zeros((0, d), dtype=bool)
        return empty, empty, empty
    nc, ni, nd = (np.array([r[i] for r in rows], dtype=bool) for i in range(3))
    return nc, ni, nd
