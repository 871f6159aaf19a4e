"""The DEAP genetic search for counterfactuals (method ``dpg_ga``), population in one array.

One search (:meth:`GeneticExplainer.explain`):

1. **Guides** — the target class's training rows nearest the query (implausibility reference)
   and its nearest *anchors* (valid real rows, projected onto the actionable box).
2. **Evolution** — a DEAP toolbox built for the run (``population``, ``evaluate``, ``select``,
   ``mate``, ``mutate``) whose operators work on the whole ``(n, d)`` population array
   (:mod:`cfgen.search.operators`); fitness is a feasibility rule over normalised objectives with
   a pairwise diversity reward (:mod:`cfgen.search.objectives`), one batched predict of the
   compiled forest per generation; elitism, tournament selection, uniform crossover, bound- and
   anchor-guided mutation; early stop after ``patience`` generations without an improvement of
   ``delta_threshold``; DEAP ``Statistics``/``Logbook`` record best and mean fitness per
   generation; every valid individual goes to an archive.
3. **Final pass** (:mod:`cfgen.search.refine`): a diverse pool of the best archived individuals
   is made sparse and close (reset features to the query, then move each change to the nearest
   split-threshold edge that keeps the prediction — exact for tree ensembles); each result is
   stepped towards its nearest anchor, and the anchors are thinned (their smallest changes reset)
   — plausible variants near real rows of the target class.
4. **Choice** (:mod:`cfgen.search.select`): NSGA-II ranking over (distance, changes,
   implausibility) keeps ``max(3k, 12)`` candidates, then greedy max-min over
   ``w_distance * distance + w_sparsity * changes + w_final_plausibility * implausibility``
   with a ``w_diversity`` reward: quality and diversity together, distinct rows, at most ``k``.

``Explanation.extra`` holds ``evaluations`` (rows predicted), ``anchors``, ``timed_out``, the DEAP
``logbook`` (gen, valid, best, mean), ``pool`` / ``candidates`` sizes and CPU seconds of the
phases (``t_setup``, ``t_loop``; ``t_reset``, ``t_shrink``, ``t_paths``, ``t_choice`` cumulative
from the start of the final pass).
"""

from __future__ import annotations

import random
import time

import numpy as np
from deap import base, tools

from cfgen.constraints import ClassBounds
from cfgen.explanation import Explanation
from cfgen.predictor import CompiledForest, compile_predictor
from cfgen.schema import FeatureSchema
from cfgen.search.distance import MixedDistance, feature_scale, unique_rows
from cfgen.search.objectives import INVALID, Evaluator
from cfgen.search.operators import Operators
from cfgen.search.params import GAParams
from cfgen.search.reference import TrainingReference
from cfgen.search.refine import reset, shrink, thin_anchors, towards_anchors
from cfgen.search.select import greedy_diverse, nsga2_select
from cfgen.search.space import SpaceFactory
from cfgen.search.thresholds import SplitEdges


