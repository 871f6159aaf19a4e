"""One experiment, end to end: config → problem → bounds → tasks → results → files.

:func:`run` is what ``python -m cfgen`` calls inside Hydra's run directory; tests call it directly
with a composed config. Data flows one way: the :class:`~cfgen.problem.Problem` is built once,
the method plug-in is instantiated from ``cfg.method``, class bounds are mined only when the
method needs them, the runner returns one result per task, and the files are written from those.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from cfgen import rundir, store
from cfgen.config import validate
from cfgen.errors import ConfigError
from cfgen.journal import Journal
from cfgen.methods import method_factory, needs_bounds
from cfgen.metrics import MetricContext, combination_schemas, metrics_frame, summarize_rows
from cfgen.plan import (
    Combinations,
    Task,
    choose_queries,
    count_text,
    iter_targets,
    plan_tasks,
    plural,
)
from cfgen.problem import Problem
from cfgen.runner import TaskResult, WorkerContext, run_tasks
from cfgen.tracking import make_tracker

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """Everything a run produced, for callers that want more than the files."""

    run_dir: Path
    problem: Problem
    bounds: Any
    tasks: list[Task]
    results: list[TaskResult]
    metrics: pd.DataFrame
    counterfactuals: pd.DataFrame
    combinations: Combinations
    summary: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- bounds
def _no_trees_note(problem: Problem) -> str:
    """``summary.json``'s reason for running without bounds (the tree view's own line)."""
    why = getattr(problem, "trees_note", "")
    return "model is not a tree ensemble" + (f" ({why})" if why else "")


def _mapping(node: Any) -> dict[str, Any]:
    plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    return {str(k): v for k, v in plain.items()} if isinstance(plain, dict) else {}


def resolve_bounds(
    problem: Problem, factory: functools.partial, method_cfg: Any, X_train: np.ndarray
) -> tuple[Any, dict[str, Any]]:
    """Mine the class bounds the method needs (or none), and say what was done.

    ``method.bounds.mode=auto`` picks the miner that fits the model (``dpg`` for voting
    forests, ``paths`` for boosted trees) and runs without bounds for a model that is not a tree
    ensemble (logged, and recorded in ``summary.json``); an explicit miner on such a model is an
    error.
    """
    from cfgen.constraints import mine_class_bounds

    if not needs_bounds(factory):
        return None, {
            "uses_bounds": False,
            "bounds_mode": "none",
            "bounds_note": "the method does not use class bounds",
        }
    node = method_cfg.bounds if OmegaConf.is_config(method_cfg) else method_cfg.get("bounds", {})
    conf: dict[str, Any] = dict(_mapping(node))
    mode = conf.pop("mode", "auto")
    if problem.trees is None:
        if mode not in ("auto", "none"):
            raise ConfigError(
                f"method.bounds.mode={mode!r} needs a tree ensemble, and model "
                f"{type(problem.model).__name__} is not one: use method.bounds.mode=auto or "
                "none (the search then runs without class bounds)"
            )
        if mode == "auto":
            log.info(
                "model %s is not a tree ensemble: dpg_ga runs without class bounds "
                "(method.bounds.mode=none)",
                type(problem.model).__name__,
            )
        return None, {
            "uses_bounds": False,
            "bounds_mode": "none",
            "bounds_note": _no_trees_note(problem) if mode == "auto" else "method.bounds.mode=none",
        }
    if mode == "auto":
        mode = "dpg" if getattr(problem.trees, "kind", "vote") == "vote" else "paths"
    if mode == "none":
        return None, {
            "uses_bounds": False,
            "bounds_mode": "none",
            "bounds_note": "method.bounds.mode=none",
        }
    bounds = mine_class_bounds(
        problem.trees, problem.schema, mode=mode, X_train=X_train, key="method.bounds", **conf
    )
    assert bounds is not None  # mode is a miner here
    log.info("class bounds (%s) mined in %.3f s", mode, bounds.seconds)
    return bounds, {"uses_bounds": True, "bounds_mode": mode, "bounds_note": ""}


def model_warning(problem: Problem) -> str:
    """A model not worth explaining, said loudly: one predicted class, or a test accuracy at or
    below the majority-class rate (empty when neither)."""
    y = problem.y_test
    if len(y) == 0:
        return ""
    pred = problem.predict(problem.X_test)
    majority = float(np.bincount(y).max() / len(y))
    if len(np.unique(pred)) == 1:
        return (
            f"the model predicts one class ({problem.class_names[int(pred[0])]}) for every "
            "test row: its counterfactuals explain a constant"
        )
    if problem.test_accuracy <= majority:
        return (
            f"test accuracy {problem.test_accuracy:.3f} is at or below the majority-class "
            f"rate {majority:.3f}: the model has learnt nothing a constant does not know"
        )
    return ""


# ----------------------------------------------------------------------------- the run
def run(cfg: DictConfig, run_dir: str | Path) -> RunResult:
    """Run the experiment described by ``cfg``, writing its files into ``run_dir``."""
    validate(cfg)
    run_dir = Path(run_dir)
    started = time.perf_counter()
    # one run per directory (RunDirBusy/RunDirError: one line, exit 2); a failed write of the
    # run's files becomes OutputError (one line, exit 1), the journal staying resumable
    with rundir.prepare(run_dir), rundir.output_errors(run_dir):
        rundir.mark_unfinished(run_dir, store.SUMMARY)
        tracker = make_tracker(cfg, run_dir)
        try:
            result = _run(cfg, run_dir, tracker, started)
        except BaseException:
            tracker.finish(failed=True)
            raise
        tracker.finish()
    return result


def _setup(cfg: DictConfig, run_dir: Path, tracker: Any) -> tuple[Problem, Any, Any, dict]:
    """Problem, method factory and class bounds (written to constraints.json)."""
    problem = Problem.from_config(cfg.dataset, cfg.model)
    log.info(
        "dataset %s: %d train / %d test rows, %d features, %d classes",
        problem.name,
        len(problem.X_train),
        len(problem.X_test),
        problem.d,
        problem.n_classes,
    )
    log.info(
        "model %s: train accuracy %.3f, test accuracy %.3f",
        type(problem.model).__name__,
        problem.train_accuracy,
        problem.test_accuracy,
    )
    factory = method_factory(cfg.method)
    preflight = getattr(factory.func, "preflight", None)  # a method may refuse up front
    if preflight is not None:
        from cfgen.runner.resources import available_memory

        preflight(
            factory.keywords, problem, cfg.experiment_params.num_counterfactuals, available_memory()
        )
    bounds, info = resolve_bounds(problem, factory, cfg.method, problem.X_train)
    info["model_warning"] = model_warning(problem)
    if info["model_warning"]:
        log.warning("MODEL WARNING: %s", info["model_warning"])
    bounds_dict = (
        bounds.to_dict(problem.class_names)
        if bounds is not None
        else {"mode": "none", "note": info["bounds_note"]}
    )
    store.write_json(run_dir / store.CONSTRAINTS, bounds_dict)
    tracker.log_setup(
        {
            "config": OmegaConf.to_container(cfg, resolve=True),
            "train_accuracy": problem.train_accuracy,
            "test_accuracy": problem.test_accuracy,
            "model_seconds": problem.model_seconds,
        }
    )
    tracker.log_bounds(bounds_dict)
    info["bounds_seconds"] = bounds.seconds if bounds is not None else 0.0
    info["method_target"] = str(cfg.method._target_)
    return problem, factory, bounds, info


def _explained(cfg: DictConfig, problem: Problem, run_dir: Path) -> tuple[Problem, list[int]]:
    """The rows to explain (a problem whose ``X_test`` holds them) and the chosen positions;
    ``queries.csv`` lists them with their source row ids and the model's probabilities."""
    from cfgen.data import load_queries, queries_frame

    ep = cfg.experiment_params
    data = problem.codec
    if ep.queries is not None:
        X, ids = load_queries(ep.queries, data)
        explained = dataclasses.replace(problem, X_test=X, y_test=np.full(len(X), -1))
        positions = list(range(len(X)))
        if ep.sample_indices is not None:
            positions = choose_queries(len(X), ep.num_samples, ep.sample_indices, ep.seed)
    else:
        explained = problem
        positions = choose_queries(len(problem.X_test), ep.num_samples, ep.sample_indices, ep.seed)
        ids = np.asarray(getattr(data, "row_id_test", np.full(len(problem.X_test), -1)))
    frame = queries_frame(
        data, explained.X_test[positions], ids[positions].tolist(), problem.predictor.predict_proba
    )
    frame["query"] = positions
    store.write_frame(run_dir / store.QUERIES, frame)
    return explained, positions


