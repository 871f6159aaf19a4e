"""Per-query search time and quality of dpg_ga on every model preset, against DiCE's fastest.

    PYTHONPATH=$PWD:$PWD/tests CFGEN_DATA_DIR=/work/shared/datasets \
        .venv/bin/python bench/bench_models.py [--rounds 3] [--queries 20]

Each model is its preset file as shipped (``cfgen/conf/model/<name>.yaml``: the library defaults,
100 trees where it applies; the paper's per-dataset forests are not applied), fitted on the
dataset's training split. Methods are built as the app builds them:
``method_factory(compose_config([method=<m>, model=<model>, dataset=<d>]).method)`` with the
class bounds of ``resolve_bounds`` (``method.bounds.mode=auto``: dpg for voting trees, paths for
boosted, none otherwise). dpg_ga runs with its default settings; DiCE with
``method.time_limit=30``. Queries: the first ``--queries`` test rows, target = another class
(varied with the query), k = 5, rng = ``default_rng([0, query])`` (seed 0) for every method.

The process runs with one BLAS/OpenMP thread, as the app's worker processes do.
Rounds are interleaved (round → query → model → method), times are wall seconds of
``explain`` (median over queries × rounds; the machine is shared and noisy). Quality comes from
round 0: validity = counterfactuals the fitted model's own ``predict`` puts in the target class,
per k; distance = MAD-scaled L1 over numeric features + 1 per changed categorical, mean over the
returned counterfactuals; changes = features changed, mean. The compiled predictor is timed
against the library's ``predict_proba`` on 50-row batches for every tree model.
Writes bench/results/models.md.
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from conftest import compose_config
from omegaconf import OmegaConf
from threadpoolctl import threadpool_limits

from cfgen.cli import CONF_DIR
from cfgen.experiment import resolve_bounds
from cfgen.methods import method_factory
from cfgen.metrics.common import guarded_mad
from cfgen.problem import Problem
from cfgen.schema import Kind

MODELS = [
    "random_forest",
    "extra_trees",
    "decision_tree",
    "gradient_boosting",
    "hist_gradient_boosting",
    "xgboost",
    "lightgbm",
    "logistic_regression",
    "mlp",
]
DATASETS = ["diabetes", "german_credit", "satimage"]
OURS = "dpg_ga"
DICE = ["dice_random", "dice_kdtree"]
K = 5
OUT = Path(__file__).parent / "results" / "models.md"


@dataclass
class Cell:
    """One (dataset, model): the problem, its methods, and what they measured."""

    problem: Problem
    methods: dict[str, Any]
    fit_s: float
    bounds: str
    bounds_s: float
    secs: dict[str, list[float]] = field(default_factory=dict)
    quality: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)
    timed_out: dict[str, int] = field(default_factory=dict)


def preset(name: str) -> Any:
    """The preset file as shipped (no paper-forest settings on top)."""
    return OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml")


def build(dataset: str, model: str, methods: list[str]) -> Cell:
    cfg = compose_config([f"dataset={dataset}", f"model={model}"])
    t = time.perf_counter()
    problem = Problem.from_config(cfg.dataset, preset(model))
    fit_s = time.perf_counter() - t
    built: dict[str, Any] = {}
    mode, mined_s = "none", 0.0
    for name in methods:
        extra = ["method.time_limit=30"] if name.startswith("dice") else []
        mcfg = compose_config(
            [f"method={name}", f"model={model}", f"dataset={dataset}", *extra]
        ).method
        factory = method_factory(mcfg)
        bounds, info = resolve_bounds(problem, factory, mcfg, problem.X_train)
        if name == OURS:
            mode, mined_s = info["bounds_mode"], bounds.seconds if bounds is not None else 0.0
        built[name] = factory(problem, problem.schema, bounds)
    return Cell(
        problem,
        built,
        fit_s,
        mode,
        mined_s,
        secs={m: [] for m in methods},
        quality={m: [] for m in methods},
        timed_out=dict.fromkeys(methods, 0),
    )


def target_for(problem: Problem, q: int) -> tuple[np.ndarray, int]:
    x = problem.X_test[q]
    own = int(problem.predict(x[None])[0])
    c = problem.n_classes
    return x, (own + 1 + q % max(c - 1, 1)) % c


def quality(
    problem: Problem, mad: np.ndarray, x: np.ndarray, target: int, cfs: np.ndarray
) -> tuple[float, float, float]:
    """(validity per k, mean distance, mean changes) by the fitted model's own predict."""
    if len(cfs) == 0:
        return 0.0, float("nan"), float("nan")
    valid = float(np.sum(np.asarray(problem.model.predict(cfs)) == target)) / K
    cat = np.array([f.kind is Kind.CATEGORICAL for f in problem.schema.features])
    diff = np.abs(cfs - x)
    dist = (diff[:, ~cat] / mad[~cat]).sum(1) + (diff[:, cat] > 0).sum(1)
    changes = (diff > 1e-9).sum(1)
    return valid, float(dist.mean()), float(changes.mean())


