"""One line per metric: what it measures and which way is better (``docs/metrics.md`` has the
definitions). Used by the Markdown and HTML reports and the run report, so every table that
shows a metric can say what it is."""

from __future__ import annotations

from typing import Iterable

import pandas as pd

ARROW = {"up": "↑", "down": "↓"}

_KIND = {
    "l2": "Euclidean (raw units, non-categorical features)",
    "mad": "MAD-scaled L1 over non-categorical features (categoricals not counted)",
    "j": "Jaccard over categorical features",
    "h": "share of categorical features that differ",
    "l2j": "mixed L2 / Jaccard",
    "mh": "mixed MAD / Hamming: numeric by MAD, categorical by share changed",
}
_AGG = {"": "mean", "_min": "smallest", "_max": "largest"}
_PLAUS = {
    "max_nbr_cf": "per requested counterfactual (k)",
    "nbr_cf": "per counterfactual found",
    "nbr_valid_cf": "per valid counterfactual",
    "nbr_actionable_cf": "per actionable counterfactual",
    "nbr_valid_actionable_cf": "per valid and actionable counterfactual",
}

MEANINGS: dict[str, str] = {
    "nbr_cf": "counterfactuals returned (count, at most k)",
    "nbr_valid_cf": "counterfactuals the model puts in the target class (count)",
    "perc_valid_cf": "share of the returned counterfactuals that are valid",
    "perc_valid_cf_all": "validity: valid counterfactuals / k requested",
    "nbr_actionable_cf": "counterfactuals that respect the actionability rules (count)",
    "perc_actionable_cf": "share of the returned counterfactuals that respect the rules",
    "perc_actionable_cf_all": "counterfactuals respecting the rules / k requested",
    "nbr_valid_actionable_cf": "counterfactuals both valid and actionable (count)",
    "perc_valid_actionable_cf": "share of the returned ones both valid and actionable",
    "perc_valid_actionable_cf_all": "valid and actionable counterfactuals / k requested",
    "avg_nbr_violations_per_cf": "rule violations per counterfactual (count)",
    "avg_nbr_violations": "rule violations per counterfactual and feature (share)",
    "avg_nbr_changes_per_cf": "features changed per counterfactual (count)",
    "avg_nbr_changes": "features changed per counterfactual, as a share of all features",
    "count_diversity_cont": "share of non-categorical features that differ between pairs",
    "count_diversity_cate": "share of categorical features that differ between pairs",
    "count_diversity_all": "share of features that differ between pairs of counterfactuals",
    "accuracy_knn_sklearn": "1-NN on query + counterfactuals recovers the model's labels of "
    "nearby test rows (discriminative power)",
    "accuracy_knn_dist": "the same 1-NN accuracy under the mixed L2/Jaccard distance",
    "lof": "local outlier factor of the counterfactuals (≈1 inlier, >1 outlier)",
    "delta": "gain in the target class's probability from query to counterfactual",
    "delta_min": "smallest gain in the target class's probability",
    "delta_max": "largest gain in the target class's probability",
    "plausibility_sum": "summed distance of each counterfactual to its nearest training row "
    "of its class",
    "runtime": "seconds of search per task (model fitting and bound mining excluded)",
    "runtime_with_bounds": "search seconds + the run's bound-mining time spread over its "
    "queries (for methods that use bounds)",
}


def meaning(metric: str) -> str:
    """The one-line meaning of a ``metrics.csv`` column (empty when unknown)."""
    if metric in MEANINGS:
        return MEANINGS[metric]
    for prefix, what in (
        ("distance_", "distance to the query"),
        ("diversity_", "distance between pairs of counterfactuals"),
    ):
        if metric.startswith(prefix):
            rest = metric[len(prefix) :]
            agg = next((a for a in ("_min", "_max") if rest.endswith(a)), "")
            kind = rest[: len(rest) - len(agg)] if agg else rest
            if kind in _KIND:
                return f"{_AGG[agg]} {what}: {_KIND[kind]}"
    if metric.startswith("plausibility_"):
        norm = metric[len("plausibility_") :]
        if norm in _PLAUS:
            return (
                "implausibility: distance to the nearest training row of the class, " + _PLAUS[norm]
            )
    return ""


def direction(metric: str) -> str:
    from cfgen.report.tables import direction as _direction

    return _direction(metric)


def legend_frame(metrics: Iterable[str]) -> pd.DataFrame:
    """metric, ↑/↓ and meaning for each metric (in the given order, each once)."""
    seen = list(dict.fromkeys(metrics))
    return pd.DataFrame(
        {
            "metric": seen,
            "better": [ARROW[direction(m)] for m in seen],
            "meaning": [meaning(m) or "see docs/metrics.md" for m in seen],
        }
    )
