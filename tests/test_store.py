"""cfgen.store: counterfactuals.csv decoded in one pass, byte-identical to the per-task decoder.

The oracle is the per-task implementation of ``counterfactual_frame`` as it was before the
vectorised one (commit b8ad39b), copied below; both run on the same real data, forest and
search results, and their CSV text must agree byte for byte on every column but the new
``role``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cfgen import store
from cfgen.explanation import Explanation
from cfgen.methods import method_factory
from cfgen.plan import Combinations, Task, choose_queries, iter_targets, plan_tasks
from cfgen.problem import Problem
from cfgen.runner import WorkerContext, run_tasks


@dataclasses.dataclass
class NewTaskResult:
    """The runner's new result shape (adapter until that branch lands)."""

    index: int
    explanation: Explanation
    error: str | None = None
    peak_rss: int = 0
    pid: int = 0


def adapt(r: Any, task: Task, k: int) -> NewTaskResult:
    """Old flattened TaskResult -> the new shape."""
    exp = Explanation(np.asarray(r.counterfactuals), task.target, k, r.seconds, reason=r.reason,
                      best_fitness=r.best_fitness, generations=r.generations,
                      timed_out=bool(getattr(r, "timed_out", False)))
    return NewTaskResult(r.index, exp, r.error, r.peak_rss, r.pid)


def legacy_counterfactual_frame(data, tasks, explanations, predict, method) -> pd.DataFrame:
    """``store.counterfactual_frame`` at b8ad39b: decode and predict task by task."""
    blocks = []
    for t in tasks:
        e = explanations.get(t.index)
        if e is None or len(e.counterfactuals) == 0:
            continue
        cfs = e.counterfactuals
        frame = data.decode(cfs)
        pred = np.asarray(predict(cfs))
        meta = pd.DataFrame({"query": t.query, "method": method, "combination": t.combination,
                             "replication": t.replication, "target": data.class_names[t.target],
                             "cf": np.arange(len(cfs))})
        frame["predicted"] = [data.class_names[int(p)] for p in pred]
        blocks.append(pd.concat([meta, frame], axis=1))
    if not blocks:
        cols = ["query", "method", "combination", "replication", "target", "cf",
                *data.schema.names, "predicted"]
        return pd.DataFrame(columns=cols)
    return pd.concat(blocks, ignore_index=True)


def csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, float_format="%.10g", lineterminator="\n")


def problem_of(cfg_factory, dataset: str, *extra: str):
    cfg = cfg_factory(f"dataset={dataset}", *extra)
    return cfg, Problem.from_config(cfg.dataset, cfg.model)


def searched(cfg_factory, dataset: str, n_queries: int, reps: int, *extra: str):
    """Problem and real ``dpg_ga`` results for a small planned run (no class bounds)."""
    cfg, problem = problem_of(cfg_factory, dataset, "method.bounds.mode=none", *extra)
    queries = choose_queries(len(problem.X_test), n_queries, None, 7)
    targets = list(iter_targets(problem.predict(problem.X_test[queries]), problem.n_classes,
                                None))
    comb = Combinations.for_schema(problem.schema, ["none", "non_increasing"])
    tasks = plan_tasks(queries, targets, comb.chosen(2, seed=7), reps, 7)
    ctx = WorkerContext(problem, method_factory(cfg.method), None, comb, 3)
    results = run_tasks(tasks, ctx, False, None, progress=False)
    return problem, tasks, [adapt(r, t, 3) for r, t in zip(results, tasks, strict=True)]


@pytest.mark.parametrize("dataset", ["german_credit", "iris"])
def test_counterfactuals_csv_bytes_match_per_task_decoder(cfg_factory, dataset):
    # german_credit: categoricals (strings), integers, floats, a binary target; iris: 3 classes
    data, tasks, results = searched(cfg_factory, dataset, 3, 2)
    exps = {r.index: r.explanation for r in results}
    assert sum(len(e.counterfactuals) for e in exps.values()) > 5
    new = store.counterfactual_frame(data, tasks, results, data.predict, "dpg_ga")
    old = legacy_counterfactual_frame(data, tasks, exps, data.predict, "dpg_ga")
    assert list(new.columns) == [*old.columns, "role"]
    assert csv_text(new.drop(columns="role")) == csv_text(old)
    assert (new["role"] == "").all()  # the GA gives no roles yet


def _fabricated(data, rng, counts, roles_for=()):
    """Results built from real test rows (one per count); task 2 is left without a result."""
    tasks, results = [], []
    for i, m in enumerate(counts):
        q = int(rng.integers(len(data.X_test)))
        t = Task(i, q, int(rng.integers(data.n_classes)), i % 2, i // 2, seed=i)
        tasks.append(t)
        if i == 2:
            continue
        cfs = data.X_test[rng.integers(len(data.X_test), size=m)].copy()
        roles = ["closest", "sparsest", "plausible", "diverse"][:m] if i in roles_for else []
        exp = Explanation(cfs, t.target, 4, 0.1, roles=roles, timed_out=i == 3)
        results.append(NewTaskResult(i, exp))
    return tasks, results


def test_edge_cases_and_roles(cfg_factory):
    _, data = problem_of(cfg_factory, "german_credit")
    rng = np.random.default_rng(3)
    # sets of 2, 0, (no result), 4 (timed out: still listed), 1, 3 (roles), 0
    tasks, results = _fabricated(data, rng, [2, 0, 1, 4, 1, 3, 0], roles_for=(5,))
    new = store.counterfactual_frame(data, tasks, results, data.predict, "m")
    exps = {r.index: r.explanation for r in results}
    old = legacy_counterfactual_frame(data, tasks, exps, data.predict, "m")
    assert csv_text(new.drop(columns="role")) == csv_text(old)
    assert new["cf"].tolist() == [0, 1, 0, 1, 2, 3, 0, 0, 1, 2]
    assert new["role"].tolist() == [""] * 7 + ["closest", "sparsest", "plausible"]
    assert new["query"].tolist() == old["query"].tolist()


def test_no_counterfactuals_gives_the_header(cfg_factory):
    _, data = problem_of(cfg_factory, "iris")
    tasks, results = _fabricated(data, np.random.default_rng(0), [0, 0])
    frame = store.counterfactual_frame(data, tasks, results, lambda X: X[:, 0], "m")
    assert frame.empty
    assert list(frame.columns) == ["query", "method", "combination", "replication", "target",
                                   "cf", *data.schema.names, "predicted", "role"]


def _flat(r: NewTaskResult):
    from cfgen.runner import TaskResult

    e = r.explanation
    return TaskResult(r.index, e.counterfactuals, e.seconds, e.reason, e.generations,
                      e.best_fitness, e.mean_fitness, e.best_per_generation, r.error,
                      timed_out=e.timed_out)


def test_write_frame_is_byte_stable(tmp_path, cfg_factory):
    _, data = problem_of(cfg_factory, "german_credit")
    tasks, results = _fabricated(data, np.random.default_rng(5), [3, 2])
    frame = store.counterfactual_frame(data, tasks, results, lambda X: np.zeros(len(X)), "m")
    store.write_frame(tmp_path / "a.csv", frame)
    store.write_frame(tmp_path / "b.csv", frame.copy())
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    back = pd.read_csv(tmp_path / "a.csv", keep_default_na=False)
    assert len(back) == 5 and set(back["role"]) == {""}
