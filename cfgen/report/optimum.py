"""The report's "closest ÷ optimum" column: how far each method's closest counterfactual is from
the proven optimum of ``method=exact`` run on the same queries.

Needs per task (one row of ``metrics.csv``) the distance of the closest *valid* counterfactual
in the search's own metric — MAD-scaled L1 over non-categorical features plus one per changed
categorical (:class:`cfgen.search.distance.MixedDistance` with
:func:`cfgen.search.distance.feature_scale` of the training data) — in the column
``distance_search_min`` (NaN when the task found nothing valid). An ``exact`` task counts as
the optimum only when it did not time out (HiGHS proved it); queries whose optimum is 0 (the
query is already valid) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

KEYS = ("dataset", "query", "target", "combination")
COLUMNS = ("dataset", "method", "queries", "closest_over_optimum_median",
           "closest_over_optimum_p90", "at_optimum")


def closest_over_optimum(metrics: pd.DataFrame, *, distance: str = "distance_search_min",
                         exact: str = "exact", keys: Sequence[str] = KEYS,
                         atol: float = 1e-9) -> pd.DataFrame:
    """Per dataset and method (``exact`` itself included): over the tasks whose query has a
    proven optimum, the median and 90th percentile of the method's ``distance`` over the
    optimum, and the share of tasks within ``atol`` (relative) of it. Empty when no ``exact``
    task is present. ``metrics`` needs ``method``, ``timed_out``, ``distance`` and ``keys``."""
    keys = [k for k in keys if k in metrics.columns]
    ex = metrics[(metrics["method"] == exact) & ~metrics["timed_out"].astype(bool)]
    ex = ex[np.isfinite(ex[distance]) & (ex[distance] > 0)]
    if ex.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    opt = ex.groupby(keys, sort=False)[distance].min().rename("_optimum").reset_index()
    df = metrics.merge(opt, on=keys, how="inner")
    df = df[np.isfinite(df[distance])]
    ratio = df[distance] / df["_optimum"]
    df = df.assign(_ratio=ratio)
    rows = []
    for (name, method), g in df.groupby(["dataset", "method"], sort=False):
        r = g["_ratio"]
        rows.append({"dataset": name, "method": method, "queries": int(len(r)),
                     "closest_over_optimum_median": float(r.median()),
                     "closest_over_optimum_p90": float(r.quantile(0.9)),
                     "at_optimum": float(np.mean(r <= 1.0 + atol))})
    return pd.DataFrame(rows, columns=list(COLUMNS))
