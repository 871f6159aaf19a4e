"""What a run writes into its directory, and reading it back."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from cfgen.metrics import explanation_of
from cfgen.plan import Task

COUNTERFACTUALS = "counterfactuals.csv"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
CONSTRAINTS = "constraints.json"
CONFIG = "config.yaml"
COMBINATIONS = "combinations.json"
CHANGES = "changes.csv"
QUERIES = "queries.csv"


def _atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file, fsync and rename, so a crash never leaves a half-written
    result (a failed write raises cfgen.rundir.OutputError naming the file)."""
    from cfgen.rundir import atomic_write

    atomic_write(path, text)


def _clean(obj: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: Path, obj: Any) -> None:
    _atomic_write_text(path, json.dumps(_clean(obj), indent=2, sort_keys=False) + "\n")


def counterfactual_frame(
    data: Any, tasks: Sequence[Task], results: Sequence[Any], predict, method: str
) -> pd.DataFrame:
    """One row per counterfactual, decoded into the data's own values, in task order.

    ``data`` has ``decode``, ``class_names`` and ``schema`` (a Dataset or Problem); ``results``
    are the runner's task results (their ``explanation``; the older flattened result works too).
    All tasks' rows are stacked, predicted and decoded once. ``role`` is the method's reason for
    each row (``explanation.roles``; empty when it gives none).
    """
    by_index = {r.index: r for r in results}
    d = len(data.schema)
    owners, sets, roles = [], [], []
    for t in tasks:
        r = by_index.get(t.index)
        if r is None:
            continue
        exp = explanation_of(r, d)
        m = len(exp.counterfactuals)
        if m == 0:
            continue
        owners.append(t)
        sets.append(np.asarray(exp.counterfactuals, dtype=float))
        given = list(exp.roles or [])
        roles.extend(given if len(given) == m else [""] * m)
    if not sets:
        cols = [
            "query",
            "method",
            "combination",
            "replication",
            "target",
            "cf",
            *data.schema.names,
            "predicted",
            "role",
        ]
        return pd.DataFrame(columns=cols)
    counts = np.array([len(c) for c in sets])
    cfs = np.vstack(sets)
    names = np.asarray(data.class_names, dtype=object)
    rep = functools.partial(np.repeat, repeats=counts)
    meta = pd.DataFrame(
        {
            "query": rep(np.array([t.query for t in owners], dtype=np.int64)),
            "method": method,
            "combination": rep(np.array([t.combination for t in owners], dtype=np.int64)),
            "replication": rep(np.array([t.replication for t in owners], dtype=np.int64)),
            "target": rep(names[[t.target for t in owners]]),
            "cf": np.arange(len(cfs)) - rep(np.cumsum(counts) - counts),
        }
    )
    frame = data.decode(cfs)
    frame["predicted"] = names[np.asarray(predict(cfs)).astype(int)]
    frame["role"] = roles
    return pd.concat([meta, frame], axis=1)


def write_frame(path: Path, frame: pd.DataFrame) -> None:
    """CSV with a fixed float format so reruns are byte-identical."""
    _atomic_write_text(path, frame.to_csv(index=False, float_format="%.10g", lineterminator="\n"))
