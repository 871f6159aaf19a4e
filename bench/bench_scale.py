"""How the search scales → bench/results/scale.md

1. **Forest size**: german_credit, random forests of 10 / 100 / 500 trees × depth 5 / 10 /
   unlimited; ``dpg_ga`` and DiCE's fastest method (``dice_random``) on the same forests
   (same model settings and seed), each query under ``--dice-limit`` seconds (DiCE gives up
   there: such queries count as failures).
2. **Number of features**: iris (4) … us_crime (≈ 100), each dataset's default forest.
3. **Number of queries**: 10 … 10 000 german_credit rows (drawn with replacement from the data,
   given as ``experiment_params.queries``) on 2 worker processes: wall time, time per query,
   and the peak memory of the run's process and of each worker (VmHWM).

Sections 1 and 2 run in the run's own process (``parallel_replications=false``), one query
after the other, so the per-query time is the search's, not the pool's. Per query: median
seconds (``runtime`` in metrics.csv), validity (share of the k counterfactuals asked for that
the model's own ``predict`` puts in the target class), distance (MAD-scaled L1) and features
changed, averaged over the queries that found any. Each cell is one fresh ``python -m cfgen``.

Run: ``python bench/bench_scale.py`` (``--quick``: a smaller grid, printed only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "scale.md"
COMMON = ["output.table=false", "output.plots=false", "experiment_params.num_replications=1"]


def run_cfgen(overrides: list[str], run_dir: Path, timeout: float = 3600) -> dict:
    """One run in a fresh process: its metrics, summary and elapsed seconds."""
    args = [sys.executable, "-m", "cfgen", *COMMON, *overrides, f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=run_dir.parent, env=env, capture_output=True, text=True,
                          timeout=timeout)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:160]}
    metrics = pd.read_csv(run_dir / "metrics.csv")
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"metrics": metrics, "summary": summary, "elapsed": elapsed}


def quality(res: dict) -> dict:
    """Per-query medians and means of one run (see the module docstring)."""
    if "error" in res:
        return {"error": res["error"]}
    m = res["metrics"]
    found = m[m["nbr_valid_cf"] > 0]
    failed = (m["error"].fillna("").astype(str) != "") | m["timed_out"].astype(bool)
    return {
        "queries": len(m),
        "seconds": float(m["runtime"].median()),
        "validity": float(m["perc_valid_cf_all"].mean()),
        "distance": float(found["distance_mad"].mean()) if len(found) else float("nan"),
        "changes": float(found["avg_nbr_changes_per_cf"].mean()) if len(found) else float("nan"),
        "failed": int(failed.sum()),
    }


def cell(q: dict) -> str:
    if "error" in q:
        return f"failed: {q['error']}"
    return (f"{q['seconds']:.3f} s · validity {q['validity']:.2f} · dist {q['distance']:.2f} · "
            f"{q['changes']:.1f} changed" + (f" · {q['failed']} failed" if q["failed"] else ""))


# ---------------------------------------------------------------------------- 1. forests
def forests(tmp: Path, trees: list[int], depths: list[str], n: int, dice_limit: float) -> list:
    rows = []
    for t in trees:
        for depth in depths:
            model = [f"model.n_estimators={t}", f"model.max_depth={depth}"]
            base = ["dataset=german_credit", f"experiment_params.num_samples={n}",
                    "experiment_params.parallel_replications=false", *model]
            ga = quality(run_cfgen(base, tmp / f"f_ga_{t}_{depth}"))
            dice = quality(run_cfgen([*base, "method=dice_random",
                                      f"method.time_limit={dice_limit}"],
                                     tmp / f"f_dice_{t}_{depth}"))
            rows.append((t, depth, ga, dice))
            print(f"forest {t:4d} trees depth {depth:5s}: dpg_ga {cell(ga)} | dice {cell(dice)}",
                  flush=True)
    return rows


# ---------------------------------------------------------------------------- 2. features
def n_features(name: str) -> int:
    from cfgen.data import load_dataset

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import compose_config

    return len(load_dataset(compose_config([f"dataset={name}"]).dataset).schema)


def features(tmp: Path, datasets: list[str], n: int, dice_limit: float) -> list:
    rows = []
    for name in datasets:
        base = [f"dataset={name}", f"experiment_params.num_samples={n}",
                "experiment_params.parallel_replications=false"]
        ga = quality(run_cfgen(base, tmp / f"d_ga_{name}"))
        d = n_features(name)
        dice = quality(run_cfgen([*base, "method=dice_random", f"method.time_limit={dice_limit}"],
                                 tmp / f"d_dice_{name}"))
        rows.append((name, d, ga, dice))
        print(f"dataset {name} ({d} features): dpg_ga {cell(ga)} | dice {cell(dice)}", flush=True)
    return rows


# ---------------------------------------------------------------------------- 3. queries
QUERY_SCRIPT = r"""
import json, sys
sys.path.insert(0, {tests!r})
from conftest import compose_config
from cfgen.experiment import run
from cfgen.runner.resources import peak_rss
cfg = compose_config({overrides!r})
r = run(cfg, {run_dir!r})
workers = {{}}
for x in r.results:
    if x.pid:
        workers[x.pid] = max(workers.get(x.pid, 0), x.peak_rss)
