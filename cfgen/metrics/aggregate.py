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
    return {
        name: _describe(
            np.array(
                [
                    f
                    for row in rows
                    if (f := _number(row.get(name))) is not None and not math.isnan(f)
                ],
                dtype=float,
            ),
            n_boot=n_boot,
            confidence=confidence,
            seed=seed,
        )
        for name in names
    }


def _describe(
    vals: np.ndarray,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    draws: dict[int, np.ndarray] | None = None,
) -> dict[str, float | int | None]:
    """:func:`aggregate`'s entry for one metric's values (NaN already left out).

    ``draws`` keeps the bootstrap indices by ``n`` across metrics: a fresh generator of the
    same seed draws the same indices for the same ``n``, so they are drawn once."""
    lo_q, hi_q = 50.0 * (1.0 - confidence), 50.0 * (1.0 + confidence)

    def clean(v: float) -> float | None:
        return None if not math.isfinite(v) else float(v)

    n = int(vals.size)
    if n == 0:
        return {"mean": None, "std": None, "n": 0, "ci_low": None, "ci_high": None}
    mean = float(vals.mean())
    std = float(vals.std(ddof=1)) if n > 1 else math.nan
    if n > 1 and np.all(np.isfinite(vals)):
        idx = draws.get(n) if draws is not None else None
        if idx is None:
            idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
            if draws is not None:
                draws[n] = idx
        boots = vals[idx].mean(axis=1)
        ci_low, ci_high = (float(q) for q in np.percentile(boots, [lo_q, hi_q]))
    else:
        ci_low = ci_high = mean
    return {
        "mean": clean(mean),
        "std": clean(std),
        "n": n,
        "ci_low": clean(ci_low),
        "ci_high": clean(ci_high),
    }


def aggregate_frame(frame: pd.DataFrame, **aggregate_kw: Any) -> dict[str, dict[str, Any]]:
    """:func:`aggregate` of a frame's rows, column by column when every column is a plain
    numeric (or bool) one: the same numbers without a Python loop over the rows."""
    numeric = all(frame[c].dtype.kind in "biuf" for c in frame.columns)
    if not len(frame) or not numeric:
        return aggregate(frame.to_dict("records"), **aggregate_kw)
    out = {}
    draws: dict[int, np.ndarray] = {}
    for name in frame.columns:
        vals = frame[name].to_numpy(dtype=float)
        out[str(name)] = _describe(vals[~np.isnan(vals)], draws=draws, **aggregate_kw)
    return out


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
        "metrics": aggregate_frame(frame[names], **aggregate_kw),
    }
