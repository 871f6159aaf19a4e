"""Benchmark: cfgen's genetic search (``dpg_ga``) vs DiCE random / genetic / kdtree.

Run ``python bench/bench_search.py`` (options: ``--datasets iris,diabetes``, ``--queries 20``,
``--methods dpg_ga,dice_kdtree``, ``--time-limit 30``, ``--ga population_size=40``); writes
``bench/results/search.md`` (``--out``) and, with ``--raw FILE.csv``, one row per query.

Every method explains the same queries of the same fitted forest: data, forest (the paper's RF
settings of ``conf/dataset/*.yaml``) and class bounds are built with cfgen's own loaders from the
composed Hydra config, and every explainer comes from :func:`cfgen.methods.method_factory` (the
app's own building block). Queries: ``--queries`` test rows drawn with ``--seed``; each gets one
target class (the other class for binary data, a random other class otherwise); the k = 5
counterfactuals of all methods are asked for that target. Methods run interleaved query by query
(noise on the shared machine hits all of them alike). Each DiCE query has a time limit
(``--time-limit`` seconds, counted as a failure: no counterfactuals).

Metrics (per query over its returned set, then the mean over the queries that returned any):

* time: wall-clock seconds of ``explain`` (median and mean over all queries);
* validity: share of returned rows that the estimator's own ``predict`` puts in the target class
  after rounding to the data's precision (``Dataset.round``);
* k found: share of queries with at least k counterfactuals; violations: actionability rules
  broken (``no_change`` / ``non_increasing`` / ``non_decreasing``), summed over all rows;
* distance: mixed L1 to the query: ``sum |cf_j - x_j| / MAD_j`` over non-categorical features
  (``cfgen.metrics.guarded_mad`` of the training data) ``+`` the number of changed categoricals;
* changes: changed features per counterfactual;
* implausibility: the same distance from each counterfactual to its nearest training row labelled
  with the target class;
* diversity: mean pairwise distance (same metric) within a query's set (sets of >= 2).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
try:
    import cfgen  # noqa: F401
except ModuleNotFoundError:  # running from a checkout without the package installed
    sys.path.insert(0, str(ROOT))

from cfgen.constraints import mine_class_bounds  # noqa: E402
from cfgen.data import data_dir  # noqa: E402
from cfgen.methods import method_factory  # noqa: E402
from cfgen.metrics import guarded_mad  # noqa: E402
from cfgen.plan import derive_seed  # noqa: E402
from cfgen.problem import Problem  # noqa: E402
from cfgen.schema import actionability_violations  # noqa: E402

DATASETS = ("iris", "diabetes", "german_credit", "satimage", "us_crime", "yeast_ml8")
METHODS = ("dpg_ga", "dice_random", "dice_genetic", "dice_kdtree")
DICE = tuple(m for m in METHODS if m.startswith("dice_"))


def compose(overrides: list[str]):
    """The config ``python -m cfgen <overrides>`` would run (as tests/conftest.py composes it)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cfgen.cli import CONF_DIR
    from cfgen.config import register

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


def build_problem(name: str):
    """The problem (the dataset with its paper forest; it plays both the data and the model
    role below) and its dpg class bounds."""
    cfg = compose([f"dataset={name}"])
    problem = Problem.from_config(cfg.dataset, cfg.model)
    bounds = mine_class_bounds(problem.trees, problem.schema, mode="dpg",
                               X_train=problem.X_train)
    return cfg, problem, problem, bounds