class GeneticExplainer:
    """Bound-guided genetic search behind the ``Explainer`` interface.

    ``predictor`` is the fast probability predictor (``cfgen.predictor.compile_predictor``; built
    here when ``None``). When it is a :class:`~cfgen.predictor.CompiledForest` (bit-for-bit equal
    to the estimator) its verdict is final; any other predictor's results are re-checked with the
    estimator's own ``predict`` (which must answer class indices ``0..C-1``, as cfgen's fitted
    models and the library API's wrappers do). ``time_limit`` (seconds per query) stops the
    evolution early; the final pass still runs on what was found.
    """

    def __init__(
        self,
        estimator,
        predictor,
        schema: FeatureSchema,
        X_train: np.ndarray,
        y_train: np.ndarray,
        bounds: ClassBounds | None,
        params: GAParams | None = None,
        time_limit: float | None = None,
    ) -> None:
        self.estimator = estimator
        self.predictor = predictor if predictor is not None else compile_predictor(estimator)
        self.exact = isinstance(self.predictor, CompiledForest)
        self.schema = schema
        self.bounds = bounds
        self.params = params or GAParams()
        self.time_limit = time_limit
        self.d = len(schema)
        X_train = np.asarray(X_train, dtype=float)
        self.scale = feature_scale(X_train, schema)
        self.metric = MixedDistance(self.scale, schema.categorical)
        n_classes = len(getattr(self.predictor, "classes_", np.unique(y_train)))
        self.n_classes = n_classes
        predicted = np.argmax(self.predictor.predict_proba(X_train), axis=1)
        self.reference = TrainingReference(X_train, y_train, predicted, self.metric)
        self.edges = SplitEdges.from_estimator(estimator, schema)
        self.spaces = SpaceFactory(schema, bounds)

    # ------------------------------------------------------------------ helpers
    def _valid_fn(self, target: int, counter: list[int]):
        def valid(X: np.ndarray) -> np.ndarray:
            counter[0] += len(X)
            if len(X) == 0:
                return np.zeros(0, dtype=bool)
            return np.argmax(self.predictor.predict_proba(X), axis=1) == target
        return valid

    def _empty(self, target, k, start, reason, **extra) -> Explanation:
        return Explanation(np.empty((0, self.d)), target, k, time.perf_counter() - start,
                           reason=reason, best_per_generation=np.empty((0, self.d)),
                           extra=extra)

    def _toolbox(self, ops: Operators, ev: Evaluator, valid_fn, space, guides) -> base.Toolbox:
        tb = base.Toolbox()
        tb.register("population", ops.init_population)
        tb.register("evaluate", ev)
        tb.register("select", ops.select)
        tb.register("mate", ops.mate)
        tb.register("mutate", ops.mutate)
        tb.register("reset", reset, space=space, metric=self.metric, valid_fn=valid_fn)
        tb.register("shrink", shrink, space=space, metric=self.metric, valid_fn=valid_fn,
                    edges=self.edges)
        tb.register("towards_anchors", towards_anchors, anchors=guides.anchors, space=space,
                    metric=self.metric, valid_fn=valid_fn, steps=self.params.plausibility_steps)
        tb.register("thin_anchors", thin_anchors, space=space, metric=self.metric,
                    valid_fn=valid_fn)
        return tb

    # ------------------------------------------------------------------ the search
    def explain(self, x: np.ndarray, target: int, k: int, rng: np.random.Generator) -> Explanation:
        start = time.perf_counter()
        cpu0 = time.thread_time()
        p = self.params
        x = np.asarray(x, dtype=float).ravel()
        target = int(target)
        if not 0 <= target < self.n_classes:
            raise ValueError(
                f"target={target} is not a class of the model (0..{self.n_classes - 1})")
        if x.shape[0] != self.d:
            raise ValueError(f"x has {x.shape[0]} features, the schema {self.d}")
        random.seed(int(rng.integers(2**63)))  # DEAP's own tools draw from `random`
        own = int(np.argmax(self.predictor.predict_proba(x[None, :]), axis=1)[0])
        if own == target:
            return self._empty(target, k, start, "query is already in the target class")
        space = self.spaces.build(x, target)
        if not space.movable.any():
            return self._empty(target, k, start,
                               "no feature may change under the actionability rules")
        n_pred = [0]
        valid_fn = self._valid_fn(target, n_pred)
        guides = self.reference.for_query(space, target, p.reference_rows, p.anchors, valid_fn)
        ev = Evaluator(self.predictor, target, space, self.metric, guides.reference_s, p)
        ops = Operators(space, self.scale, guides.anchors, p, rng)
        tb = self._toolbox(ops, ev, valid_fn, space, guides)

        stats = tools.Statistics()
        stats.register("best", np.min)
        stats.register("mean", np.mean)
        logbook = tools.Logbook()
        logbook.header = ["gen", "valid", "best", "mean"]

        n = max(2, p.population_size)
        elite = min(p.elite, n - 1)
        t_setup = time.thread_time() - cpu0
        pop = tb.population(n)
        arch_rows: list[np.ndarray] = []
        arch_q: list[np.ndarray] = []
        best_rows: list[np.ndarray] = []
        best_so_far, stale, gen, timed_out = np.inf, 0, 0, False
        deadline = None if self.time_limit is None else start + self.time_limit
        # while nothing valid has been found the search may run to 3x max_generations
        hard_cap = 3 * p.max_generations
        for gen in range(hard_cap):
            pop_s = self.metric.scaled(pop)
            obj = tb.evaluate(pop, pop_s)
            fit, q = ev.fitness(obj, pop_s)
            score = np.where(obj.valid, q, INVALID + (1.0 - obj.margin))
            if obj.valid.any():
                arch_rows.append(pop[obj.valid])
                arch_q.append(q[obj.valid])
            b = int(np.argmin(score))
            best_rows.append(pop[b].copy())
            logbook.record(gen=gen, valid=int(obj.valid.sum()), **stats.compile([score]))
            if best_so_far - score[b] > p.delta_threshold:
                best_so_far, stale = score[b], 0
            else:
                stale += 1
            if stale >= p.patience and best_so_far < INVALID:
                break
            if deadline is not None and time.perf_counter() > deadline:
                timed_out = True
                break
            if gen >= p.max_generations - 1 and (best_so_far < INVALID or gen == hard_cap - 1):
                break
            order = np.argsort(fit, kind="stable")
            parents = tb.select(fit, n - elite)
            children = tb.mutate(tb.mate(pop[parents]))
            pop = np.vstack([pop[order[:elite]], children])

        t_loop = time.thread_time() - cpu0
        cfs, final = self._final(x, target, k, space, guides, tb, arch_rows, arch_q, ev,
                                 valid_fn)
        reason = None
        if len(cfs) == 0:
            reason = f"no valid counterfactual found in {gen + 1} generations"
        elif len(cfs) < k:
            reason = f"only {len(cfs)} distinct valid counterfactuals found"
        if timed_out and reason:
            reason += f" (time limit of {self.time_limit:g} s reached)"
        extra = {
            "evaluations": ev.n_evals + n_pred[0],
            "anchors": int(len(guides.anchors)),
            "timed_out": timed_out,
            "logbook": [dict(r) for r in logbook],
            "t_setup": t_setup,
            "t_loop": t_loop,
            **final,
        }
        return Explanation(
            counterfactuals=cfs,
            target=target,
            k=k,
            seconds=time.perf_counter() - start,
            reason=reason,
            best_fitness=np.array(logbook.select("best"), dtype=float),
            mean_fitness=np.array(logbook.select("mean"), dtype=float),
            best_per_generation=np.array(best_rows).reshape(-1, self.d),
            generations=gen + 1,
            extra=extra,
        )

    # ------------------------------------------------------------------ final set
    def _pool(self, arch_rows, arch_q, size: int) -> np.ndarray:
        """A diverse pool of the best distinct archived rows."""
        if not arch_rows:
            return np.zeros((0, self.d))
        rows = np.vstack(arch_rows)
        q = np.concatenate(arch_q)
        first = unique_rows(rows)
        best = first[np.argsort(q[first], kind="stable")[: 4 * size]]
        rows, q = rows[best], q[best]
        pick = greedy_diverse(self.metric.scaled(rows), q, size, self.params.w_diversity,
                              self.metric, 1.0 / self.d)
        return rows[pick]

    def _final(self, x, target, k, space, guides, tb, arch_rows, arch_q, ev: Evaluator,
               valid_fn):
        """Refine a pool of the GA's best, add plausible variants, choose ``k``."""
        p = self.params
        pool = self._pool(arch_rows, arch_q, max(p.pool_size, k))
        info = {"pool": int(len(pool))}
        cands = [pool, guides.anchors]
        tick = time.thread_time()
        if p.refine:
            refined = tb.reset(pool)
            info["t_reset"] = time.thread_time() - tick
            refined = tb.shrink(refined)
            info["t_shrink"] = time.thread_time() - tick
            cands += [refined, tb.towards_anchors(refined), tb.thin_anchors(guides.anchors)]
            info["t_paths"] = time.thread_time() - tick
        C = np.vstack(cands)
        C = C[np.count_nonzero(C != x, axis=1) > 0]
        if len(C) == 0:
            info["candidates"] = 0
            return C, info
        C = C[unique_rows(C)]
        if not self.exact:
            C = C[np.asarray(self.estimator.predict(C)) == target]
        info["candidates"] = int(len(C))
        if len(C) == 0:
            return C, info
        C_s = self.metric.scaled(C)
        ev.always_implausibility = True
        o = ev(C, C_s)
        C, C_s, o = C[o.valid], C_s[o.valid], o.take(o.valid)
        F = np.column_stack([o.distance, o.changes, o.implausibility])
        front = nsga2_select(F, min(len(C), max(3 * k, 12)))
        score = (p.w_distance * o.distance + p.w_sparsity * o.changes
                 + p.w_final_plausibility * o.implausibility)[front]
        pick = front[greedy_diverse(C_s[front], score, k, p.w_diversity, self.metric,
                                    1.0 / self.d)]
        info["t_choice"] = time.thread_time() - tick
        return C[pick], info
