"""One experiment, end to end: config → data → model → bounds → tasks → results → files.

:func:`run` is what ``python -m cfgen`` calls inside Hydra's run directory; tests call it directly
with a composed config.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from cfgen import store
from cfgen.config import validate
from cfgen.constraints import ClassBounds, mine_class_bounds
from cfgen.data import Dataset, load_dataset
from cfgen.journal import Journal
from cfgen.launcher import TaskResult, WorkerContext, run_tasks
from cfgen.metrics import METRIC_NAMES, MetricContext, aggregate
from cfgen.models import FittedModel, fit_model
from cfgen.plan import (
    Combinations,
    Task,
    choose_queries,
    count_text,
    iter_targets,
    plan_tasks,
)
from cfgen.tracking import make_tracker

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """Everything a run produced, for callers that want more than the files."""

    run_dir: Path
    data: Dataset
    model: FittedModel
    bounds: ClassBounds | None
    tasks: list[Task]
    results: list[TaskResult]
    metrics: pd.DataFrame
    counterfactuals: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def task_metrics(
    ctx: MetricContext,
    data: Dataset,
    combinations: Combinations,
    tasks: list[Task],
    results: list[TaskResult],
    k: int,
) -> pd.DataFrame:
    """One row per task: coordinates, the full metric suite, and how the search ended."""
    schemas: dict[int, object] = {}
    rows = []
    by_index = {r.index: r for r in results}
    for t in tasks:
        r = by_index[t.index]
        if t.combination not in schemas:
            schemas[t.combination] = data.schema.with_rules(combinations[t.combination])
        row: dict[str, Any] = {
            "query": t.query,
            "target": t.target,
            "combination": t.combination,
            "replication": t.replication,
        }
        row.update(ctx.compute(data.X_test[t.query], r.counterfactuals, t.target, k, r.seconds,
                               schema=schemas[t.combination]))
        row.update(
            generations=r.generations,
            final_fitness=float(r.best_fitness[-1]) if len(r.best_fitness) else np.nan,
            timed_out=bool(getattr(r, "timed_out", False)),
            reason=r.reason or "",
            error=r.error.splitlines()[0] if r.error else "",
        )
        rows.append(row)
    return pd.DataFrame(rows)


def console_table(data: Dataset, model: FittedModel, metrics: pd.DataFrame) -> str:
    """Per query and target: original class, valid counterfactuals found, distance, changes, s."""
    if metrics.empty:
        return "(no tasks)"
    orig = model.estimator.predict(data.X_test[metrics["query"].to_numpy()])
    m = metrics.assign(original=[data.class_names[int(c)] for c in orig],
                       target_name=[data.class_names[int(c)] for c in metrics["target"]])
    agg = (
        m.groupby(["query", "original", "target_name"], sort=True)
        .agg(valid=("nbr_valid_cf", "mean"), distance=("distance_mad", "mean"),
             changes=("avg_nbr_changes_per_cf", "mean"), seconds=("runtime", "mean"))
        .reset_index()
        .rename(columns={"target_name": "target", "valid": "valid_cfs"})
    )
    return agg.to_string(index=False, float_format=lambda v: f"{v:.3f}")


def run(cfg: DictConfig, run_dir: str | Path) -> RunResult:
    """Run the experiment described by ``cfg``, writing its files into ``run_dir``."""
    validate(cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    tracker = make_tracker(cfg, run_dir)
    try:
        result = _run(cfg, run_dir, tracker, started)
    except BaseException:
        tracker.finish(failed=True)
        raise
    tracker.finish()
    return result


def _run(cfg: DictConfig, run_dir: Path, tracker, started: float) -> RunResult:
    ep = cfg.experiment_params
    data = load_dataset(cfg.dataset)
    log.info("dataset %s: %d train / %d test rows, %d features, %d classes", data.name,
             len(data.X_train), len(data.X_test), len(data.schema), data.n_classes)
    model = fit_model(cfg.model, data)
    log.info("model %s: train accuracy %.3f, test accuracy %.3f", type(model.estimator).__name__,
             model.train_accuracy, model.test_accuracy)
    bounds = mine_class_bounds(
        model.estimator, data.schema, **OmegaConf.to_container(cfg.constraints, resolve=True),
        X_train=data.X_train,
    )
    bounds_dict = bounds.to_dict(data.class_names) if bounds is not None else {"mode": "none"}
    store.write_json(run_dir / store.CONSTRAINTS, bounds_dict)
    tracker.log_setup({
        "config": OmegaConf.to_container(cfg, resolve=True),
        "train_accuracy": model.train_accuracy,
        "test_accuracy": model.test_accuracy,
        "model_seconds": model.seconds,
    })
    tracker.log_bounds(bounds_dict)

    queries = choose_queries(len(data.X_test), ep.num_samples, ep.sample_indices, ep.seed)
    pred = model.estimator.predict(data.X_test[queries])
    targets = list(iter_targets(pred, data.n_classes, ep.target_class))
    comb = Combinations.for_schema(data.schema, ep.rules)
    combos = comb.chosen(ep.num_combinations_to_test, seed=ep.seed)
    tasks = plan_tasks(queries, targets, combos, ep.num_replications, ep.seed)
    log.info("%d tasks: %d queries, %d of %s combinations, %d replications", len(tasks),
             len(queries), len(combos), count_text(comb.total), ep.num_replications)

    store.write_json(run_dir / store.COMBINATIONS, {
        "rules": list(comb.rules), "free_features": list(comb.free),
        "tested": {str(i): {k: v.value for k, v in comb[i].items()} for i in combos},
    })
    ctx = WorkerContext(data, model, bounds, cfg.method.name,
                        OmegaConf.to_container(cfg.ga, resolve=True), comb,
                        ep.num_counterfactuals, time_limit=cfg.method.time_limit)
    with Journal.open(run_dir, cfg, data, tasks, ep.resume) as journal:
        results = run_tasks(tasks, ctx, ep.parallel_replications, ep.max_workers,
                            journal=journal)
        journal.close(complete=True)

    cf_frame = store.counterfactual_frame(data, tasks, results, model.estimator.predict,
                                          cfg.method.name)
    store.write_frame(run_dir / store.COUNTERFACTUALS, cf_frame)
    metric_ctx = MetricContext(data.schema, data.X_train, data.y_train, data.X_test,
                               model.predictor.predict_proba, compat=cfg.metrics.compat)
    metrics = task_metrics(metric_ctx, data, comb, tasks, results, ep.num_counterfactuals)
    metrics.insert(0, "method", cfg.method.name)
    metrics.insert(0, "dataset", data.name)
    store.write_frame(run_dir / store.METRICS, metrics)
    failed = int((metrics["error"] != "").sum()) if len(metrics) else 0
    summary = {
        "dataset": data.name,
        "method": cfg.method.name,
        "n_train": len(data.X_train),
        "n_test": len(data.X_test),
        "train_accuracy": model.train_accuracy,
        "test_accuracy": model.test_accuracy,
        "model_seconds": model.seconds,
        "bounds_seconds": bounds.seconds if bounds is not None else 0.0,
        "n_tasks": len(tasks),
        "n_failed": failed,
        "queries": queries,
        "validity": float(metrics["perc_valid_cf_all"].mean()) if len(metrics) else 0.0,
        "metrics_compat": cfg.metrics.compat,
        "metrics": aggregate(metrics[list(METRIC_NAMES)].to_dict("records")),
        "wall_seconds": time.perf_counter() - started,
    }
    if cfg.output.plots:
        from cfgen.plots.run import write_run_plots

        write_run_plots(run_dir, data, bounds, tasks, results, ep.num_counterfactuals)
    store.write_json(run_dir / store.SUMMARY, summary)
    (run_dir / store.CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    by_index = {r.index: r for r in results}
    for t, row in zip(tasks, metrics.to_dict("records"), strict=True):
        tracker.log_task(t, by_index[t.index], row)
    tracker.log_summary(summary)
    tracker.log_files(run_dir)
    return RunResult(run_dir, data, model, bounds, tasks, results, metrics, cf_frame, summary)
