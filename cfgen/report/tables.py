"""The paper tables as DataFrames: comparison, win summary, winners, Wilcoxon tests.

Aggregation (the unit of analysis is the *query*):

1. per query × target × combination: mean over replications;
2. per query: mean over its targets and combinations → one value per query, method, metric;
3. per dataset × method: mean, std (ddof=1), n and Student-t 95% CI over those query values.

NaNs (a metric undefined for a task, e.g. a distance when nothing was found) are skipped at every
step; ``n`` is the number of queries with a value.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np
import pandas as pd

from cfgen.report.stats import (
    best_of,
    holm,
    is_tie,
    mean_ci,
    paired_wilcoxon,
    win_count,
)

#: the metrics the DPG-vs-DiCE paper reported, in its column order, with their direction
PAPER_METRICS: dict[str, str] = {
    "perc_valid_cf_all": "up",  # validity: share of the k requested counterfactuals that are valid
    "perc_actionable_cf_all": "up",  # share of the k that respect the actionability rules
    "distance_mh": "down",  # mixed MAD/Hamming distance to the query
    "avg_nbr_changes": "down",  # features changed (sparsity)
    "count_diversity_all": "up",  # features that differ between counterfactuals
    "accuracy_knn_sklearn": "up",  # discriminative power (kNN trained on the counterfactuals)
    "plausibility_nbr_cf": "down",  # implausibility: distance to the nearest training rows
    "runtime": "down",  # seconds of search per task (model fitting and bound mining excluded)
}
#: shown and counted next to the tested metrics, but not part of the Wilcoxon/Holm family
SECONDARY_METRICS: dict[str, str] = {
    "runtime_with_bounds": "down",  # runtime + bound mining time / queries (bound-using methods)
    "avg_nbr_changes_per_cf": "down",  # features changed per counterfactual (count; console's)
}

_DOWN_PREFIXES = ("distance_", "plausibility_", "avg_nbr_", "lof", "runtime")


def direction(metric: str) -> str:
    """``"up"`` if larger is better, ``"down"`` if smaller is better."""
    if metric in PAPER_METRICS:
        return PAPER_METRICS[metric]
    if metric in SECONDARY_METRICS:
        return SECONDARY_METRICS[metric]
    try:  # the metric suite's own table, when importable
        from cfgen.metrics import DIRECTIONS

        if metric in DIRECTIONS:
            return DIRECTIONS[metric]
    except Exception:  # noqa: BLE001 - fall back to the naming convention
        pass
    return "down" if metric.startswith(_DOWN_PREFIXES) else "up"


# ------------------------------------------------------------------------------ aggregation


def query_means(rows: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per dataset × method × query: replications averaged first, then targets/combos."""
    metrics = [m for m in metrics if m in rows]
    keys = ["dataset", "method", "query", "target", "combination"]
    per_task = rows.groupby(keys, sort=True)[metrics].mean()
    return per_task.groupby(["dataset", "method", "query"], sort=True)[metrics].mean().reset_index()


def comparison(qmeans: pd.DataFrame, metrics: Sequence[str], level: float = 0.95) -> pd.DataFrame:
    """Long table: dataset, method, metric, direction, mean, std, n, ci_low, ci_high."""
    recs = []
    for (dataset, method), g in qmeans.groupby(["dataset", "method"], sort=True):
        for m in metrics:
            if m not in g:
                continue
            recs.append(
                {
                    "dataset": dataset,
                    "method": method,
                    "metric": m,
                    "direction": direction(m),
                    **mean_ci(g[m].to_numpy(), level),
                }
            )
    cols = ["dataset", "method", "metric", "direction", "mean", "std", "n", "ci_low", "ci_high"]
    return pd.DataFrame(recs, columns=cols)


def dataset_means(comp: pd.DataFrame, metric: str, methods: Sequence[str]) -> pd.DataFrame:
    """datasets × methods matrix of one metric's means (NaN where a method has no value)."""
    sub = comp[comp["metric"] == metric]
    wide = sub.pivot(index="dataset", columns="method", values="mean")
    return wide.reindex(columns=list(methods))


# ------------------------------------------------------------------------------ wins


def summary_table(
    comp: pd.DataFrame, metrics: Sequence[str], methods: Sequence[str]
) -> pd.DataFrame:
    """Per metric and pair of methods (A listed first): wins / losses / ties of A over datasets.

    A dataset counts when both methods have a mean; ``win_rate`` = wins / (wins + losses).
    """
    recs = []
    for m in metrics:
        wide = dataset_means(comp, m, methods)
        for a, b in itertools.combinations(methods, 2):
            wc = win_count(wide[a].to_numpy(), wide[b].to_numpy(), direction(m))
            recs.append(
                {
                    "metric": m,
                    "direction": direction(m),
                    "method_a": a,
                    "method_b": b,
                    "n_datasets": wc.n,
                    "wins": wc.wins,
                    "losses": wc.losses,
                    "ties": wc.ties,
                    "win_rate": wc.win_rate,
                }
            )
    cols = [
        "metric",
        "direction",
        "method_a",
        "method_b",
        "n_datasets",
        "wins",
        "losses",
        "ties",
        "win_rate",
    ]
    return pd.DataFrame(recs, columns=cols)


