"""Metric names, their direction and their scale: the columns of ``metrics.csv``.

Names are the ECE ``cf_eval`` column names (so tables line up with published ones) plus cfgen's
``distance_mixed`` family and ``runtime``. ``SCALES`` says what a number is: a ``count`` (per
query, e.g. counterfactuals), a ``share`` in ``[0, 1]``, a ``distance`` (units in
docs/metrics.md), a ``ratio`` (LOF), a ``probability`` difference or ``seconds``.
"""

from __future__ import annotations

COMPAT_MODES: tuple[str, ...] = ("cfgen", "ece")

AGGS = ("", "_min", "_max")
KINDS = ("l2", "mad", "j", "h", "l2j", "mh")
PLAUS_NORMS = (
    "max_nbr_cf",
    "nbr_cf",
    "nbr_valid_cf",
    "nbr_actionable_cf",
    "nbr_valid_actionable_cf",
)

#: The search's own distance: MAD-scaled L1 over non-categorical features + changed categoricals.
MIXED = ("distance_mixed", "distance_mixed_min", "distance_mixed_max")

#: Every metric a suite returns, in the original's column order (+ ``distance_mixed*``, runtime).
METRIC_NAMES: tuple[str, ...] = (
    "nbr_cf",
    "nbr_valid_cf",
    "perc_valid_cf",
    "perc_valid_cf_all",
    "nbr_actionable_cf",
    "perc_actionable_cf",
    "perc_actionable_cf_all",
    "nbr_valid_actionable_cf",
    "perc_valid_actionable_cf",
    "perc_valid_actionable_cf_all",
    "avg_nbr_violations_per_cf",
    "avg_nbr_violations",
    *(f"distance_{k}{a}" for a in AGGS for k in KINDS),
    *MIXED,
    "avg_nbr_changes_per_cf",
    "avg_nbr_changes",
    *(f"diversity_{k}{a}" for a in AGGS for k in KINDS),
    "count_diversity_cont",
    "count_diversity_cate",
    "count_diversity_all",
    "accuracy_knn_sklearn",
    "accuracy_knn_dist",
    "lof",
    "delta",
    "delta_min",
    "delta_max",
    "plausibility_sum",
    *(f"plausibility_{n}" for n in PLAUS_NORMS),
    "runtime",
)

#: Metrics that count what a query found: 0 (not NaN) for a failed task (error or time-out).
COUNT_LIKE: tuple[str, ...] = tuple(n for n in METRIC_NAMES if n.startswith(("nbr_", "perc_")))


def _direction(name: str) -> str:
    down = ("distance_", "plausibility_", "avg_nbr_", "lof", "runtime")
    return "down" if name.startswith(down) else "up"


def _scale(name: str) -> str:
    if name.startswith("nbr_") or name in ("avg_nbr_violations_per_cf", "avg_nbr_changes_per_cf"):
        return "count"
    if name.startswith(("perc_", "count_diversity_", "accuracy_")) or name in (
        "avg_nbr_violations",
        "avg_nbr_changes",
    ):
        return "share"
    if name.startswith(("distance_j", "distance_h", "diversity_j", "diversity_h")):
        return "share"
    if name.startswith("delta"):
        return "probability"
    if name == "lof":
        return "ratio"
    if name == "runtime":
        return "seconds"
    return "distance"


#: ``"up"`` when larger is better, ``"down"`` when smaller is better.
DIRECTIONS: dict[str, str] = {n: _direction(n) for n in METRIC_NAMES}
#: ``count`` | ``share`` | ``distance`` | ``ratio`` | ``probability`` | ``seconds``.
SCALES: dict[str, str] = {n: _scale(n) for n in METRIC_NAMES}