def _plan(
    cfg: DictConfig, problem: Problem, queries: list[int], run_dir: Path
) -> tuple[Combinations, list[Task]]:
    from cfgen.data import resolve_target

    ep = cfg.experiment_params
    pred = problem.predict(problem.X_test[queries])
    target = resolve_target(ep.target_class, problem.class_names)
    targets = list(iter_targets(pred, problem.n_classes, target))
    comb = Combinations.for_schema(problem.schema, ep.rules)
    combos = comb.chosen(ep.num_combinations_to_test, seed=ep.seed)
    tasks = plan_tasks(queries, targets, combos, ep.num_replications, ep.seed)
    log.info(
        "%s: %s, %d of %s combinations, %s",
        plural(len(tasks), "task"),
        plural(len(queries), "query", "queries"),
        len(combos),
        count_text(comb.total),
        plural(ep.num_replications, "replication"),
    )
    store.write_json(
        run_dir / store.COMBINATIONS,
        {
            "rules": list(comb.rules),
            "free_features": list(comb.free),
            "tested": {str(i): {k: v.value for k, v in comb[i].items()} for i in combos},
        },
    )
    return comb, tasks


def _summary(
    cfg: DictConfig,
    problem: Problem,
    info: dict,
    tasks: list[Task],
    queries: list[int],
    metrics: pd.DataFrame,
    started: float,
) -> dict[str, Any]:
    told = summarize_rows(metrics)  # one definition of failure: errors and time-outs
    return {
        "dataset": problem.name,
        "class_names": list(problem.class_names),
        "method": cfg.method.name,
        "method_target": info["method_target"],
        "model": type(problem.model).__name__,
        "model_target": str(cfg.model._target_),
        "uses_bounds": info["uses_bounds"],
        "bounds_mode": info["bounds_mode"],
        "bounds_note": info["bounds_note"],
        "n_train": len(problem.X_train),
        "n_test": len(problem.X_test),
        "train_accuracy": problem.train_accuracy,
        "test_accuracy": problem.test_accuracy,
        "model_warning": info["model_warning"],
        "model_seconds": problem.model_seconds,
        "bounds_seconds": info["bounds_seconds"],
        "n_tasks": told["n_tasks"],
        "n_failed": told["n_failed"],
        "n_timed_out": told["n_timed_out"],
        "n_errors": told["n_errors"],
        "queries": queries,
        "validity": told["validity"],
        "metrics_compat": cfg.metrics.compat,
        "metrics": told["metrics"],
        "wall_seconds": time.perf_counter() - started,
    }


