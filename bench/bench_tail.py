"""Benchmark: the post-search tail of a run (metrics + counterfactuals.csv + metrics.csv).

Run ``python bench/bench_tail.py`` (options: ``--cases german_credit:400,satimage:100``,
``--repeats 5``, ``--out FILE``); writes ``bench/results/tail.md``.

Per case the problem is built with cfgen's own loaders (``cfgen.data.load_dataset`` +
``cfgen.models.fit_model`` + ``cfgen.constraints.mine_class_bounds`` from the composed Hydra
config), the tasks are planned as a run plans them, and the searches run **once**, in this
process, with the current genetic search (``dpg_ga``, ``ga=default``): their wall time is the
reference. The tail variants then run on the same results, interleaved, ``--repeats`` times:

* ``before``: the code of commit ``LEGACY`` (``cfgen/metrics.py`` and ``cfgen/store.py`` read
  with ``git show``; the per-task ``task_metrics`` loop of its ``cfgen/experiment.py``);
* ``after``: :func:`cfgen.metrics.metrics_frame` (batched over all tasks) and the vectorised
  :func:`cfgen.store.counterfactual_frame`;
* ``after, per task``: :func:`cfgen.metrics.task_row` once per task (what a worker would do).

Each variant includes building the metric context, both frames and writing both CSV files.
The table reports medians and the ratio to the search time (target: ``after`` ≤ 0.25×), and
checks that ``after`` reproduces ``before``: the largest absolute difference of every metric
(NaN where both are NaN) and whether ``counterfactuals.csv`` is byte-identical without the
new ``role`` column.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import types
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cfgen import store  # noqa: E402
from cfgen.constraints import mine_class_bounds  # noqa: E402
from cfgen.data import load_dataset  # noqa: E402
from cfgen.launcher import WorkerContext, run_tasks  # noqa: E402
from cfgen.models import fit_model  # noqa: E402
from cfgen.plan import Combinations, choose_queries, iter_targets, plan_tasks  # noqa: E402

OUT = ROOT / "bench" / "results" / "tail.md"
LEGACY = "b8ad39b"  # main before the metrics package (per-task metrics, per-task decoding)
K = 5


# ---------------------------------------------------------------------------- legacy code
def _legacy_module(name: str, path: str) -> types.ModuleType:
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{LEGACY}:{path}"], check=True,
                         capture_output=True, text=True).stdout
    mod = types.ModuleType(name)
    exec(compile(src, f"{LEGACY}:{path}", "exec"), mod.__dict__)  # noqa: S102 - our own history
    return mod


def legacy_task_metrics(ctx, data, combinations, tasks, results, k) -> pd.DataFrame:
    """``cfgen.experiment.task_metrics`` as of ``LEGACY`` (one ``compute`` per task)."""
    schemas: dict[int, Any] = {}
    rows = []
    by_index = {r.index: r for r in results}
    for t in tasks:
        r = by_index[t.index]
        if t.combination not in schemas:
            schemas[t.combination] = data.schema.with_rules(combinations[t.combination])
        row: dict[str, Any] = {"query": t.query, "target": t.target,
                               "combination": t.combination, "replication": t.replication}
        row.update(ctx.compute(data.X_test[t.query], r.counterfactuals, t.target, k, r.seconds,
                               schema=schemas[t.combination]))
        row.update(generations=r.generations,
                   final_fitness=float(r.best_fitness[-1]) if len(r.best_fitness) else np.nan,
                   timed_out=bool(getattr(r, "timed_out", False)), reason=r.reason or "",
                   error=r.error.splitlines()[0] if r.error else "")
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- the problem
def compose(dataset: str, n_tasks: int):
    from hydra import compose as hcompose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cfgen.cli import CONF_DIR
    from cfgen.config import register

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hcompose(config_name="config", overrides=[f"dataset={dataset}"])


def build_case(dataset: str, n_tasks: int) -> dict[str, Any]:
    """Data, forest, bounds, ``n_tasks`` planned tasks and their search results."""
    from omegaconf import OmegaConf

    cfg = compose(dataset, n_tasks)
    data = load_dataset(cfg.dataset)
    model = fit_model(cfg.model, data)
    bounds = mine_class_bounds(model.estimator, data.schema,
                               **OmegaConf.to_container(cfg.constraints, resolve=True),
                               X_train=data.X_train)
    per_query = max(1, data.n_classes - 1)
    n_queries = min(len(data.X_test), max(1, n_tasks // per_query))
    reps = max(1, -(-n_tasks // (n_queries * per_query)))
    queries = choose_queries(len(data.X_test), n_queries, None, 42)
    targets = list(iter_targets(model.estimator.predict(data.X_test[queries]), data.n_classes,
                                None))
    comb = Combinations.for_schema(data.schema, ["none"])
    tasks = plan_tasks(queries, targets, comb.chosen(None, seed=42), reps, 42)[:n_tasks]
    ctx = WorkerContext(data, model, bounds, "dpg_ga",
                        OmegaConf.to_container(cfg.ga, resolve=True), comb, K)
    start = time.perf_counter()
    results = run_tasks(tasks, ctx, False, None, progress=False)
    search = time.perf_counter() - start
    return dict(cfg=cfg, data=data, model=model, comb=comb, tasks=tasks, results=results,
                search=search, compat=str(cfg.metrics.compat))
