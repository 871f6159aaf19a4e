"""The DEAP genetic search for counterfactuals (method ``dpg_ga``), population in one array.

One search (:meth:`GeneticExplainer.explain`):

1. **Guides** — the target class's training rows nearest the query (implausibility reference)
   and its nearest *anchors* (valid real rows, projected onto the actionable box).
2. **Evolution** — a DEAP ``Toolbox`` built per query is the operator seam: ``population``
   (initialisation), ``evaluate``, ``select``, ``mate``, ``mutate`` and the final ``choose`` are
   registered on it from the method's config (``method.ga.operators``: cfgen's vectorised array
   operators by default, or any ``deap.tools`` operator through a per-individual adapter), and
   :func:`cfgen.search.algorithm.evolve` runs DEAP's ``eaSimple`` with elitism over them, with
   DEAP's ``Statistics``, ``Logbook`` and ``HallOfFame`` (the best distinct valid rows). Fitness is
   a feasibility rule over normalised objectives with a pairwise diversity reward
   (:mod:`cfgen.search.objectives`), one batched predict of the compiled model per generation.
3. **Final pass** (:mod:`cfgen.search.closest`, :mod:`cfgen.search.refine`): a beam search
   over split flips from the query finds the closest counterfactual (exact for the cells it
   reaches; polished and searched again from the closest with one change undone); a diverse
   pool of the hall's best is made sparse and close (reset features to the query, then move
   each change to the nearest split-threshold edge that keeps the prediction); each result is
   stepped towards its nearest anchor, and the anchors are thinned (their smallest changes
   reset).
4. **Choice** (:mod:`cfgen.search.select`): the front's representatives — closest, sparsest,
   most plausible (``method.select`` says which comes first, and what ``k=1`` gives) — then
   max-min diverse members of the NSGA-II shortlist, each named in ``Explanation.roles``.

``Explanation.extra`` holds ``evaluations`` (rows predicted), ``anchors``, the DEAP ``logbook``
(gen, valid, best, mean), ``pool`` / ``candidates`` sizes, ``flip_evaluations`` and wall
seconds of the phases (``time.thread_time`` cost more than the phases on a sandboxed machine).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np
from deap import base
from scipy.spatial.distance import cdist

from cfgen.config import BoundsConfig, GAConfig, check_node, setting
from cfgen.constraints import ClassBounds
from cfgen.errors import ConfigError
from cfgen.explanation import Explanation
from cfgen.schema import FeatureSchema
from cfgen.search.adapters import PerIndividual, deap_operator
from cfgen.search.algorithm import Evolution, evolve, hall_rows, logbook_records
from cfgen.search.closest import FlipGrid, flip_search, ruin_and_recreate
from cfgen.search.distance import MixedDistance, feature_scale, unique_rows
from cfgen.search.objectives import Evaluator
from cfgen.search.operators import Operators
from cfgen.search.reference import QueryGuides, TrainingReference
from cfgen.search.refine import reset, shrink, thin_anchors, towards_anchors
from cfgen.search.select import (
    ORDERS,
    greedy_diverse,
    max_min_diverse,
    nsga2_select,
    representatives,
)
from cfgen.search.space import SearchSpace, SpaceFactory
from cfgen.search.thresholds import SplitEdges

ValidFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class GeneticSettings:
    """The keys of ``method=dpg_ga`` besides name and time limit (``cfgen/conf/method/``)."""

    ga: GAConfig = setting(factory=GAConfig)
    bounds: BoundsConfig = setting(factory=BoundsConfig)
    select: str = setting("closest", choices=tuple(ORDERS))  # what comes first / k=1 gives


class GeneticExplainer:
    """Bound-guided genetic search behind the ``Explainer`` interface.

    Built as ``GeneticExplainer(problem, schema, class_bounds, ga={...}, bounds={...})`` (the
    run passes the problem, the task's schema with its actionability rules, and the class bounds
    it mined with ``bounds``). When the problem's predictor is the compiled tree ensemble
    (bit-for-bit equal to the model) its verdict is final; any other predictor's results are
    re-checked with the model's own ``predict``. ``time_limit`` (seconds per query) stops the
    evolution early; the final pass still runs on what was found, and the task counts as timed
    out.
    """

    needs_bounds: ClassVar[bool] = True
    settings: ClassVar[type] = GeneticSettings

    def __init__(self, problem: Any, schema: FeatureSchema | None = None,
                 class_bounds: ClassBounds | None = None, *, name: str = "dpg_ga",
                 time_limit: float | None = None, ga: Any = None, bounds: Any = None,
                 select: str = "closest") -> None:
        from cfgen.predictor import CompiledForest

        self.name = name
        self.select = check_node({"select": select}, GeneticSettings, "method").select
        self.params: GAConfig = check_node(ga or {}, GAConfig, "method.ga")
        self.bounds_cfg: BoundsConfig = check_node(bounds or {}, BoundsConfig, "method.bounds")
        for kind in ("mate", "mutate", "select"):  # a deap.tools operator must exist
            choice = getattr(self.params.operators, kind)
            if choice != "vectorised":
                deap_operator(kind, choice, f"method.ga.operators.{kind}")
        self.schema = schema if schema is not None else problem.schema
        self.estimator = problem.estimator
        self.predictor = problem.predictor
        # a compiled voting forest is bit-for-bit the model: its verdict is final; any other
        # predictor (boosted margins within 1e-9, a plain predict_proba) is re-checked
        trees = problem.trees
        self.exact = isinstance(self.predictor, CompiledForest) and trees is not None \
            and getattr(trees, "kind", "vote") == "vote"
        self.bounds = class_bounds
        self.time_limit = time_limit
        self.d = len(self.schema)
        X_train = np.asarray(problem.X_train, dtype=float)
        self.scale = feature_scale(X_train, self.schema)
        self.metric = MixedDistance(self.scale, self.schema.categorical)
        self.n_classes = int(problem.n_classes)
        predicted = np.argmax(self.predictor.predict_proba(X_train), axis=1)
        self.reference = TrainingReference(X_train, problem.y_train, predicted, self.metric)
        self.edges = SplitEdges.from_estimator(problem.trees, self.schema) \
            if problem.trees is not None else None
        self.spaces = SpaceFactory(self.schema, class_bounds)
        ens = getattr(self.predictor, "trees", None)
        self.flips = FlipGrid(ens, self.spaces.factor) \
            if ens is not None and hasattr(self.predictor, "leaf_nodes") else None

    @staticmethod
    def memory_bytes(ga: GAConfig, d: int, k: int) -> int:
        """Peak memory of one search, estimated: the valid individuals' pairwise distance matrix
        (the diversity reward) dominates, ``n * n`` floats and a boolean mask, plus the
        population arrays and the hall of fame."""
        n = max(2, ga.population_size)
        return int(n * n * 17 + 40 * n * d * 8 + 4 * max(ga.pool_size, k) * d * 8 * 8)

    @classmethod
    def preflight(cls, settings: Any, problem: Any, k: int, available: int | None) -> None:
        """Refuse, before anything starts, a population that cannot fit in a worker's memory."""
        ga: GAConfig = check_node(dict(settings).get("ga") or {}, GAConfig, "method.ga")
        need = cls.memory_bytes(ga, int(problem.d), int(k))
        if available is not None and need > available:
            raise ConfigError(
                f"method.ga.population_size={ga.population_size} is not allowed here: one search "
                f"needs about {need / 2**30:.1f} GiB (its pairwise distances grow with the "
                f"square of the population) and {available / 2**30:.1f} GiB are available: "
                "lower method.ga.population_size")

    # ------------------------------------------------------------------ toolbox
    def _valid_fn(self, target: int, counter: list[int]) -> ValidFn:
        def valid(X: np.ndarray) -> np.ndarray:
            counter[0] += len(X)
            if len(X) == 0:
                return np.zeros(0, dtype=bool)
            return np.argmax(self.predictor.predict_proba(X), axis=1) == target
        return valid

    def _register_variation(self, tb: base.Toolbox, ops: Operators, space: SearchSpace,
                            rng: np.random.Generator) -> None:
        """``mate`` / ``mutate`` / ``select``: vectorised, or the configured deap.tools ones."""
        conf = self.params.operators
        adapter = PerIndividual(space, self.scale, self.params.crossover_prob,
                                self.params.mutation_prob, rng)
        for kind, vectorised in (("mate", ops.mate), ("mutate", ops.mutate),
                                 ("select", ops.select)):
            choice = getattr(conf, kind)
            if choice == "vectorised":
                tb.register(kind, vectorised)
                continue
            fn = deap_operator(kind, choice, f"method.ga.operators.{kind}")
            args = dict(getattr(conf, f"{kind}_args") or {})
            tb.register(kind, getattr(adapter, kind)(fn, args))

    def _toolbox(self, ops: Operators, ev: Evaluator, valid_fn: ValidFn, space: SearchSpace,
                 guides: QueryGuides, rng: np.random.Generator) -> base.Toolbox:
        tb = base.Toolbox()
        tb.register("population", ops.init_population)
        tb.register("evaluate", ev)
        self._register_variation(tb, ops, space, rng)
        tb.register("reset", reset, space=space, metric=self.metric, valid_fn=valid_fn)
        tb.register("shrink", shrink, space=space, metric=self.metric, valid_fn=valid_fn,
                    edges=self.edges, n_near=16, rounds=3)
        tb.register("polish", shrink, space=space, metric=self.metric, valid_fn=valid_fn,
                    edges=self.edges, n_near=4, rounds=1)  # flip rows: changes sit at edges
        tb.register("towards_anchors", towards_anchors, anchors=guides.anchors, space=space,
                    metric=self.metric, valid_fn=valid_fn, steps=self.params.plausibility_steps)
        tb.register("thin_anchors", thin_anchors, space=space, metric=self.metric,
                    valid_fn=valid_fn)
        tb.register("choose", self._choose)
        tb.register("valid", valid_fn)
        return tb

    def _uses_python_random(self) -> bool:
        conf = self.params.operators
        return any(getattr(conf, k) != "vectorised" for k in ("mate", "mutate", "select"))

    # ------------------------------------------------------------------ the search
    def _check(self, x: np.ndarray, target: int) -> None:
        if not 0 <= target < self.n_classes:
            raise ValueError(
                f"target={target} is not a class of the model (0..{self.n_classes - 1})")
        if x.shape[0] != self.d:
            raise ValueError(f"x has {x.shape[0]} features, the schema {self.d}")

    def explain(self, x: np.ndarray, target: int, k: int, rng: np.random.Generator) -> Explanation:
        start = time.perf_counter()
        cpu0 = time.perf_counter()
        x = np.asarray(x, dtype=float).ravel()
        target = int(target)
        self._check(x, target)
        py_seed = int(rng.integers(2**63))  # the task's first draw is reserved for `random`
        if self._uses_python_random():
            random.seed(py_seed)  # DEAP's own tools draw from Python's `random`
        own = int(np.argmax(self.predictor.predict_proba(x[None, :]), axis=1)[0])
        if own == target:
            return Explanation.empty(self.d, target, k, time.perf_counter() - start,
                                     "query is already in the target class")
        space = self.spaces.build(x, target)
        if not space.movable.any():
            return Explanation.empty(self.d, target, k, time.perf_counter() - start,
                                     "no feature may change under the actionability rules")
        n_pred = [0]
        valid_fn = self._valid_fn(target, n_pred)
        p = self.params
        guides = self.reference.for_query(space, target, p.reference_rows, p.anchors, valid_fn)
        ev = Evaluator(self.predictor, target, space, self.metric, guides.reference_s, p)
        ops = Operators(space, self.scale, guides.anchors, p, rng)
        tb = self._toolbox(ops, ev, valid_fn, space, guides, rng)
        t_setup = time.perf_counter() - cpu0
        deadline = None if self.time_limit is None else start + self.time_limit
        evo = evolve(tb.population(max(2, p.population_size)), tb, ev, self.metric, p, deadline,
                     hall_size=4 * max(p.pool_size, k))
        t_loop = time.perf_counter() - cpu0
        cfs, roles, final = self._final(x, target, k, guides, tb, evo, ev, space)
        extra = {"evaluations": ev.n_evals + n_pred[0] + final.get("flip_evaluations", 0),
                 "anchors": int(len(guides.anchors)),
                 "logbook": logbook_records(evo.logbook), "t_setup": t_setup, "t_loop": t_loop,
                 **final}
        return Explanation(
            counterfactuals=cfs, target=target, k=k, seconds=time.perf_counter() - start,
            reason=self._reason(len(cfs), k, evo), timed_out=evo.timed_out, roles=roles,
            best_fitness=np.array(evo.logbook.select("best"), dtype=float),
            mean_fitness=np.array(evo.logbook.select("mean"), dtype=float),
            best_per_generation=np.array(evo.best_rows).reshape(-1, self.d),
            generations=evo.generations, extra=extra,
        )

    def _reason(self, found: int, k: int, evo: Evolution) -> str | None:
        reason = None
        if found == 0:
            reason = f"no valid counterfactual found in {evo.generations} generations"
        elif found < k:
            reason = f"only {found} distinct valid counterfactuals found"
        if evo.timed_out:
            reason = (reason + " " if reason else "") + \
                f"(time limit of {self.time_limit:g} s reached)"
        return reason

    # ------------------------------------------------------------------ final set
    def _pool(self, evo: Evolution, size: int) -> np.ndarray:
        """A diverse pool of the hall of fame's best distinct rows."""
        rows, q = hall_rows(evo.hall, self.d)
        if len(rows) == 0:
            return rows
        pick = greedy_diverse(self.metric.scaled(rows), q, size, self.params.w_diversity,
                              self.metric, 1.0 / self.d)
        return rows[pick]

    def _flip_rows(self, x: np.ndarray, target: int, space: SearchSpace, tb: base.Toolbox,
                   info: dict[str, Any]) -> np.ndarray:
        """Distinct polished counterfactuals from the split-flip search
        (:mod:`cfgen.search.closest`): search, then ``flip_restarts`` rounds of: polish (reset,
        shrink), search again from the closest row with one change undone."""
        p = self.params
        if self.flips is None or p.flip_beam <= 0:
            return np.zeros((0, self.d))
        tick = time.perf_counter()
        F, n, complete = flip_search(x, target, space, self.metric, self.predictor, self.flips,
                                     beam=p.flip_beam, layers=p.flip_layers, keep_valid=16)
        out = []
        x_s = self.metric.scaled(x)
        for r in range(p.flip_restarts + 1):
            if not len(F):
                break
            F = tb.polish(tb.reset(F))
            out.append(F)
            if r == p.flip_restarts or complete:  # complete: nothing closer to find
                break
            best = F[np.argmin(self.metric.to(self.metric.scaled(F), x_s))]
            F, m, _ = ruin_and_recreate(best, x, target, space, self.metric, self.predictor,
                                     self.flips, beam=p.flip_beam, layers=p.flip_layers)
            n += m
        S, m, _ = flip_search(x, target, space, self.metric, self.predictor, self.flips,
                           beam=max(1, p.flip_beam // 3), layers=p.flip_layers, keep_valid=16,
                           sparse=1e-3)
        n += m
        if len(S):
            out.append(tb.polish(tb.reset(S)))
        rows = np.vstack(out) if out else np.zeros((0, self.d))
        info["flip_evaluations"] = n
        info["flip_complete"] = bool(complete)
        info["t_flips"] = time.perf_counter() - tick
        return rows[unique_rows(rows)] if len(rows) else rows

    def _plausible_rows(self, space: SearchSpace, target: int, valid_fn: ValidFn,
                        ) -> tuple[np.ndarray, np.ndarray]:
        """The target class's training rows that the actionable box moves least, projected
        onto it and kept where still valid: the most plausible feasible counterfactuals. Returns
        the rows and their source rows (scaled; added to the implausibility reference)."""
        n = self.params.plausible_rows
        R = self.reference.rows.get(target, np.zeros((0, self.d)))
        if n <= 0 or len(R) == 0:
            return np.zeros((0, self.d)), np.zeros((0, self.d))
        m = self.metric
        proj = space.repair(np.clip(R, space.lo, space.hi))
        R_s, P_s = m.scaled(R), m.scaled(proj)
        gap = m.to(P_s, R_s)
        near = m.to(P_s, m.scaled(space.x))
        take = np.argpartition(gap, 2 * n - 1)[: 2 * n] if len(R) > 2 * n else np.arange(len(R))
        take = take[np.lexsort((take, near[take], gap[take]))]
        ok = valid_fn(proj[take]) & (np.count_nonzero(proj[take] != space.x, axis=1) > 0)
        take = take[ok][:n]
        return proj[take], R_s[take]

    def _final(self, x: np.ndarray, target: int, k: int, guides: QueryGuides,
               tb: base.Toolbox, evo: Evolution, ev: Evaluator, space: SearchSpace,
               ) -> tuple[np.ndarray, list[str], dict[str, Any]]:
        """Refine a pool of the GA's best and the flip search's rows, add plausible variants,
        choose ``k`` with their roles."""
        p = self.params
        pool = self._pool(evo, max(p.pool_size, k))
        info: dict[str, Any] = {"pool": int(len(pool))}
        flips = self._flip_rows(x, target, space, tb, info)  # already polished
        plausible, sources = self._plausible_rows(space, target, tb.valid)
        if len(sources):  # their implausibility is measured against their own source rows too
            ev.ref_s = np.vstack([ev.ref_s, sources])
        cands = [pool, guides.anchors, flips, plausible]
        tick = time.perf_counter()
        if p.refine:
            refined = tb.reset(pool)
            info["t_reset"] = time.perf_counter() - tick
            refined = tb.shrink(refined)
            info["t_shrink"] = time.perf_counter() - tick
            cands += [refined, tb.towards_anchors(np.vstack([refined, flips])),
                      tb.thin_anchors(guides.anchors)]
            info["t_paths"] = time.perf_counter() - tick
        C = np.vstack(cands)
        C = C[np.count_nonzero(C != x, axis=1) > 0]
        if len(C):
            C = C[unique_rows(C)]
        if len(C) and not self.exact:
            C = C[np.asarray(self.estimator.predict(C)) == target]
        info["candidates"] = int(len(C))
        if len(C) == 0:
            return C, [], info
        out, roles = tb.choose(C, k, ev)
        info["t_choice"] = time.perf_counter() - tick
        return out, roles, info

    def _choose(self, C: np.ndarray, k: int, ev: Evaluator) -> tuple[np.ndarray, list[str]]:
        """The front's representatives (closest, sparsest, most plausible; ``method.select``
        says which comes first), then max-min diverse members of the NSGA-II shortlist."""
        p = self.params
        C_s = self.metric.scaled(C)
        ev.always_implausibility = True
        o = ev(C, C_s)
        C, C_s, o = C[o.valid], C_s[o.valid], o.take(o.valid)
        if len(C) == 0:
            return C, []
        balanced = (p.w_distance * o.distance + p.w_sparsity * o.changes
                    + p.w_final_plausibility * o.implausibility)
        reps = representatives(o.distance, o.changes, o.implausibility, balanced,
                               self.select)[:k]
        chosen, roles = [i for i, _ in reps], [r for _, r in reps]
        if k > len(chosen):
            F = np.column_stack([o.distance, o.changes, o.implausibility])
            size = min(len(C), max(3 * k, p.diverse_shortlist))
            short = np.union1d(nsga2_select(F, size), chosen)
            pos = [int(np.searchsorted(short, i)) for i in chosen]
            # diverse = other features changed (count), then farther apart (scaled L1)
            L1 = self.metric.pairwise(C_s[short], C_s[short])
            D = cdist(C[short], C[short], "hamming") + 1e-3 * L1 / (1.0 + L1.max())
            picked = max_min_diverse(D, pos, k, balanced[short])
            extra = [int(short[i]) for i in picked[len(pos):]]
            chosen += extra
            roles += ["diverse"] * len(extra)
        return C[chosen], roles


__all__ = ["GeneticExplainer", "GeneticSettings"]
