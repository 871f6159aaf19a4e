"""Vectorised variation operators: initialisation, mutation, crossover, tournament selection.

All of them work on the whole population array at once and draw from the task's
``numpy.random.Generator``. New gene values come from four sources:

* the target's class bounds: the point of the target interval nearest the query (the smallest
  move into the bounds) or a uniform draw inside it (categoricals: an allowed code);
* a Gaussian step of ``scale`` (the feature's MAD) around the current value;
* the value of a real anchor (a valid training row of the target class, projected onto the
  feasible box);
* back to the query's value (sparsity pressure, mutation only).

Every result goes through :meth:`SearchSpace.repair`, so genes are always snapped to the data's
precision (integers, category codes) and inside the box the actionability rules allow.
"""

from __future__ import annotations

import numpy as np

from cfgen.config import GAConfig
from cfgen.search.space import SearchSpace


class Operators:
    def __init__(
        self,
        space: SearchSpace,
        scale: np.ndarray,
        anchors: np.ndarray,
        params: GAConfig,
        rng: np.random.Generator,
    ) -> None:
        self.space = space
        self.scale = scale
        self.anchors = anchors
        self.p = params
        self.rng = rng
        self.x = space.x
        self.d = space.d
        self.movable = space.movable
        self.n_movable = int(space.movable.sum())
        cat = space.categorical
        # features the class bounds ask to move get a higher chance of being picked
        outside = (space.toward != space.x) & self.movable
        self.outside = outside
        self.weight = np.where(outside, 1.0, 0.35) * self.movable
        self.cum_w = np.cumsum(self.weight)
        self.cat = cat
        self.cat_pos = np.full(self.d, -1)
        self.cat_pos[space.cat_idx] = np.arange(space.cat_idx.size)
        q = min(params.mutation_gene_prob, params.mutation_max_genes / max(self.n_movable, 1))
        self.gene_prob = q

    # ------------------------------------------------------------------ values
    def _values_at(self, base: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """New values for the genes at columns ``cols`` whose current values are ``base``.

        With ``bounds_init_prob`` a value from the target's bounds (half the time the point of the
        interval nearest the query, else uniform inside it), otherwise a uniform step of up to
        1.5 MAD around the current value or, when there are anchors, an anchor's value
        (half of the remaining draws). Categorical genes draw an allowed code instead of a step.
        """
        rng, p, sp = self.rng, self.p, self.space
        m = len(cols)
        u = rng.random((4, m))
        inside = sp.s_lo[cols] + u[0] * (sp.s_hi[cols] - sp.s_lo[cols])
        vals = np.where(u[1] < 0.5, sp.toward[cols], inside)
        step = base + (2.0 * u[2] - 1.0) * 1.5 * self.scale[cols]
        other = u[3] >= p.bounds_init_prob
        vals = np.where(other, step, vals)
        from_anchor = other & (u[1] < 0.5) if len(self.anchors) else np.zeros(m, dtype=bool)
        if from_anchor.any():
            pick = rng.integers(0, len(self.anchors), size=int(from_anchor.sum()))
            vals[from_anchor] = self.anchors[pick, cols[from_anchor]]
        ci = self.cat_pos[cols]
        is_cat = ci >= 0
        if is_cat.any():
            ci = ci[is_cat]
            code = (rng.random(ci.size) * sp.cat_counts[ci]).astype(np.intp)
            cat_vals = sp.cat_choices[ci, code]
            keep = from_anchor | (~other & (u[1] < 0.5))  # anchor's code / nearest allowed code
            vals[is_cat] = np.where(keep[is_cat], vals[is_cat], cat_vals)
        return vals

    def _force_one(self, n: int) -> np.ndarray:
        """One movable gene per row, drawn with probability proportional to ``weight``."""
        pick = np.searchsorted(self.cum_w, self.rng.random(n) * self.cum_w[-1], side="right")
        mask = np.zeros((n, self.d), dtype=bool)
        mask[np.arange(n), np.minimum(pick, self.d - 1)] = True
        return mask

    # ------------------------------------------------------------------ operators
    def init_population(self, n: int) -> np.ndarray:
        """First population, in three parts.

        * ``anchor_init_share``: on the way to anchors (a random share of an anchor's changes,
          scaled by a random step in [0.5, 1]; the first is the nearest anchor itself);
        * ``dense_init_share``: every gene the target's class bounds ask to move (the query's
          value is outside the target interval) drawn uniformly inside the interval — the
          bounds' own guess of the target region;
        * the rest: sparse bound-guided moves, each movable gene with a per-row probability
          between 0 and ``init_change_prob`` (higher for genes outside the interval), plus one
          forced gene, so the population spans one-feature changes to dense ones.
        """
        rng, p, x = self.rng, self.p, self.x
        pop = np.tile(x, (n, 1))
        n_anchor = 0
        if len(self.anchors):
            n_anchor = min(n, int(round(p.anchor_init_share * n)))
        if n_anchor:
            a = self.anchors[np.arange(n_anchor) % len(self.anchors)]
            keep = rng.random((n_anchor, self.d)) < rng.uniform(0.2, 1.0, (n_anchor, 1))
            keep[0] = True  # the nearest anchor itself, whole
            alpha = rng.uniform(0.5, 1.0, (n_anchor, 1))
            alpha[0] = 1.0
            vals = x + alpha * (a - x)
            if self.cat.any():
                vals[:, self.cat] = a[:, self.cat]
            pop[:n_anchor] = np.where(keep & self.movable, vals, x)
        n_dense = 0
        if self.outside.any():
            n_dense = min(n - n_anchor, int(round(p.dense_init_share * n)))
        if n_dense:
            rows = slice(n_anchor, n_anchor + n_dense)
            pop[rows] = np.where(self.outside, self.space.sample_target(rng, n_dense), x)
        start = n_anchor + n_dense
        m = n - start
        if m > 0:
            prob = p.init_change_prob * rng.random((m, 1)) ** 2 * self.weight
            change = (rng.random((m, self.d)) < prob) | self._force_one(m)
            change &= self.movable
            r, c = np.nonzero(change)
            pop[start + r, c] = self._values_at(x[c], c)
        return self.space.repair(pop)

    def mutate(self, pop: np.ndarray) -> np.ndarray:
        """Mutate rows with ``mutation_prob``; each picks genes with the per-gene probability
        ``min(mutation_gene_prob, mutation_max_genes / movable genes)`` (at least one). A picked
        gene that differs from the query goes back to it with ``reset_prob``."""
        rng, p = self.rng, self.p
        n = len(pop)
        who = rng.random(n) < p.mutation_prob
        if not who.any():
            return pop
        rows = np.flatnonzero(who)
        sub = pop[rows]
        genes = (rng.random(sub.shape) < self.gene_prob) | self._force_one(len(rows))
        genes &= self.movable
        r, c = np.nonzero(genes)
        cur = sub[r, c]
        vals = self._values_at(cur, c)
        back = (rng.random(r.size) < p.reset_prob) & (cur != self.x[c])
        sub[r, c] = np.where(back, self.x[c], vals)
        pop[rows] = self.space.repair(sub)
        return pop

    def mate(self, pop: np.ndarray) -> np.ndarray:
        """Uniform crossover of consecutive pairs, each pair with ``crossover_prob``."""
        rng = self.rng
        n = len(pop) - len(pop) % 2
        if n < 2:
            return pop
        a, b = pop[0:n:2], pop[1:n:2]
        do = rng.random(n // 2) < self.p.crossover_prob
        swap = (rng.random(a.shape) < 0.5) & do[:, None]
        new_a = np.where(swap, b, a)
        new_b = np.where(swap, a, b)
        pop[0:n:2], pop[1:n:2] = new_a, new_b
        return pop

    def select(self, fitness: np.ndarray, n: int) -> np.ndarray:
        """Indices of ``n`` tournament winners (``tournament_size`` contestants, lowest wins)."""
        t = max(1, self.p.tournament_size)
        cand = self.rng.integers(0, len(fitness), size=(n, t))
        return cand[np.arange(n), np.argmin(fitness[cand], axis=1)]