print(json.dumps({{"parent": peak_rss(), "workers": workers, "tasks": len(r.tasks),
                  "failed": r.summary["n_failed"], "wall": r.summary["wall_seconds"],
                  "search": float(sum(x.seconds for x in r.results))}}))
"""


def query_file(tmp: Path, n: int) -> Path:
    """``n`` german_credit rows (with replacement), in the data's own values."""
    from cfgen.data import load_dataset

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import compose_config

    data = load_dataset(compose_config(["dataset=german_credit"]).dataset)
    X = np.vstack([data.X_train, data.X_test])
    rows = X[np.random.default_rng(7).integers(0, len(X), size=n)]
    path = tmp / f"queries_{n}.csv"
    data.decode(rows).to_csv(path, index=False)
    return path


def queries(tmp: Path, counts: list[int], workers: int) -> list:
    rows = []
    for n in counts:
        overrides = ["dataset=german_credit", f"experiment_params.queries={query_file(tmp, n)}",
                     f"experiment_params.num_samples={n}",
                     f"experiment_params.max_workers={workers}", *COMMON]
        code = QUERY_SCRIPT.format(tests=str(ROOT / "tests"), overrides=overrides,
                                   run_dir=str(tmp / f"q_{n}"))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, cwd=tmp)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            rows.append((n, {"error": proc.stderr.strip().splitlines()[-1][:160]}))
            continue
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        out["elapsed"] = elapsed
        rows.append((n, out))
        print(f"{n} queries: wall {out['wall']:.1f} s, workers "
              f"{[round(v / 2**20) for v in out['workers'].values()]} MB", flush=True)
    return rows


# ---------------------------------------------------------------------------- report
def report(f_rows, d_rows, q_rows, args, load, load_after) -> str:
    mb = 2**20
    lines = [
        "# Scale benchmark",
        "",
        f"`python bench/bench_scale.py` on {platform.machine()}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs; load average before/after "
        f"{load[0]:.2f} / {load_after[0]:.2f} (a shared machine: seconds are noisy, the "
        "quality columns are not). Default `dpg_ga` settings; DiCE is `dice_random` (its "
        f"fastest method) with `method.time_limit={args.dice_limit:g}` s per query. Each cell: "
        "median seconds per query · validity · MAD-scaled L1 distance · features changed "
        "(the last two over queries that found any).",
        "",
        f"## 1. Forest size (german_credit, {args.n} queries)",
        "",
        "| trees | max depth | dpg_ga | dice_random |",
        "|---:|---:|---|---|",
        *(f"| {t} | {d} | {cell(ga)} | {cell(dice)} |" for t, d, ga, dice in f_rows),
        "",
        f"## 2. Number of features ({args.n} queries, each dataset's default forest)",
        "",
        "| dataset | features | dpg_ga | dice_random |",
        "|---|---:|---|---|",
        *(f"| {n} | {d} | {cell(ga)} | {cell(dice)} |" for n, d, ga, dice in d_rows),
        "",
        f"## 3. Number of queries (german_credit, `max_workers={args.workers}`)",
        "",
        "| queries | wall s | search s per query | run's process MB | each worker MB |",
        "|---:|---:|---:|---:|---|",
    ]
    for n, out in q_rows:
        if "error" in out:
            lines.append(f"| {n} | failed: {out['error']} | | | |")
            continue
        lines.append(f"| {n} | {out['wall']:.1f} | {out['search'] / max(1, out['tasks']):.4f} | "
                     f"{out['parent'] / mb:.0f} | "
                     f"{', '.join(f'{v / mb:.0f}' for v in out['workers'].values()) or '-'} |")
    lines += ["", "*wall* is the run's own `wall_seconds` (data, model, bounds, tasks, metrics "
              "and files); the search time is the sum of the tasks' own `seconds`.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=10, help="queries per cell in sections 1, 2")
    parser.add_argument("--dice-limit", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    quick = args.quick
    trees, depths = ([10, 100], ["5", "null"]) if quick else ([10, 100, 500], ["5", "10", "null"])
    datasets = ["iris", "german_credit"] if quick else \
        ["iris", "diabetes", "german_credit", "satimage", "us_crime"]
    counts = [10, 100] if quick else [10, 100, 1000, 10000]
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cfgen-scale-") as tmp:
        f_rows = forests(Path(tmp), trees, depths, args.n, args.dice_limit)
        d_rows = features(Path(tmp), datasets, args.n, args.dice_limit)
        q_rows = queries(Path(tmp), counts, args.workers)
    text = report(f_rows, d_rows, q_rows, args, load, os.getloadavg())
    print(text)
    if not quick:
        OUT.write_text(text)
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