def _files(
    cfg: DictConfig,
    run_dir: Path,
    problem: Problem,
    explained: Problem,
    comb: Combinations,
    tasks: list[Task],
    results: list[TaskResult],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """counterfactuals.csv, changes.csv and metrics.csv (the post-search phase, shown)."""
    from cfgen.changes import mh_distance, run_changes
    from cfgen.console import phase

    ep = cfg.experiment_params
    with phase("writing counterfactuals and diffs"):
        cf_frame = store.counterfactual_frame(
            explained, tasks, results, problem.predict, cfg.method.name
        )
        store.write_frame(run_dir / store.COUNTERFACTUALS, cf_frame)
        changes = run_changes(
            explained,
            tasks,
            results,
            problem.predictor.predict_proba,
            cfg.method.name,
            mh_distance(problem.schema, problem.X_train),
        )
        store.write_frame(run_dir / store.CHANGES, changes)
    with phase("metrics", total=len(tasks)) as shown:
        metric_ctx = MetricContext(
            problem.schema,
            problem.X_train,
            problem.y_train,
            explained.X_test,
            problem.predictor.predict_proba,
            compat=cfg.metrics.compat,
        )
        metrics = metrics_frame(
            metric_ctx,
            tasks,
            results,
            ep.num_counterfactuals,
            combination_schemas(problem.schema, comb, tasks),
        )
        metrics.insert(0, "method", cfg.method.name)
        metrics.insert(0, "dataset", problem.name)
        store.write_frame(run_dir / store.METRICS, metrics)
        shown.advance(len(tasks))
    return cf_frame, metrics


def _run(cfg: DictConfig, run_dir: Path, tracker: Any, started: float) -> RunResult:
    ep = cfg.experiment_params
    problem, factory, bounds, info = _setup(cfg, run_dir, tracker)
    explained, queries = _explained(cfg, problem, run_dir)
    comb, tasks = _plan(cfg, explained, queries, run_dir)
    ctx = WorkerContext(explained, factory, bounds, comb, ep.num_counterfactuals)
    with Journal.open(run_dir, cfg, explained, tasks, ep.resume) as journal:
        results = run_tasks(
            tasks,
            ctx,
            ep.parallel_replications,
            ep.max_workers,
            journal=journal,
            executor=ep.executor,
            slurm=ep.slurm,
            resume=ep.resume,
        )
        journal.close(complete=True)
    cf_frame, metrics = _files(cfg, run_dir, problem, explained, comb, tasks, results)
    from cfgen.console import phase

    with phase("summary"):
        summary = _summary(cfg, problem, info, tasks, queries, metrics, started)
    if cfg.output.plots:
        from cfgen.plots.run import write_run_plots

        with phase("plots"):
            write_run_plots(run_dir, explained, bounds, tasks, results, ep.num_counterfactuals)
    rundir.atomic_write(run_dir / store.CONFIG, OmegaConf.to_yaml(cfg, resolve=True))
    store.write_json(run_dir / store.SUMMARY, summary)  # the "finished" marker
    summary["report_seconds"] = _report(run_dir)
    # what the user waited for, report included (summary.json is rewritten, still last)
    summary["wall_seconds"] = time.perf_counter() - started
    store.write_json(run_dir / store.SUMMARY, summary)
    by_index = {r.index: r for r in results}
    for t, row in zip(tasks, metrics.to_dict("records"), strict=True):
        tracker.log_task(t, by_index[t.index], row)
    tracker.log_summary(summary)
    tracker.log_files(run_dir)
    return RunResult(run_dir, explained, bounds, tasks, results, metrics, cf_frame, comb, summary)


def _report(run_dir: Path) -> float:
    """report.html beside the results (a failure to render it is a warning, never a lost run);
    its seconds. It reads summary.json, so the page's wall time is the one before it."""
    from cfgen.console import phase
    from cfgen.report.run_report import write_run_report

    with phase("report") as shown:
        try:
            write_run_report(run_dir)
        except Exception as exc:  # noqa: BLE001 - the results are on disk already
            log.warning("report.html could not be written: %s", str(exc).splitlines()[0])
    return shown.seconds
