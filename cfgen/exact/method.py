"""``method=exact``: the proven-closest counterfactual of a tree ensemble (MILP on HiGHS).

The distance is the search's own (``cfgen.search.distance``): MAD-scaled L1 over numeric
features plus one per changed categorical. Member 1 is the optimum (role ``closest``); each
further member (role ``diverse``) is the closest counterfactual that keeps, for every earlier
member, at least one of the features that member changed at the query's value — so no member's
changes are a superset of an earlier one's. Every row is re-checked with the model's own
``predict``; a cell whose row fails it (a floating-point tie) is cut off and the MILP re-solved.

Before the first solve a quick valid counterfactual (:mod:`cfgen.exact.start`) bounds the
optimum: values farther from the query than its distance are dropped and HiGHS starts from it.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from cfgen.errors import ConfigError
from cfgen.exact.cells import categorical_cells, numeric_cells
from cfgen.exact.forest import Ensemble, ensemble_of
from cfgen.exact.grid import Domain, domains, within
from cfgen.exact.milp import Cells, Formulation
from cfgen.exact.solver import Solved, solve
from cfgen.exact.start import start_row
from cfgen.explanation import Explanation
from cfgen.schema import FeatureSchema
from cfgen.search.distance import MixedDistance, feature_scale


def _json(v: Any) -> Any:
    """``extra`` must stay strict JSON: non-finite floats become ``None``."""
    if isinstance(v, dict):
        return {k: _json(u) for k, u in v.items()}
    if isinstance(v, list):
        return [_json(u) for u in v]
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def _number(name: str, value: Any, minimum: float, strict: bool, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    ok = (
        isinstance(value, kinds)
        and not isinstance(value, bool)
        and (value > minimum if strict else value >= minimum)
    )
    if not ok:
        what = "an integer" if integer else "a number"
        raise ConfigError(
            f"method.{name}={value!r} is not allowed: expected {what} "
            f"{'>' if strict else '>='} {minimum:g}"
        )


class ExactExplainer:
    """Closest counterfactual under the search's distance, proven optimal by HiGHS.

    Settings: ``time_limit`` (seconds per query, all members together; ``None``: none),
    ``mip_gap`` (relative gap at which HiGHS stops), ``threads``, ``presolve`` (HiGHS presolve;
    off by default, measured faster on these models), ``tie_margin`` (how much the target's
    summed leaf fractions must exceed a lower-indexed class's), ``max_fixups`` (cells cut off
    after failing the model's own ``predict`` before giving up), ``warm_start`` (bound and start
    the MILP from a quick valid counterfactual).
    """

    needs_bounds: ClassVar[bool] = False

    @classmethod
    def preflight(cls, settings: Any, problem: Any, k: int, available: int | None) -> None:
        """Refuse, before any task runs, a model the MILP cannot be written for."""
        if problem.trees is None:
            why = getattr(problem, "trees_note", "") or "it is not a tree ensemble"
            raise ConfigError(
                f"method=exact needs a tree ensemble cfgen can read, and model "
                f"{type(problem.model).__name__} is not one ({why}): use method=dpg_ga, "
                "nice or a DiCE method for this model"
            )

    def __init__(
        self,
        problem,
        schema: FeatureSchema,
        class_bounds=None,
        *,
        name: str = "exact",
        time_limit: float | None = None,
        mip_gap: float = 1e-6,
        threads: int = 1,
        presolve: bool = False,
        tie_margin: float = 1e-6,
        max_fixups: int = 20,
        warm_start: bool = True,
    ) -> None:
        if time_limit is not None:
            _number("time_limit", time_limit, 0, strict=True)
        _number("mip_gap", mip_gap, 0, strict=False)
        _number("tie_margin", tie_margin, 0, strict=True)
        _number("threads", threads, 1, strict=False, integer=True)
        _number("max_fixups", max_fixups, 0, strict=False, integer=True)
        for key, flag in (("presolve", presolve), ("warm_start", warm_start)):
            if not isinstance(flag, bool):
                raise ConfigError(f"method.{key}={flag!r} is not allowed: expected true or false")
        self.name = name
        self.time_limit = time_limit
        self.settings = {"mip_gap": float(mip_gap), "threads": threads, "presolve": presolve}
        self.tie_margin = float(tie_margin)
        self.max_fixups = max_fixups
        self.warm_start = warm_start
        self.schema = schema
        self.estimator = problem.estimator
        self.ensemble: Ensemble = ensemble_of(problem)
        if self.ensemble.n_features != len(schema):
            raise ConfigError(
                f"method=exact: the model has {self.ensemble.n_features} features, "
                f"the schema {len(schema)}"
            )
        self.X_train = np.asarray(problem.X_train, dtype=float)
        self.scale = feature_scale(self.X_train, schema)
        self.metric = MixedDistance(self.scale, schema.categorical)
        self.thresholds = [self.ensemble.thresholds(j) for j in range(len(schema))]
        predictor = getattr(problem, "predictor", None)
        if predictor is None:
            from cfgen.predictor import compile_predictor

            predictor = compile_predictor(problem.estimator)
        self.predictor = predictor

    # ------------------------------------------------------------------ building
    def cells(self, doms: list[Domain]) -> list[Cells]:
        """Each feature's cells (``None`` where it cannot move a split)."""
        out: list[Cells] = []
        for j, dom in enumerate(doms):
            lo, hi = dom.low_high()
            if lo == hi or not len(self.thresholds[j]):
                out.append(None)
            elif dom.categorical:
                out.append(categorical_cells(dom, self.thresholds[j], self.ensemble.cast))
            else:
                out.append(
                    numeric_cells(dom, self.thresholds[j], 1.0 / self.scale[j], self.ensemble.cast)
                )
        return out

    def distance(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        m = self.metric
        return m.to(m.scaled(np.atleast_2d(rows)), m.scaled(x)[None, :])

    def _valid(self, row: np.ndarray, target: int) -> bool:
        """The model's own verdict (the final check of every returned row)."""
        return bool(np.asarray(self.estimator.predict(row[None, :]))[0] == target)

    def _start(self, x: np.ndarray, target: int, doms: list[Domain]) -> np.ndarray | None:
        if not self.warm_start:
            return None

        def valid(X: np.ndarray) -> np.ndarray:
            return np.argmax(self.predictor.predict_proba(X), axis=1) == target

        row = start_row(self.X_train, x, doms, self.cells(doms), valid, self.metric)
        return row if row is not None and self._valid(row, target) else None

    # ------------------------------------------------------------------ one member
    def _member(
        self,
        form: Formulation,
        target: int,
        deadline: float | None,
        log: dict,
        start: np.ndarray | None = None,
    ) -> tuple[np.ndarray | None, dict, Solved]:
        """Solve, verify with ``predict``, cut off failing cells and re-solve."""
        point = None if start is None else form.point(start)
        while True:
            left = None if deadline is None else deadline - time.perf_counter()
            solved = solve(form, left, start=point, **self.settings)  # type: ignore[arg-type]
            if solved.solution is None:
                return None, {}, solved
            row, chosen = form.decode(solved.solution)
            if self._valid(row, target):
                return row, chosen, solved
            log["fixups"] += 1
            if log["fixups"] > self.max_fixups or not chosen:
                return None, {}, Solved("fixups_exhausted", None, np.inf, np.inf, np.inf, 0.0)
            form.exclude_cells(chosen)
            point = None

    def explain(self, x: np.ndarray, target: int, k: int, rng: np.random.Generator) -> Explanation:
        """Up to ``k`` counterfactuals of ``x`` in class ``target``, the optimum first.

        ``rng`` is unused: the result is deterministic (HiGHS with a fixed seed).
        """
        started = time.perf_counter()
        x = np.asarray(x, dtype=float)
        d = len(self.schema)
        if x.shape != (d,):
            raise ConfigError(f"x has shape {x.shape}: expected ({d},)")
        if not 0 <= int(target) < self.ensemble.n_classes:
            raise ConfigError(
                f"target={target!r} is not allowed: expected a class index "
                f"0..{self.ensemble.n_classes - 1}"
            )
        target = int(target)
        deadline = None if self.time_limit is None else started + float(self.time_limit)
        doms = domains(self.schema, x)
        start = self._start(x, target, doms)
        log: dict[str, Any] = {"fixups": 0}
        if start is not None:
            reach = float(self.distance(x, start)[0]) * (1 + 1e-9) + 1e-12
            log["start_objective"] = reach
            doms = [within(dom, reach * s) for dom, s in zip(doms, self.scale, strict=True)]
        form = Formulation(self.ensemble, self.cells(doms), x, target, self.tie_margin)
        log.update(
            n_columns=len(form.cost), n_binaries=int(sum(form.integer)), n_rows=len(form.rows)
        )
        rows, members = self._first(form, x, target, deadline, log, start)
        why = members[0]["status"].replace("_", " ") + " (no further member searched)"
        if rows and k > 1 and members[0]["status"] == "optimal":
            why = self._more(rows, members, x, target, k, deadline, log)
        return self._explanation(x, target, k, rows, members, log, started, why)

    def _first(self, form, x, target, deadline, log, start) -> tuple[list, list]:
        """The optimum (the query itself when nothing can move a split and it is valid)."""
        if not form.cols:
            if self._valid(x, target):
                return [x.copy()], [{"status": "optimal", "gap": 0.0, "objective": 0.0}]
            return [], [{"status": "infeasible", "gap": float("inf")}]
        row, _, solved = self._member(form, target, deadline, log, start)
        status = solved.status
        if row is None and start is not None:  # the MILP lost the (valid) start: keep it
            row, status = start, ("time_limit" if status == "time_limit" else "heuristic")
        if row is None:
            return [], [{"status": status, "gap": solved.gap}]
        return [row], [
            {
                "status": status,
                "gap": solved.gap,
                "bound": solved.bound,
                "objective": float(self.distance(x, row)[0]),
                "seconds": solved.seconds,
            }
        ]

    def _more(self, rows, members, x, target, k, deadline, log) -> str:
        """Further members on the full domains (the first's bound no longer holds); returns
        why it stopped."""
        form = Formulation(
            self.ensemble, self.cells(domains(self.schema, x)), x, target, self.tie_margin
        )
        changed = [j for j in form.cols if rows[-1][j] != x[j]]
        while len(rows) < k and changed:
            form.keep_one_of(changed)
            row, _, solved = self._member(form, target, deadline, log)
            if row is None:
                return (
                    "time limit reached"
                    if solved.status == "time_limit"
                    else (
                        "no further counterfactual leaves one of each earlier member's changed "
                        "features unchanged"
                    )
                )
            rows.append(row)
            members.append(
                {
                    "status": solved.status,
                    "gap": solved.gap,
                    "bound": solved.bound,
                    "objective": float(self.distance(x, row)[0]),
                    "seconds": solved.seconds,
                }
            )
            if solved.status != "optimal":
                return "time limit reached"
            changed = [j for j in form.cols if row[j] != x[j]]
        return "the query itself is in the target class" if len(rows) < k else ""

    def _explanation(self, x, target, k, rows, members, log, started, why) -> Explanation:
        first = members[0]
        status = first["status"]
        timed_out = status == "time_limit"
        extra = {
            "status": status,
            "gap": float(first.get("gap", np.inf)),
            "objective": float(first.get("objective", np.inf)),
            "members": members,
            **log,
        }
        reason = None
        if not rows:
            reason = (
                "time limit reached before a counterfactual was found"
                if timed_out
                else "no counterfactual in the target class within the actionable box"
            )
        elif len(rows) < k:
            reason = f"{len(rows)} of {k}: {why}"
        cfs = np.asarray(rows, dtype=float).reshape(len(rows), len(x))
        roles = ["closest"] + ["diverse"] * (len(rows) - 1) if rows else []
        return Explanation(
            cfs,
            target,
            k,
            time.perf_counter() - started,
            reason=reason,
            best_per_generation=np.empty((0, len(x))),
            timed_out=timed_out,
            roles=roles,
            extra=_json(extra),
        )
