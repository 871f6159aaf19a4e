"""Per-query search time before and after the "one core" reshaping → bench/results/core.md

Runs ``python -m cfgen`` of two commits of this repository side by side, interleaved, each in a
fresh process and in this process's CPU (``parallel_replications=false``): the old one from a
temporary ``git worktree`` at ``--before`` (default: the last commit before the reshaping), the
new one from this checkout. Per task, ``metrics.csv``'s ``runtime`` is the search's own time
(model fitting, bound mining, metrics and files excluded), so the table compares searches, not
start-up. Both use their default method settings (``dpg_ga``, default GA), the same seed and the
same queries; the new default also returns the front's representatives (closest, sparsest,
plausible) after a split-flip search, which the old one did not do.

Run: ``python bench/bench_core.py [--rounds 3] [--before REV]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "core.md"
BEFORE = "1459a03"  # end of the first build, before methods became plug-ins
RUNS = {
    "iris": ["dataset=iris"],
    "german_credit": ["dataset=german_credit", "experiment_params.num_samples=20"],
}
COMMON = [
    "experiment_params.parallel_replications=false",
    "experiment_params.num_replications=3",
    "output.table=false",
]


def one_run(root: Path, dataset: str, run_dir: Path) -> pd.DataFrame:
    """The run's metrics.csv (one row per task)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.setdefault("CFGEN_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
    args = [sys.executable, "-m", "cfgen", *RUNS[dataset], *COMMON, f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{root.name} {dataset}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    return pd.read_csv(run_dir / "metrics.csv")


def measure(before_root: Path, rounds: int, tmp: Path) -> dict[tuple[str, str], list[pd.DataFrame]]:
    """Interleaved rounds: dataset → version (order alternating per round)."""
    runs: dict[tuple[str, str], list[pd.DataFrame]] = {}
    versions = {"before": before_root, "after": ROOT}
    for r in range(rounds):
        for dataset in RUNS:
            order = list(versions) if r % 2 == 0 else list(reversed(versions))
            for name in order:
                frame = one_run(versions[name], dataset, tmp / f"{dataset}_{name}_{r}")
                runs.setdefault((dataset, name), []).append(frame)
                print(f"round {r} {dataset} {name}: {len(frame)} tasks", flush=True)
    return runs


def _stats(frames: list[pd.DataFrame]) -> dict[str, float]:
    ms = pd.concat([f["runtime"] for f in frames]) * 1000.0
    last = frames[0]
    out = {
        "tasks": float(len(last)),
        "median": float(ms.median()),
        "p90": float(ms.quantile(0.9)),
        "round medians": [float(f["runtime"].median() * 1000.0) for f in frames],
    }
    out["perc_valid_cf_all"] = float(last["perc_valid_cf_all"].mean())
    return out


def report(runs, rounds: int, before: str, after: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Search time per query before and after the one-core reshaping",
        "",
        f"`python bench/bench_core.py --rounds {rounds}` on {stamp}; {platform.machine()}, "
        f"Python {platform.python_version()}, {os.cpu_count()} shared CPUs (noisy: interleaved "
        f"rounds, medians). *before* = commit `{before}`, *after* = `{after}`; each runs "
        "`python -m cfgen` with its default `dpg_ga` settings, the same seed and queries, in "
        "process. ms = `metrics.csv` `runtime` per task (the search only), over all rounds.",
        "",
        "| dataset | version | tasks | ms median | ms p90 | median per round | after ÷ before "
        "| validity |",
        "|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for dataset in RUNS:
        base = _stats(runs[(dataset, "before")])
        for name in ("before", "after"):
            s = _stats(runs[(dataset, name)])
            per_round = ", ".join(f"{v:.1f}" for v in s["round medians"])
            lines.append(
                f"| {dataset} | {name} | {s['tasks']:.0f} | {s['median']:.1f} | {s['p90']:.1f} "
                f"| {per_round} | {s['median'] / base['median']:.2f}× "
                f"| {s['perc_valid_cf_all']:.3f} |"
            )
    lines += [
        "",
        "validity: mean over the first round's tasks. Distances and changes are not compared "
        "here: the distance metric now counts categorical changes too (it counted continuous "
        "features only), and the returned set now holds the front's representatives (closest, "
        "sparsest, plausible, diverse) instead of one weighted compromise; quality against the "
        "exact optimum is in `quality.md`.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", default=BEFORE)
    args = parser.parse_args()
    after = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        before_root = tmp / "before"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(before_root), args.before],
            cwd=ROOT,
            check=True,
        )
        try:
            runs = measure(before_root, args.rounds, tmp)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before_root)], cwd=ROOT)
    text = report(runs, args.rounds, args.before, after)
    print(text)
    OUT.write_text(text)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