def measure(cells: dict[str, Cell], rounds: int, queries: int) -> None:
    mads = {m: guarded_mad(c.problem.X_train) for m, c in cells.items()}
    for r in range(rounds):
        for q in range(queries):
            for m, cell in cells.items():
                x, target = target_for(cell.problem, q)
                for name, ex in cell.methods.items():
                    t = time.perf_counter()
                    e = ex.explain(x, target, K, np.random.default_rng([0, q]))
                    cell.secs[name].append(time.perf_counter() - t)
                    if r == 0:
                        cell.quality[name].append(
                            quality(cell.problem, mads[m], x, target, e.counterfactuals)
                        )
                        cell.timed_out[name] += bool(e.timed_out)
        print(f"  round {r + 1}/{rounds} done", flush=True)


def predictor_ratio(problem: Problem, reps: int = 200) -> tuple[float, float] | None:
    """Median ms of the library's predict_proba and of the compiled predictor, 50 rows."""
    if problem.trees is None:
        return None
    rng = np.random.default_rng(0)
    X = problem.X_train[rng.choice(len(problem.X_train), 50)]
    lib, comp = [], []
    assert np.allclose(
        problem.model.predict_proba(X), problem.predictor.predict_proba(X), atol=1e-6
    )
    for _ in range(reps):
        t = time.perf_counter()
        problem.model.predict_proba(X)
        lib.append(time.perf_counter() - t)
        t = time.perf_counter()
        problem.predictor.predict_proba(X)
        comp.append(time.perf_counter() - t)
    return float(np.median(lib)) * 1000, float(np.median(comp)) * 1000


def _mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def found_share(cell: Cell, name: str) -> float:
    return float(np.mean([np.isfinite(d) for _, d, _ in cell.quality[name]]))


def time_row(dataset: str, m: str, c: Cell) -> str:
    """Medians, the ratio to each DiCE method, and to the fastest one that finds
    counterfactuals for at least 90% of the queries (a method that fails fast is no peer)."""
    med = {n: float(np.median(s)) * 1000 for n, s in c.secs.items()}
    ours = np.array(c.secs[OURS])
    dice = [n for n in c.secs if n != OURS]
    cols = " | ".join(
        f"{med[n]:.1f} | {med[n] / med[OURS]:.1f}x | {found_share(c, n):.0%}" for n in dice
    )
    working = [n for n in dice if found_share(c, n) >= 0.9]
    peer = (
        min(working, key=lambda n: med[n])
        if working
        else max(dice, key=lambda n: (found_share(c, n), -med[n]), default=None)
    )
    ratio = f"{med[peer] / med[OURS]:.1f}x" if peer else "-"
    paired = f"{np.median(np.array(c.secs[peer]) / ours):.1f}x" if peer else "-"
    return (
        f"| {dataset} | {m} | {c.problem.test_accuracy:.3f} | {c.bounds} | {c.fit_s:.2f} | "
        f"{c.bounds_s:.2f} | "
        f"{med[OURS]:.1f} | {np.percentile(ours * 1000, 90):.1f} | {cols} | {peer or '-'} | "
        f"{ratio} | {paired} |"
    )


def rows(dataset: str, cells: dict[str, Cell]) -> tuple[list[str], list[str], list[str]]:
    time_rows, quality_rows, pred_rows = [], [], []
    for m, c in cells.items():
        time_rows.append(time_row(dataset, m, c))
        for n, qs in c.quality.items():
            v, d, ch = zip(*qs, strict=True)
            quality_rows.append(
                f"| {dataset} | {m} | {n} | {np.mean(v):.3f} | {_mean(list(d)):.2f} | "
                f"{_mean(list(ch)):.2f} | {found_share(c, n):.0%} | {c.timed_out[n]} |"
            )
        pr = predictor_ratio(c.problem)
        if pr is not None:
            pred_rows.append(
                f"| {dataset} | {m} | {c.problem.trees.kind} | "
                f"{c.problem.trees.n_trees} | {pr[0]:.3f} | {pr[1]:.3f} | "
                f"{pr[0] / pr[1]:.1f}x |"
            )
    return time_rows, quality_rows, pred_rows


