"""The DEAP genetic search for counterfactuals, with the population held in one array."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import numpy as np
from deap import base, creator, tools
from scipy.spatial import cKDTree

from cfgen.constraints import ClassBounds
from cfgen.explanation import Explanation
from cfgen.schema import FeatureSchema
from cfgen.search.space import SearchSpace

INVALID = 1e6  # fitness offset of invalid individuals: any valid one beats any invalid one

if not hasattr(creator, "CfFitness"):
    # objectives of the final multi-objective choice: distance, changes, implausibility
    creator.create("CfFitness", base.Fitness, weights=(-1.0, -1.0, -1.0))
    creator.create("CfIndividual", np.ndarray, fitness=creator.CfFitness)


def feature_scale(X: np.ndarray, schema: FeatureSchema) -> np.ndarray:
    """Per-feature scale: MAD, else standard deviation, else 1 (categoricals: 1)."""
    med = np.median(X, axis=0)
    mad = np.median(np.abs(X - med), axis=0)
    std = X.std(axis=0)
    scale = np.where(mad > 0, mad, np.where(std > 0, std, 1.0))
    scale[schema.categorical] = 1.0
    return scale


@dataclass
class GAParams:
    """Plain copy of the ``ga`` config group (kept picklable and cheap)."""

    population_size: int = 50
    max_generations: int = 60
    crossover_prob: float = 0.7
    mutation_prob: float = 0.3
    mutation_gene_prob: float = 0.3
    tournament_size: int = 3
    elite: int = 2
    init_change_prob: float = 0.5
    bounds_init_prob: float = 0.7
    patience: int = 10
    delta_threshold: float = 1e-4
    w_distance: float = 1.0
    w_sparsity: float = 0.5
    w_plausibility: float = 0.2
    w_bounds: float = 0.3
    w_diversity: float = 0.1
    refine: bool = True

    @classmethod
    def from_config(cls, cfg) -> "GAParams":
        return cls(**{k: cfg[k] for k in cls.__dataclass_fields__ if k in cfg})


class GeneticExplainer:
    """Bound-guided genetic search (method ``dpg_ga``) behind the ``Explainer`` interface."""

    def __init__(
        self,
        estimator,
        predictor,
        schema: FeatureSchema,
        X_train: np.ndarray,
        y_train: np.ndarray,
        bounds: ClassBounds | None,
        params: GAParams | None = None,
    ) -> None:
        self.estimator = estimator
        self.predictor = predictor
        self.schema = schema
        self.bounds = bounds
        self.params = params or GAParams()
        self.scale = feature_scale(X_train, schema)
        self.categorical = schema.categorical
        self.d = len(schema)
        self.decimals = np.where(schema.continuous, schema.decimals, 0)
        self._train_scaled = X_train / self.scale
        pred = np.asarray(estimator.predict(X_train))
        # reference rows of class c: training rows labelled c that the model also puts in c
        self._ref: dict[int, np.ndarray] = {}
        self._trees: dict[int, cKDTree] = {}
        for c in np.unique(y_train):
            rows = np.flatnonzero((y_train == c) & (pred == c))
            if rows.size == 0:
                rows = np.flatnonzero(y_train == c)
            self._ref[int(c)] = X_train[rows]
            self._trees[int(c)] = cKDTree(self._train_scaled[rows])

    # ----------------------------------------------------------------- objectives
    def _objectives(self, pop: np.ndarray, x: np.ndarray, target: int, space: SearchSpace):
        """Validity, margin and the three minimised objectives for a whole population."""
        proba = self.predictor.predict_proba(pop)
        pred = np.argmax(proba, axis=1)
        valid = pred == target
        p_t = proba[:, target]
        others = proba.copy()
        others[:, target] = -np.inf
        margin = p_t - others.max(axis=1)
        diff = np.abs(pop - x) / self.scale
        changed = diff > 1e-12
        diff[:, self.categorical] = changed[:, self.categorical]
        distance = diff.sum(axis=1) / self.d
        changes = changed.sum(axis=1) / self.d
        tree = self._trees.get(target)
        if tree is not None:
            implaus = tree.query(pop / self.scale, k=1, p=1)[0] / self.d
        else:
            implaus = np.zeros(len(pop))
        outside = space.outside_target(pop)
        return valid, margin, distance, changes, implaus, outside

    def _fitness(self, valid, margin, distance, changes, implaus, outside) -> np.ndarray:
        p = self.params
        obj = (
            p.w_distance * distance
            + p.w_sparsity * changes
            + p.w_plausibility * implaus
            + p.w_bounds * outside
        )
        # feasibility rule: invalid individuals rank by how far they are from the target class
        return np.where(valid, obj, INVALID + (1.0 - margin) + 1e-3 * obj)

    # ----------------------------------------------------------------- operators
    def _init_population(self, x, space: SearchSpace, rng, target: int) -> np.ndarray:
        p = self.params
        n = p.population_size
        pop = np.tile(x, (n, 1))
        mov = np.flatnonzero(space.movable)
        change = rng.random((n, len(mov))) < p.init_change_prob
        change[np.arange(n), rng.integers(0, len(mov), n)] = True
        guided = self._mutant_values(x, space, rng, n)
        sub = pop[:, mov]
        sub[change] = guided[:, mov][change]
        pop[:, mov] = sub
        # a quarter starts on the way to real target-class rows (plausible, often valid)
        ref = self._ref.get(target)
        if ref is not None and len(ref):
            m = max(1, n // 4)
            near = ref[self._trees[target].query(x / self.scale, k=min(m, len(ref)), p=1)[1]]
            near = np.atleast_2d(near)
            alpha = rng.uniform(0.5, 1.0, size=(len(near), 1))
            pop[: len(near)] = x + alpha * (near - x)
        return space.repair(pop)

    def _mutant_values(self, x, space: SearchSpace, rng, n: int) -> np.ndarray:
        """Candidate gene values: inside the target's interval, or a local Gaussian step."""
        p = self.params
        inside = space.sample_target(rng, n)
        step = x + rng.normal(0.0, 1.0, size=(n, self.d)) * self.scale * 2.0
        cat = self.categorical
        if cat.any():
            step[:, cat] = inside[:, cat]
        use_bounds = rng.random((n, self.d)) < p.bounds_init_prob
        return np.where(use_bounds, inside, step)

    def _select(self, fitness: np.ndarray, rng, n: int) -> np.ndarray:
        """Tournament selection on fitness values (indices of winners)."""
        t = self.params.tournament_size
        cand = rng.integers(0, len(fitness), size=(n, t))
        return cand[np.arange(n), np.argmin(fitness[cand], axis=1)]

    def _mate(self, pop: np.ndarray, rng) -> np.ndarray:
        """Uniform crossover of consecutive pairs, each pair with ``crossover_prob``."""
        n = len(pop) - len(pop) % 2
        a, b = pop[0:n:2].copy(), pop[1:n:2].copy()
        do = rng.random(n // 2) < self.params.crossover_prob
        swap = (rng.random(a.shape) < 0.5) & do[:, None]
        pop[0:n:2] = np.where(swap, b, a)
        pop[1:n:2] = np.where(swap, a, b)
        return pop

    def _mutate(self, pop: np.ndarray, x, space: SearchSpace, rng) -> np.ndarray:
        """Per-gene mutation: towards the target interval, a Gaussian step, or back to x."""
        p = self.params
        n = len(pop)
        who = rng.random(n) < p.mutation_prob
        genes = (rng.random(pop.shape) < p.mutation_gene_prob) & who[:, None] & space.movable
        values = self._mutant_values(x, space, rng, n)
        back = rng.random(pop.shape) < 0.3  # reset to the query's value: pressure to sparsity
        values = np.where(back, x, values)
        return np.where(genes, values, pop)

    def _toolbox(self, x, target, space, rng) -> base.Toolbox:
        tb = base.Toolbox()
        tb.register("population", self._init_population, x, space, rng, target)
        tb.register("evaluate", self._objectives, x=x, target=target, space=space)
        tb.register("select", self._select, rng=rng)
        tb.register("mate", self._mate, rng=rng)
        tb.register("mutate", self._mutate, x=x, space=space, rng=rng)
        return tb

    # ----------------------------------------------------------------- the search
    def explain(self, x: np.ndarray, target: int, k: int, rng: np.random.Generator) -> Explanation:
        start = time.perf_counter()
        x = np.asarray(x, dtype=float)
        random.seed(int(rng.integers(2**63)))
        own = int(np.asarray(self.estimator.predict(x[None, :]))[0])
        if own == target:
            return Explanation(np.empty((0, self.d)), target, k, time.perf_counter() - start,
                               reason="query is already in the target class")
        space = SearchSpace.build(x, target, self.schema, self.bounds)
        if not space.movable.any():
            return Explanation(np.empty((0, self.d)), target, k, time.perf_counter() - start,
                               reason="no feature may change under the actionability rules")
        p = self.params
        tb = self._toolbox(x, target, space, rng)
        logbook = tools.Logbook()
        logbook.header = ["gen", "best", "mean", "valid"]
        pop = tb.population()
        archive: list[np.ndarray] = []
        best_rows: list[np.ndarray] = []
        best_so_far, stale = np.inf, 0
        gen = 0
        for gen in range(p.max_generations):
            objs = tb.evaluate(pop)
            fit = self._fitness(*objs)
            valid = objs[0]
            if valid.any():
                archive.append(pop[valid].copy())
            order = np.argsort(fit, kind="stable")
            best_rows.append(pop[order[0]].copy())
            logbook.record(gen=gen, best=float(fit[order[0]]), mean=float(fit.mean()),
                           valid=int(valid.sum()))
            if best_so_far - fit[order[0]] > p.delta_threshold:
                best_so_far, stale = fit[order[0]], 0
            else:
                stale += 1
            if stale >= p.patience and best_so_far < INVALID:
                break
            if gen == p.max_generations - 1:
                break
            elites = pop[order[: p.elite]].copy()
            children = pop[tb.select(fit, n=len(pop) - p.elite)].copy()
            children = tb.mate(children)
            children = space.repair(tb.mutate(children))
            pop = np.vstack([elites, children])
        cfs = self._final_set(x, target, k, space, archive)
        seconds = time.perf_counter() - start
        reason = None
        if len(cfs) == 0:
            reason = f"no valid counterfactual found in {gen + 1} generations"
        elif len(cfs) < k:
            reason = f"only {len(cfs)} distinct valid counterfactuals found"
        return Explanation(
            counterfactuals=cfs,
            target=target,
            k=k,
            seconds=seconds,
            reason=reason,
            best_fitness=np.array(logbook.select("best")),
            mean_fitness=np.array(logbook.select("mean")),
            best_per_generation=np.array(best_rows),
            generations=gen + 1,
        )

    # ----------------------------------------------------------------- final set
    def _round(self, X: np.ndarray) -> np.ndarray:
        out = X.copy()
        for dec in np.unique(self.decimals):
            cols = self.decimals == dec
            out[:, cols] = np.round(out[:, cols], int(dec))
        return out

    def _valid(self, X: np.ndarray, target: int) -> np.ndarray:
        return np.argmax(self.predictor.predict_proba(X), axis=1) == target

    def _sparsify(self, cands: np.ndarray, x: np.ndarray, target: int) -> np.ndarray:
        """Greedily reset changed genes to x while the prediction stays the target."""
        cands = cands.copy()
        for _ in range(self.d):
            changed = np.abs(cands - x) > 1e-12
            rows, cols = np.nonzero(changed)
            if rows.size == 0:
                break
            trial = cands[rows].copy()
            trial[np.arange(rows.size), cols] = x[cols]
            ok = self._valid(trial, target)
            if not ok.any():
                break
            # per candidate, accept the valid reset that removes the largest scaled change
            gain = np.where(ok, np.abs(cands[rows, cols] - x[cols]) / self.scale[cols], -1.0)
            best = np.full(len(cands), -1.0)
            pick = np.full(len(cands), -1)
            for i in np.argsort(-gain, kind="stable"):
                if gain[i] >= 0 and best[rows[i]] < 0:
                    best[rows[i]], pick[rows[i]] = gain[i], i
            for r in np.flatnonzero(pick >= 0):
                i = pick[r]
                cands[r, cols[i]] = x[cols[i]]
        return cands

    def _shrink(self, cands: np.ndarray, x: np.ndarray, target: int, space: SearchSpace):
        """Move each candidate's continuous changes back towards x as far as it stays valid."""
        alphas = np.linspace(0.1, 1.0, 10)
        cont = ~space.integer
        delta = (cands - x) * cont
        trial = x + alphas[None, :, None] * delta[:, None, :]
        trial = np.where(cont, trial, cands[:, None, :]).reshape(-1, self.d)
        trial = space.repair(self._round(trial))
        ok = self._valid(trial, target).reshape(len(cands), len(alphas))
        first = np.argmax(ok, axis=1)  # smallest alpha still valid (alpha=1 is the candidate)
        return trial.reshape(len(cands), len(alphas), self.d)[np.arange(len(cands)), first]

    def _final_set(self, x, target, k, space: SearchSpace, archive: list[np.ndarray]):
        if not archive:
            return np.empty((0, self.d))
        cands = np.unique(self._round(np.vstack(archive)), axis=0)
        if self.params.refine:
            cands = self._shrink(self._sparsify(cands, x, target), x, target, space)
            cands = np.unique(self._round(space.repair(cands)), axis=0)
        # the estimator's own predict has the last word
        cands = cands[np.asarray(self.estimator.predict(cands)) == target]
        if len(cands) == 0:
            return cands
        valid, _, dist, chg, impl, out = self._objectives(cands, x, target, space)
        # multi-objective first cut (DEAP's NSGA-II over distance, changes, implausibility)
        inds = []
        for i, row in enumerate(cands):
            ind = creator.CfIndividual(row)
            ind.fitness.values = (float(dist[i]), float(chg[i]), float(impl[i]))
            ind.idx = i
            inds.append(ind)
        pool_size = min(len(inds), max(4 * k, 20))
        pool = np.array([ind.idx for ind in tools.selNSGA2(inds, pool_size)])
        score = self._fitness(valid, 0, dist, chg, impl, out)[pool]
        return cands[pool[self._diverse(cands[pool], score, k)]]

    def _diverse(self, cands: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
        """Greedy max-min choice: best first, then trade score for distance to those chosen."""
        chosen = [int(np.argmin(score))]
        scaled = cands / self.scale
        mind = np.abs(scaled - scaled[chosen[0]]).sum(axis=1) / self.d
        w = self.params.w_diversity
        while len(chosen) < min(k, len(cands)):
            gain = score - w * mind
            gain[chosen] = np.inf
            nxt = int(np.argmin(gain))
            chosen.append(nxt)
            mind = np.minimum(mind, np.abs(scaled - scaled[nxt]).sum(axis=1) / self.d)
        return np.array(chosen)

