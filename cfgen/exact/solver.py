"""Passing a :class:`~cfgen.exact.milp.Formulation` to HiGHS (``highspy``) and reading back."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import highspy
import numpy as np

from cfgen.exact.milp import Formulation


@dataclass(frozen=True)
class Solved:
    """``status``: ``optimal`` | ``time_limit`` | ``infeasible``; ``solution`` is ``None`` when
    none was found; ``gap`` is HiGHS's relative MIP gap, ``bound`` its dual bound."""

    status: str
    solution: np.ndarray | None
    objective: float
    gap: float
    bound: float
    seconds: float


_quiet = False


def _highs() -> highspy.Highs:
    """A HiGHS instance; the first one of a process is made with fd 1 muted (HiGHS prints its
    copyright banner on stdout once per process, which would land in every worker's console)."""
    global _quiet
    if _quiet:
        return highspy.Highs()
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _quiet = True
    return h


def _lp(form: Formulation) -> highspy.HighsLp:
    rows = form.rows
    lp = highspy.HighsLp()
    n = len(form.cost)
    lp.num_col_ = n
    lp.num_row_ = len(rows)
    lp.col_cost_ = np.asarray(form.cost, dtype=np.float64)
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = np.asarray(form.upper, dtype=np.float64)
    lp.row_lower_ = np.asarray(rows.lower, dtype=np.float64)
    lp.row_upper_ = np.asarray(rows.upper, dtype=np.float64)
    lp.offset_ = float(form.offset)
    sizes = np.array([len(i) for i in rows.index], dtype=np.int64)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    lp.a_matrix_.index_ = (np.concatenate(rows.index) if len(rows) else np.zeros(0)).astype(
        np.int32
    )
    lp.a_matrix_.value_ = np.concatenate(rows.value) if len(rows) else np.zeros(0)
    lp.integrality_ = [
        highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
        for i in form.integer
    ]
    return lp


def solve(
    form: Formulation,
    time_limit: float | None,
    mip_gap: float,
    threads: int,
    presolve: bool = False,
    start: np.ndarray | None = None,
    seed: int = 0,
) -> Solved:
    """Solve to the relative gap ``mip_gap`` or until ``time_limit`` seconds, from the
    incumbent ``start`` when given (HiGHS drops it if it is infeasible)."""
    if not form.cost:  # nothing can move: the query itself is the only row (feasible or not)
        return Solved("infeasible", None, np.inf, np.inf, np.inf, 0.0)
    h = _highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("random_seed", int(seed))
    h.setOptionValue("mip_rel_gap", float(mip_gap))
    h.setOptionValue("mip_abs_gap", 1e-9)
    # tight tolerances: with the defaults (1e-6 / 1e-7) a binary at 0.9999995 buys a leaf share
    # of 5e-7, enough to fake the tie margin; the model's predict would then reject the row
    h.setOptionValue("mip_feasibility_tolerance", 1e-9)
    h.setOptionValue("primal_feasibility_tolerance", 1e-9)
    if time_limit is not None:
        h.setOptionValue("time_limit", max(float(time_limit), 1e-3))
    h.setOptionValue("presolve", "on" if presolve else "off")
    h.passModel(_lp(form))
    if start is not None:
        given = highspy.HighsSolution()
        given.col_value = start.tolist()
        given.value_valid = True
        h.setSolution(given)
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    seconds = float(h.getRunTime())
    has = info.primal_solution_status == 2  # kSolutionStatusFeasible
    sol = np.asarray(h.getSolution().col_value, dtype=float) if has else None
    if status == highspy.HighsModelStatus.kOptimal:
        name = "optimal"
    elif status == highspy.HighsModelStatus.kInfeasible:
        name = "infeasible"
    elif status == highspy.HighsModelStatus.kTimeLimit:
        name = "time_limit"
    else:
        name = h.modelStatusToString(status).lower().replace(" ", "_")
    objective = float(info.objective_function_value) if has else np.inf
    return Solved(name, sol, objective, float(info.mip_gap), float(info.mip_dual_bound), seconds)