def write(
    args: argparse.Namespace, tables: tuple[list[str], list[str], list[str]], seconds: float
) -> None:
    t_rows, q_rows, p_rows = tables
    dice = " | ".join(f"{n} ms | x | found" for n in args.dice)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Models: dpg_ga per-query time and quality on every preset, against DiCE",
        "",
        f"Generated by `python bench/bench_models.py --rounds {args.rounds} --queries "
        f"{args.queries}` on {stamp} ({seconds / 60:.0f} min); Python "
        f"{platform.python_version()}, 2 shared CPUs (noisy: medians, interleaved rounds).",
        "",
        "Each model is its preset as shipped (library defaults, 100 trees where it applies; "
        "no paper-forest settings), fitted on the training split. Methods are built as the "
        "app builds them (`method_factory(compose_config([method=..., model=..., "
        "dataset=...]).method)`, bounds by `method.bounds.mode=auto`); dpg_ga with its "
        "default settings, DiCE with a 30 s time limit per query. "
        f"{args.queries} test rows, target = another class, k = {K}, seed 0; "
        f"{args.rounds} interleaved rounds (round → query → model → method).",
        "",
        "## Time per query",
        "",
        "`x` = that DiCE method's median ms / dpg_ga's; `found` = queries it found at least "
        "one counterfactual for (round 0). `peer` = the fastest DiCE method finding "
        "counterfactuals for at least 90% of the queries (one failing fast is no peer; where "
        "none does, the one finding the most); "
        "`ratio` = its median ms / dpg_ga's; `paired` = median over queries × rounds of the "
        "per-query ratio. `fit s` = loading the data, fitting and compiling the model; "
        "`bounds s` = mining its class bounds.",
        "",
        "| dataset | model | test acc | bounds | fit s | bounds s | dpg_ga ms | dpg_ga p90 | "
        f"{dice} | peer | ratio | paired |",
        "|---|---|---:|---|---:|---:|---:|---:|"
        + "---:|---:|---:|" * len(args.dice)
        + "---|---:|---:|",
        *t_rows,
        "",
        "## Quality (round 0)",
        "",
        "validity = counterfactuals in the target class by the fitted model's own `predict`, "
        "per k (missing ones count as invalid); distance = MAD-scaled L1 over numeric features "
        "+ 1 per changed categorical; changes = features changed (both means over the "
        "returned counterfactuals); found = queries with at least one.",
        "",
        "| dataset | model | method | validity | distance | changes | found | timed out |",
        "|---|---|---|---:|---:|---:|---:|---:|",
        *q_rows,
        "",
        "## Compiled predictor vs the library's `predict_proba` (50-row batches)",
        "",
        "Median of 200 interleaved calls on the same 50 training rows; results checked equal "
        "(`allclose`, atol 1e-6) first.",
        "",
        "| dataset | model | kind | trees | library ms | compiled ms | speedup |",
        "|---|---|---|---:|---:|---:|---:|",
        *p_rows,
        "",
    ]
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--datasets", nargs="+", default=DATASETS)
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--dice", nargs="*", default=DICE)
    args = ap.parse_args()
    # the app's searches run in workers with one BLAS/OpenMP thread (cfgen.runner); on this
    # shared 2-core machine two OpenMP threads made HistGradientBoosting's predict 10x slower
    threadpool_limits(1)
    started = time.perf_counter()
    tables: tuple[list[str], list[str], list[str]] = ([], [], [])
    for d in args.datasets:
        print(f"{d}: building {len(args.models)} models", flush=True)
        cells = {m: build(d, m, [OURS, *args.dice]) for m in args.models}
        measure(cells, args.rounds, args.queries)
        for acc, new in zip(tables, rows(d, cells), strict=True):
            acc.extend(new)
        print("\n".join(tables[0][-len(cells) :]), flush=True)
        write(args, tables, time.perf_counter() - started)  # after each dataset: nothing lost


if __name__ == "__main__":
    main()