def pick_queries(data, model, n: int, seed: int) -> list[tuple[int, int]]:
    """``n`` (test row, target) pairs drawn with ``seed``."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xBE7C,)))
    rows = rng.choice(len(data.X_test), size=min(n, len(data.X_test)), replace=False)
    pred = model.estimator.predict(data.X_test[rows])
    out = []
    for r, p in zip(rows, pred, strict=True):
        others = [c for c in range(data.n_classes) if c != int(p)]
        out.append((int(r), int(others[rng.integers(len(others))])))
    return out


class Scorer:
    """The bench's distance, implausibility and diversity (see the module docstring)."""

    def __init__(self, data) -> None:
        self.cat = data.schema.categorical
        mad = guarded_mad(data.X_train[:, ~self.cat])
        self.inv = np.ones(len(data.schema))
        self.inv[~self.cat] = 1.0 / mad
        self.cap = np.where(self.cat, 1.0, np.inf)
        self.ref = {int(c): data.X_train[data.y_train == c] for c in np.unique(data.y_train)}

    def dist(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """Pairwise (len(A), len(B)) mixed distance."""
        D = np.abs(A[:, None, :] - B[None, :, :]) * self.inv
        return np.minimum(D, self.cap).sum(axis=-1)

    def score(self, x, cfs, target) -> dict:
        d = self.dist(cfs, x[None, :])[:, 0]
        ref = self.ref[target]
        impl = np.min(
            np.concatenate([self.dist(cfs, ref[i : i + 2000]) for i in range(0, len(ref), 2000)],
                           axis=1),
            axis=1,
        )
        out = {
            "distance": float(d.mean()),
            "changes": float((np.abs(cfs - x) > 1e-9).sum(axis=1).mean()),
            "implausibility": float(impl.mean()),
            "diversity": math.nan,
        }
        if len(cfs) >= 2:
            i, j = np.triu_indices(len(cfs), 1)
            out["diversity"] = float(self.dist(cfs, cfs)[i, j].mean())
        return out


def run_dataset(name: str, args) -> list[dict]:
    cfg, data, model, bounds = build_problem(name)
    explainers = {}
    for m in args.methods:
        overrides = [f"dataset={name}", f"method={m}"]
        if m in DICE:
            overrides.append(f"method.time_limit={args.time_limit}")
        else:
            overrides += [f"method.ga.{item}" for item in args.ga]
        node = compose(overrides).method
        explainers[m] = method_factory(node)(data, data.schema, bounds)
    scorer = Scorer(data)
    queries = pick_queries(data, model, args.queries, args.seed)
    rows = []
    print(f"== {name}: {len(data.X_train)} train rows, {len(data.schema)} features, "
          f"{data.n_classes} classes, {len(queries)} queries", flush=True)
    for qi, (q, target) in enumerate(queries):
        x = data.X_test[q]
        for m in args.methods:
            rng = np.random.default_rng(derive_seed(args.seed, q, target))
            start = time.perf_counter()
            error = None
            try:
                exp = explainers[m].explain(x, target, args.k, rng)
                cfs, reason = exp.counterfactuals, exp.reason
                timed_out = bool(exp.extra.get("timed_out", False))
            except Exception as exc:  # noqa: BLE001 - a crashing query counts as a failure
                cfs, reason, timed_out = np.empty((0, len(x))), None, False
                error = f"{type(exc).__name__}: {exc}"
                if args.verbose:
                    traceback.print_exc()
            seconds = time.perf_counter() - start
            row = {"dataset": name, "method": m, "query": q, "target": target,
                   "seconds": seconds, "n_found": len(cfs), "reason": reason or "",
                   "timed_out": timed_out, "error": error or ""}
            if len(cfs):
                valid = model.estimator.predict(data.round(cfs)) == target
                row.update(
                    n_valid=int(valid.sum()),
                    violations=int(actionability_violations(x, cfs, data.schema.rules).sum()),
                    duplicates=int(len(cfs) - len(np.unique(cfs, axis=0))),
                    **scorer.score(x, cfs, target),
                )
            else:
                row.update(n_valid=0, violations=0, duplicates=0)
            rows.append(row)
        if args.verbose:
            done = [r for r in rows if r["query"] == q]
            print(f"  query {qi + 1}/{len(queries)} row {q} -> class {target}: " + ", ".join(
                f"{r['method']} {r['seconds'] * 1000:.1f}ms/{r['n_found']}" for r in done),
                flush=True)
    return rows


def summarise(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    out = []
    for (ds, m), g in frame.groupby(["dataset", "method"], sort=False):
        found = g[g["n_found"] > 0]
        out.append({
            "dataset": ds,
            "method": m,
            "queries": len(g),
            "median ms": 1000 * g["seconds"].median(),
            "mean ms": 1000 * g["seconds"].mean(),
            "validity": g["n_valid"].sum() / max(g["n_found"].sum(), 1),
            "k found": (g["n_found"] >= k).mean(),
            "any found": (g["n_found"] > 0).mean(),
            "distance": found["distance"].mean() if len(found) else math.nan,
            "changes": found["changes"].mean() if len(found) else math.nan,
            "implausibility": found["implausibility"].mean() if len(found) else math.nan,
            "diversity": found["diversity"].mean() if len(found) else math.nan,
            "violations": int(g["violations"].sum()),
            "duplicates": int(g["duplicates"].sum()),
            "timeouts": int(g["timed_out"].sum()),
            "errors": int((g["error"] != "").sum()),
        })
    return pd.DataFrame(out)


def _fmt(v, kind: str) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "–"
    if kind == "pct":
        return f"{100 * v:.0f}%"
    if kind == "ms":
        return f"{v:.1f}" if v < 100 else f"{v:.0f}"
    if kind == "int":
        return str(int(v))
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


COLUMNS = [("median ms", "ms"), ("mean ms", "ms"), ("validity", "pct"), ("k found", "pct"),
           ("distance", "num"), ("changes", "num"), ("implausibility", "num"),
           ("diversity", "num"), ("violations", "int"), ("timeouts", "int"), ("errors", "int")]


def targets(summary: pd.DataFrame, k: int) -> list[str]:
    """The issue's targets, checked on this run."""
    lines = []
    ga = summary[summary["method"] == "dpg_ga"].set_index("dataset")
    if ga.empty:
        return lines
    dice = summary[summary["method"].isin(DICE)]
    n = len(ga)
    speed_ok = dist_ok = chg_ok = impl_ok = n_gen = 0
    lines.append("| dataset | GA median ms | fastest DiCE (median ms) | speed-up "
                 "| distance GA / DiCE genetic "
                 "| changes GA / DiCE genetic | implausibility GA / DiCE genetic |")
    lines.append("|---|---:|---|---:|---:|---:|---:|")
    for ds, g in ga.iterrows():
        dd = dice[dice["dataset"] == ds]
        fastest = dd.loc[dd["median ms"].idxmin()] if len(dd) else None
        speed = fastest["median ms"] / g["median ms"] if fastest is not None else math.nan
        speed_ok += speed >= 5
        gen = dd[dd["method"] == "dice_genetic"]
        if len(gen):
            n_gen += 1
            gen = gen.iloc[0]
            rd, rc, ri = (g[c] / gen[c] for c in ("distance", "changes", "implausibility"))
            dist_ok += rd < 1
            chg_ok += rc < 1
            impl_ok += ri < 1
        else:
            rd = rc = ri = math.nan
        fast = f"{fastest['method']} ({fastest['median ms']:.1f})" if fastest is not None else "–"
        lines.append(f"| {ds} | {g['median ms']:.1f} | {fast} | {speed:.1f}x | {rd:.2f} | {rc:.2f} "
                     f"| {ri:.2f} |")
    validity = (ga["validity"] == 1).all()
    viol = int(ga["violations"].sum())
    kq = ga["k found"].min()
    lines += [
        "",
        f"- speed: median ≥ 5× faster than the fastest DiCE method on {speed_ok}/{n} datasets "
        f"(target: all) — {'met' if speed_ok == n else 'NOT met'}",
        "- validity of returned counterfactuals: "
        + ("100% on every dataset — met" if validity else "NOT 100%"),
        f"- actionability violations: {viol} — {'met' if viol == 0 else 'NOT met'}",
        f"- at least k found: lowest share over datasets {100 * kq:.0f}% "
        "(target ≥ 95% of queries) — "
        f"{'met' if kq >= 0.95 else 'NOT met'}",
        f"- lower distance than DiCE genetic on {dist_ok}/{n_gen}, fewer changes on "
        f"{chg_ok}/{n_gen} (target ≥ 80% each) — "
        + ("n/a" if not n_gen else "met" if min(dist_ok, chg_ok) >= 0.8 * n_gen else "NOT met"),
        f"- closer to target-class training data than DiCE genetic on {impl_ok}/{n_gen} "
        f"(target ≥ 50%) — "
        + ("n/a" if not n_gen else "met" if impl_ok >= 0.5 * n_gen else "NOT met"),
    ]
    return lines


def write_markdown(path: Path, frame: pd.DataFrame, args, wall: float) -> None:
    summary = summarise(frame, args.k)
    import sklearn

    lines = [
        "# Counterfactual search: cfgen `dpg_ga` vs DiCE",
        "",
        f"Generated by `python bench/bench_search.py {' '.join(sys.argv[1:])}`".rstrip() +
        f" on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC in {wall / 60:.1f} min; "
        f"Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"scikit-learn {sklearn.__version__}, {os.cpu_count()} CPUs (shared machine, noisy).",
        "",
        f"k = {args.k}, {args.queries} queries per dataset (seed {args.seed}), "
        "one target per query; "
        f"DiCE time limit {args.time_limit:g} s per query (a timeout counts as a failure). "
        "GA settings: `conf/ga/default.yaml`"
        + (f" with {', '.join(args.ga)}" if args.ga else "") + ". "
        "Definitions of every column: the docstring of `bench/bench_search.py` "
        "(distance = MAD-scaled L1 plus changed categoricals; implausibility = that distance to "
        "the nearest training row of "
        "the target class; quality columns are means over the queries that returned any "
        "counterfactual).",
        "",
        "## Targets",
        "",
        *targets(summary, args.k),
        "",
        "## Per dataset and method",
        "",
        "| dataset | method | " + " | ".join(c for c, _ in COLUMNS) + " |",
        "|---|---|" + "---:|" * len(COLUMNS),
    ]
    for _, r in summary.iterrows():
        lines.append(f"| {r['dataset']} | {r['method']} | "
                     + " | ".join(_fmt(r[c], kind) for c, kind in COLUMNS) + " |")
    reasons = frame[(frame["n_found"] < args.k) & (frame["reason"] != "")]
    if len(reasons):
        lines += ["", "## Why fewer than k (counts)", "", "| dataset | method | reason | queries |",
                  "|---|---|---|---:|"]
        for (ds, m, why), g in reasons.groupby(["dataset", "method", "reason"], sort=False):
            lines.append(f"| {ds} | {m} | {why} | {len(g)} |")
    errors = frame[frame["error"] != ""]
    if len(errors):
        lines += ["", "## Errors", ""]
        for _, r in errors.iterrows():
            lines.append(f"- {r['dataset']} / {r['method']} / row {r['query']}: {r['error']}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--queries", type=int, default=20)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=30.0, help="seconds per DiCE query")
    p.add_argument("--ga", action="append", default=[], help="GA override key=value (repeatable)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "search.md"))
    p.add_argument("--raw", default=None, help="also write one CSV row per query and method")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    args.datasets = [d for d in args.datasets.split(",") if d]
    args.methods = [m for m in args.methods.split(",") if m]
    os.environ.setdefault("CFGEN_DATA_DIR", str(data_dir()))
    start = time.perf_counter()
    rows: list[dict] = []
    for name in args.datasets:
        rows += run_dataset(name, args)
        frame = pd.DataFrame(rows)
        if args.raw:
            frame.to_csv(args.raw, index=False)
        write_markdown(Path(args.out), frame, args, time.perf_counter() - start)
        print(summarise(frame[frame["dataset"] == name], args.k).to_string(index=False), flush=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
