"""What a run writes into its directory, and reading it back."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from cfgen.data import Dataset
from cfgen.launcher import TaskResult
from cfgen.plan import Task

COUNTERFACTUALS = "counterfactuals.csv"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
CONSTRAINTS = "constraints.json"
CONFIG = "config.yaml"
COMBINATIONS = "combinations.json"


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
    data: Dataset, tasks: Sequence[Task], results: Sequence[TaskResult], predict, method: str
) -> pd.DataFrame:
    """One row per counterfactual, decoded into the data's own values, in task order."""
    by_index = {r.index: r for r in results}
    blocks = []
    for t in tasks:
        r = by_index.get(t.index)
        if r is None or len(r.counterfactuals) == 0:
            continue
        cfs = r.counterfactuals
        frame = data.decode(cfs)
        pred = np.asarray(predict(cfs))
        meta = pd.DataFrame(
            {
                "query": t.query,
                "method": method,
                "combination": t.combination,
                "replication": t.replication,
                "target": data.class_names[t.target],
                "cf": np.arange(len(cfs)),
            }
        )
        frame["predicted"] = [data.class_names[int(p)] for p in pred]
        blocks.append(pd.concat([meta, frame], axis=1))
    if not blocks:
        cols = ["query", "method", "combination", "replication", "target", "cf",
                *data.schema.names, "predicted"]
        return pd.DataFrame(columns=cols)
    return pd.concat(blocks, ignore_index=True)


def write_frame(path: Path, frame: pd.DataFrame) -> None:
    """CSV with a fixed float format so reruns are byte-identical."""
    _atomic_write_text(path, frame.to_csv(index=False, float_format="%.10g", lineterminator="\n"))