def winners_table(
    comp: pd.DataFrame, metrics: Sequence[str], methods: Sequence[str]
) -> pd.DataFrame:
    """Per dataset × metric: the best method (``"tie"`` when several share the best mean).

    A dataset where fewer than two methods have a value has no winner (empty string).
    """
    recs = []
    for m in metrics:
        wide = dataset_means(comp, m, methods)
        for dataset, row in wide.iterrows():
            values = row.to_numpy(dtype=float)
            i, tied = best_of(values, direction(m))
            if i is None or np.isfinite(values).sum() < 2:  # nothing to compare against
                winner, best, best_mean = "", "", math.nan
            else:
                best_mean = float(values[i])
                ok = np.isfinite(values)
                same = [methods[int(j)] for j in np.flatnonzero(ok) if is_tie(values[j], best_mean)]
                winner = "tie" if tied else methods[int(i)]
                best = ";".join(same)
            recs.append(
                {
                    "dataset": dataset,
                    "metric": m,
                    "direction": direction(m),
                    "winner": winner,
                    "best": best,
                    "best_mean": best_mean,
                    "n_methods": int(np.isfinite(values).sum()),
                }
            )
    cols = ["dataset", "metric", "direction", "winner", "best", "best_mean", "n_methods"]
    return pd.DataFrame(recs, columns=cols)


