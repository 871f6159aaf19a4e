"""``method=exact``: the proven-closest counterfactual of a tree ensemble (MILP on HiGHS).

The distance is the search's own (``cfgen.search.distance``): MAD-scaled L1 over numeric
features plus one per changed categorical. Member 1 is the optimum (role ``closest``); each
further member (role ``diverse``) is the closest counterfactual that keeps, for every earlier
member, at least one of the features that member changed at the query's value — so no member is
a superset of an earlier one's changes. Every row is re-checked with the model's own
``predict``; a cell whose row fails it (a floating-point tie) is cut off and the MILP re-solved.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from cfgen.errors import ConfigError
from cfgen.exact.cells import categorical_cells, numeric_cells
from cfgen.exact.forest import Ensemble, ensemble_of
from cfgen.exact.grid import domains
from cfgen.exact.milp import Cells, Formulation
from cfgen.exact.solver import Solved, solve
from cfgen.explanation import Explanation
from cfgen.schema import FeatureSchema
from cfgen.search.distance import MixedDistance, feature_scale


def _positive(name: str, value: Any, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ConfigError(f"method.{name}={value!r} is not allowed: expected a number "
                          f"{'>= 0' if allow_zero else '> 0'}")


class ExactExplainer:
    """Closest counterfactual under the search's distance, proven optimal by HiGHS.

    Settings: ``time_limit`` (seconds per query, all members together; ``None``: none),
    ``mip_gap`` (relative gap at which HiGHS stops), ``threads``, ``tie_margin`` (how much the
    target's summed leaf fractions must exceed a lower-indexed class's), ``max_fixups`` (cells
    cut off after failing the model's own ``predict`` before giving up).
    """

    needs_bounds: ClassVar[bool] = False

    def __init__(self, problem, schema: FeatureSchema, class_bounds=None, *, name: str = "exact",
                 time_limit: float | None = None, mip_gap: float = 1e-6, threads: int = 1,
                 tie_margin: float = 1e-6, max_fixups: int = 20) -> None:
        if time_limit is not None:
            _positive("time_limit", time_limit)
        _positive("mip_gap", mip_gap, allow_zero=True)
        _positive("tie_margin", tie_margin)
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ConfigError(f"method.threads={threads!r} is not allowed: expected an integer >= 1")
        if not isinstance(max_fixups, int) or isinstance(max_fixups, bool) or max_fixups < 0:
            raise ConfigError(
                f"method.max_fixups={max_fixups!r} is not allowed: expected an integer >= 0")
        self.name = name
        self.time_limit = time_limit
        self.mip_gap = float(mip_gap)
        self.threads = threads
        self.tie_margin = float(tie_margin)
        self.max_fixups = max_fixups
        self.schema = schema
        self.estimator = problem.estimator
        self.ensemble: Ensemble = ensemble_of(problem.estimator)
        if self.ensemble.n_features != len(schema):
            raise ConfigError(f"method=exact: the model has {self.ensemble.n_features} features, "
                              f"the schema {len(schema)}")
        self.scale = feature_scale(np.asarray(problem.X_train, dtype=float), schema)
        self.metric = MixedDistance(self.scale, schema.categorical)
        self.thresholds = [self.ensemble.thresholds(j) for j in range(len(schema))]

    # ------------------------------------------------------------------ building
    def cells(self, x: np.ndarray) -> list[Cells]:
        """Each feature's cells for query ``x`` (``None`` where it cannot move)."""
        out: list[Cells] = []
        for j, dom in enumerate(domains(self.schema, x)):
            lo, hi = dom.low_high()
            if lo == hi or not len(self.thresholds[j]):
                out.append(None)
            elif dom.categorical:
                out.append(categorical_cells(dom, self.thresholds[j]))
            else:
                out.append(numeric_cells(dom, self.thresholds[j], 1.0 / self.scale[j]))
        return out

    def distance(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        m = self.metric
        return m.to(m.scaled(np.atleast_2d(rows)), m.scaled(x)[None, :])

    def _valid(self, row: np.ndarray, target: int) -> bool:
        return bool(np.asarray(self.estimator.predict(row[None, :]))[0] == target)

    # ------------------------------------------------------------------ one member
    def _member(self, form: Formulation, target: int, deadline: float | None,
                log: dict) -> tuple[np.ndarray | None, dict[int, int], Solved]:
        """Solve, verify with ``predict``, cut off failing cells and re-solve."""
        while True:
            left = None if deadline is None else deadline - time.perf_counter()
            solved = solve(form, left, self.mip_gap, self.threads)
            if solved.solution is None:
                return None, {}, solved
            row, chosen = form.decode(solved.solution)
            if self._valid(row, target):
                return row, chosen, solved
            log["fixups"] += 1
            if log["fixups"] > self.max_fixups or not chosen:
                return None, {}, Solved("fixups_exhausted", None, np.inf, np.inf, np.inf, 0.0)
            form.exclude_cells(chosen)

    def explain(self, x: np.ndarray, target: int, k: int, rng: np.random.Generator) -> Explanation:
        """Up to ``k`` counterfactuals of ``x`` in class ``target``, the optimum first.

        ``rng`` is unused: the result is deterministic (HiGHS with a fixed seed).
        """
        start = time.perf_counter()
        x = np.asarray(x, dtype=float)
        d = len(self.schema)
        if x.shape != (d,):
            raise ConfigError(f"x has shape {x.shape}: expected ({d},)")
        if not 0 <= int(target) < self.ensemble.n_classes:
            raise ConfigError(f"target={target!r} is not allowed: expected a class index "
                              f"0..{self.ensemble.n_classes - 1}")
        deadline = None if self.time_limit is None else start + float(self.time_limit)
        form = Formulation(self.ensemble, self.cells(x), x, int(target), self.tie_margin)
        log: dict[str, Any] = {"fixups": 0, "n_columns": len(form.cost),
                               "n_binaries": int(sum(form.integer)), "n_rows": len(form.rows)}
        rows: list[np.ndarray] = []
        members: list[dict[str, Any]] = []
        if not form.cols:  # nothing can move a split: the query is the only candidate
            if self._valid(x, target):
                rows.append(x.copy())
                members.append({"status": "optimal", "gap": 0.0, "objective": 0.0})
        while len(rows) < k and form.cols:
            row, chosen, solved = self._member(form, int(target), deadline, log)
            if row is None:
                if not rows:
                    members.append({"status": solved.status, "gap": solved.gap})
                break
            members.append({"status": solved.status, "gap": solved.gap,
                            "objective": float(self.distance(x, row)[0]),
                            "bound": solved.bound, "seconds": solved.seconds})
            rows.append(row)
            changed = [j for j, s in chosen.items() if s != form.cells[j].q]  # type: ignore[union-attr]
            if not changed or solved.status != "optimal":
                break
            form.keep_one_of(changed)
        return self._explanation(x, int(target), k, rows, members, log, start)

    def _explanation(self, x, target, k, rows, members, log, start) -> Explanation:
        first = members[0] if members else {"status": "infeasible", "gap": float("inf")}
        status = first["status"]
        timed_out = status == "time_limit"
        extra = {"status": status,
                 "gap": float(first.get("gap", np.inf)),
                 "objective": float(first.get("objective", np.inf)),
                 "members": members, **log}
        reason = None
        if not rows:
            reason = ("time limit reached before a counterfactual was found" if timed_out else
                      "no counterfactual in the target class within the actionable box")
        elif len(rows) < k:
            reason = (f"{len(rows)} of {k}: no further counterfactual leaving one of each earlier "
                      "member's changed features unchanged" if not timed_out
                      else f"{len(rows)} of {k}: time limit reached")
        cfs = np.asarray(rows, dtype=float).reshape(len(rows), len(x))
        roles = ["closest"] + ["diverse"] * (len(rows) - 1) if rows else []
        return Explanation(cfs, target, k, time.perf_counter() - start, reason=reason,
                           best_per_generation=np.empty((0, len(x))), timed_out=bool(timed_out),
                           roles=roles, extra=extra)
