"""Summaries over a run's metric rows: per-metric statistics and the run's one failure count.

:func:`summarize_rows` is the single definition of what a run reports about itself (console
line, ``summary.json``, W&B): a task *failed* when it raised (``error``) or went over its time
limit (``timed_out``); ``validity`` is the mean ``perc_valid_cf_all`` over **all** tasks, a failed
one counting 0. ``cfgen.report.load`` reads ``metrics.csv`` with the same rule.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from cfgen.metrics.names import METRIC_NAMES


def _number(v) -> float | None:
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    return None


def aggregate(
    rows: Sequence[Mapping[str, object]] | Iterable[Mapping[str, object]],
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float | int | None]]:
    """Per metric over ``rows`` (one dict per query): mean, std, n and a bootstrap CI of the mean.

    NaN values (undefined metrics, e.g. distances of an empty set) are left out; ``n`` counts the
    rest. ``std`` is the sample standard deviation (ddof=1). The CI is the percentile interval of
    ``n_boot`` bootstrap means, drawn with ``numpy.random.default_rng(seed)`` afresh for each
    metric, so it is deterministic and independent of which other metrics are present. Undefined
    entries are ``None`` (JSON ``null``), so the result serialises as strict JSON. Non-numeric
    values (e.g. a method name) are skipped.
    """
    rows = list(rows)
    names: list[str] = []
    for row in rows:
        for key, v in row.items():
            if key not in names and _number(v) is not None:
                names.append(key)
    lo_q, hi_q = 50.0 * (1.0 - confidence), 50.0 * (1.0 + confidence)

    def clean(v: float) -> float | None:
        return None if not math.isfinite(v) else float(v)

    result: dict[str, dict[str, float | int | None]] = {}
    for name in names:
        vals = np.array(
            [f for row in rows if (f := _number(row.get(name))) is not None and not math.isnan(f)],
            dtype=float,
        )
        n = int(vals.size)
        if n == 0:
            result[name] = {"mean": None, "std": None, "n": 0, "ci_low": None, "ci_high": None}
            continue
        mean = float(vals.mean())
        std = float(vals.std(ddof=1)) if n > 1 else math.nan
        if n > 1 and np.all(np.isfinite(vals)):
            rng = np.random.default_rng(seed)
            idx = rng.integers(0, n, size=(n_boot, n))
            boots = vals[idx].mean(axis=1)
            ci_low, ci_high = (float(q) for q in np.percentile(boots, [lo_q, hi_q]))
        else:
            ci_low = ci_high = mean
        result[name] = {
            "mean": clean(mean),
            "std": clean(std),
            "n": n,
            "ci_low": clean(ci_low),
            "ci_high": clean(ci_high),
        }
    return result


def _flags(col: pd.Series) -> pd.Series:
    """A ``timed_out`` column as booleans, whether it came from a frame or from a CSV."""
    if col.dtype == bool:
        return col
    return col.astype(str).str.strip().str.lower().isin(("true", "1", "1.0", "yes"))


def failure_mask(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per row: ``(errored, timed_out)`` (``error`` non-empty; ``timed_out`` true)."""
    none = pd.Series(False, index=frame.index)
    err = frame["error"] if "error" in frame else none
    errored = pd.Series([isinstance(v, str) and v != "" for v in err], index=frame.index)
    timed_out = _flags(frame["timed_out"]) if "timed_out" in frame else none
    return errored, timed_out


def summarize_rows(
    rows: pd.DataFrame | Sequence[Mapping[str, object]], **aggregate_kw: Any
) -> dict[str, Any]:
    """What a run says about its tasks, from its metric rows (a ``metrics_frame`` or its CSV).

    Returns ``n_tasks``; ``n_failed`` = errors + time-outs (a task that both raised and timed
    out counts once); ``n_timed_out`` and ``n_errors`` separately; ``validity``: mean of
    ``perc_valid_cf_all`` over all tasks (a failed or undefined row counts 0; 0.0 without
    tasks); ``metrics``: :func:`aggregate` of the metric columns (``aggregate_kw`` passed on).
    """
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    errored, timed_out = failure_mask(frame)
    failed = errored | timed_out
    if len(frame) and "perc_valid_cf_all" in frame:
        valid = pd.to_numeric(frame["perc_valid_cf_all"], errors="coerce").astype(float)
        validity = float(valid.where(~failed, 0.0).fillna(0.0).mean())
    else:
        validity = 0.0
    names = [n for n in METRIC_NAMES if n in frame]
    return {
        "n_tasks": len(frame),
        "n_failed": int(failed.sum()),
        "n_timed_out": int(timed_out.sum()),
        "n_errors": int(errored.sum()),
        "validity": validity,
        "metrics": aggregate(frame[names].to_dict("records"), **aggregate_kw),
    }