def winner_counts(winners: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Per metric: on how many datasets each method was the sole best, and how many ties."""
    recs = []
    for m, g in winners.groupby("metric", sort=False):
        rec = {"metric": m}
        for meth in methods:
            rec[meth] = int((g["winner"] == meth).sum())
        rec["tie"] = int((g["winner"] == "tie").sum())
        rec["n_datasets"] = int((g["winner"] != "").sum())
        recs.append(rec)
    return pd.DataFrame(recs, columns=["metric", *methods, "tie", "n_datasets"])


# ------------------------------------------------------------------------------ Wilcoxon


def min_p(n: int) -> float:
    """Smallest two-sided p-value an exact Wilcoxon signed-rank test over ``n`` pairs can give
    (every difference of one sign): ``2 / 2**n``; 1 for ``n = 0``."""
    return min(1.0, 2.0 ** (1 - n)) if n > 0 else 1.0


def _possible(out: pd.DataFrame, n_col: str, family: list[str], alpha: float) -> pd.DataFrame:
    """Columns ``min_p_holm`` (the smallest Holm-adjusted p any data could give: the family's
    size × ``min_p(n)``) and ``can_be_significant`` (``min_p_holm < alpha``)."""
    m = out.groupby(family, sort=False)["p"].transform(lambda p: max(int(p.notna().sum()), 1))
    out["min_p_holm"] = [min(1.0, k * min_p(int(n))) for k, n in zip(m, out[n_col], strict=True)]
    out["can_be_significant"] = out["min_p_holm"] < alpha
    out["significant"] = out["significant"] & out["can_be_significant"]
    return out


def method_pairs(methods: Sequence[str], reference: str | None, all_pairs: bool = False):
    """Pairs to test: the reference against every other method (or every pair)."""
    if all_pairs or reference is None:
        return list(itertools.combinations(methods, 2))
    return [(reference, m) for m in methods if m != reference]


_TEST_COLS = ["n", "n_nonzero", "median_diff", "statistic", "p", "p_holm", "effect_size", "better"]


def _test_record(res, a: str, b: str) -> dict:
    better = ""
    if np.isfinite(res.median_diff) and res.n_nonzero:
        better = a if res.effect > 0 else b if res.effect < 0 else ""
    return {
        "n": res.n,
        "n_nonzero": res.n_nonzero,
        "median_diff": res.median_diff,
        "statistic": res.statistic,
        "p": res.pvalue,
        "effect_size": res.effect,
        "better": better,
    }


def wilcoxon_datasets(
    comp: pd.DataFrame, metrics: Sequence[str], pairs, alpha: float = 0.05
) -> pd.DataFrame:
    """Wilcoxon signed-rank over datasets (paired by dataset) per metric and pair of methods.

    ``p_holm``: Holm across the metrics, within the pair (the paper's family);
    ``p_holm_all``: Holm across every metric × pair in the table.
    ``median_diff`` and ``effect_size`` (matched-pairs rank-biserial) are oriented: positive means
    ``method_a`` is better.
    """
    recs = []
    for a, b in pairs:
        for m in metrics:
            wide = dataset_means(comp, m, [a, b])
            res = paired_wilcoxon(wide[a].to_numpy(), wide[b].to_numpy(), direction(m))
            recs.append(
                {
                    "metric": m,
                    "direction": direction(m),
                    "method_a": a,
                    "method_b": b,
                    **_test_record(res, a, b),
                }
            )
    out = pd.DataFrame(
        recs,
        columns=[
            "metric",
            "direction",
            "method_a",
            "method_b",
            *[c for c in _TEST_COLS if c != "p_holm"],
        ],
    )
    out = out.rename(columns={"n": "n_datasets"})
    out["p_holm"] = np.nan
    for _, idx in out.groupby(["method_a", "method_b"], sort=False).groups.items():
        out.loc[idx, "p_holm"] = holm(out.loc[idx, "p"].to_numpy())
    out["p_holm_all"] = holm(out["p"].to_numpy())
    out["significant"] = out["p_holm"] < alpha
    out = _possible(out, "n_datasets", ["method_a", "method_b"], alpha)
    cols = [
        "metric",
        "direction",
        "method_a",
        "method_b",
        "n_datasets",
        "n_nonzero",
        "median_diff",
        "statistic",
        "p",
        "p_holm",
        "p_holm_all",
        "effect_size",
        "better",
        "significant",
        "min_p_holm",
        "can_be_significant",
    ]
    return out[cols]


def wilcoxon_queries(
    qmeans: pd.DataFrame,
    metrics: Sequence[str],
    pairs,
    min_queries: int = 6,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per dataset: Wilcoxon signed-rank over queries (paired by query) per metric and pair.

    Tested only where at least ``min_queries`` queries have a value for both methods (below that
    the row is kept with ``tested = False`` and no p-value). ``p_holm``: Holm across the metrics
    within dataset × pair.
    """
    recs = []
    for dataset, g in qmeans.groupby("dataset", sort=True):
        for a, b in pairs:
            ga = g[g["method"] == a].set_index("query")
            gb = g[g["method"] == b].set_index("query")
            if ga.empty or gb.empty:
                continue
            common = ga.index.intersection(gb.index)
            for m in metrics:
                if m not in g:
                    continue
                va, vb = ga.loc[common, m].to_numpy(float), gb.loc[common, m].to_numpy(float)
                n = int((np.isfinite(va) & np.isfinite(vb)).sum())
                res = paired_wilcoxon(va, vb, direction(m))
                rec = {
                    "dataset": dataset,
                    "metric": m,
                    "direction": direction(m),
                    "method_a": a,
                    "method_b": b,
                    **_test_record(res, a, b),
                    "tested": n >= min_queries,
                }
                if n < min_queries:
                    rec.update(statistic=math.nan, p=math.nan)
                recs.append(rec)
    cols = [
        "dataset",
        "metric",
        "direction",
        "method_a",
        "method_b",
        "n_queries",
        "n_nonzero",
        "median_diff",
        "statistic",
        "p",
        "p_holm",
        "effect_size",
        "better",
        "tested",
        "significant",
        "min_p_holm",
        "can_be_significant",
    ]
    out = pd.DataFrame(recs)
    if out.empty:
        return pd.DataFrame(columns=cols)
    out = out.rename(columns={"n": "n_queries"})
    out["p_holm"] = np.nan
    for _, idx in out.groupby(["dataset", "method_a", "method_b"], sort=False).groups.items():
        out.loc[idx, "p_holm"] = holm(out.loc[idx, "p"].to_numpy())
    out["significant"] = out["p_holm"] < alpha
    out = _possible(out, "n_queries", ["dataset", "method_a", "method_b"], alpha)
    return out[cols]


def query_test_counts(wq: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per pair × metric: datasets where the per-query test favours A / B (Holm p < alpha)."""
    cols = ["metric", "method_a", "method_b", "tested", "a_better", "b_better", "not_significant"]
    if wq.empty:
        return pd.DataFrame(columns=cols)
    recs = []
    for (a, b, m), g in wq.groupby(["method_a", "method_b", "metric"], sort=False):
        t = g[g["tested"]]
        sig = t[t["p_holm"] < alpha]
        recs.append(
            {
                "metric": m,
                "method_a": a,
                "method_b": b,
                "tested": len(t),
                "a_better": int((sig["better"] == a).sum()),
                "b_better": int((sig["better"] == b).sum()),
                "not_significant": int(len(t) - len(sig)),
            }
        )
    return pd.DataFrame(recs, columns=cols)
