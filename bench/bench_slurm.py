"""A run as a Slurm job array vs the same run here → bench/results/slurm.md

``python -m cfgen dataset=german_credit`` with 2 000 tasks (``num_samples=100
num_replications=20``), once with ``experiment_params.executor=local`` (this process) and once
with ``experiment_params.executor=slurm`` on the cluster that ``sbatch`` reaches (here: the
single-node cluster of ``scripts/slurm-local.sh up``). Records both runs' own ``wall_seconds``,
the array's size, and whether ``counterfactuals.csv``, ``changes.csv`` and ``metrics.csv``
(without the timing columns) are byte-identical.

Run: ``bash scripts/slurm-local.sh up && python bench/bench_slurm.py [--chunk-seconds 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "slurm.md"
RUN = [
    "dataset=german_credit",
    "experiment_params.num_samples=100",
    "experiment_params.num_replications=20",
    "output.table=false",
]
TIMING_COLUMNS = ("runtime", "pid", "worker")


def one_run(mode: str, tmp: Path, chunk_seconds: float) -> tuple[Path, float]:
    run_dir = tmp / mode
    extra = [f"experiment_params.executor={mode}"]
    if mode == "slurm":
        extra += [
            f"experiment_params.slurm.chunk_seconds={chunk_seconds}",
            "experiment_params.slurm.poll_seconds=1",
        ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "cfgen", *RUN, *extra, f"hydra.run.dir={run_dir}"],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{mode}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    (tmp / f"{mode}.log").write_text(proc.stdout + proc.stderr)
    return run_dir, elapsed


def same_metrics(a: Path, b: Path) -> bool:
    fa, fb = (pd.read_csv(p / "metrics.csv") for p in (a, b))
    drop = [c for c in TIMING_COLUMNS if c in fa.columns]
    return fa.drop(columns=drop).equals(fb.drop(columns=drop))


def array_size(run_dir: Path) -> int:
    jobs = {p.name for p in (run_dir / "slurm" / "submitit").glob("*_*") if p.is_dir()}
    return len(jobs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunk-seconds", type=float, default=2.0)
    args = parser.parse_args()
    if shutil.which("sbatch") is None:
        raise SystemExit("bench_slurm: no sbatch on PATH (bash scripts/slurm-local.sh up)")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        local, local_elapsed = one_run("local", tmp, args.chunk_seconds)
        slurm, slurm_elapsed = one_run("slurm", tmp, args.chunk_seconds)
        walls = {
            m: json.loads((d / "summary.json").read_text())["wall_seconds"]
            for m, d in (("local", local), ("slurm", slurm))
        }
        same = {
            f: (local / f).read_bytes() == (slurm / f).read_bytes()
            for f in ("counterfactuals.csv", "changes.csv")
        }
        same["metrics.csv (without timings)"] = same_metrics(local, slurm)
        tasks = json.loads((local / "summary.json").read_text())["n_tasks"]
        n_array = array_size(slurm)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# A run as a Slurm job array vs the same run in this process",
        "",
        f"`python bench/bench_slurm.py --chunk-seconds {args.chunk_seconds}` on {stamp}; "
        f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} CPUs; "
        "the single-node Slurm of `scripts/slurm-local.sh` (its node has the same 2 CPUs, so "
        "the array cannot be faster than a local pool: this measures the overhead and the "
        "byte-identity, not the spread over nodes).",
        "",
        f"`python -m cfgen {' '.join(RUN)}` ({tasks} tasks).",
        "",
        "| executor | wall s (summary.json) | elapsed s (command) | array tasks |",
        "|---|---:|---:|---:|",
        f"| local | {walls['local']:.1f} | {local_elapsed:.1f} | – |",
        f"| slurm | {walls['slurm']:.1f} | {slurm_elapsed:.1f} | {n_array} |",
        "",
        "Byte-identical to the local run:",
        "",
    ]
    lines += [f"- {f}: {ok}" for f, ok in same.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    OUT.write_text(text)
    print(f"wrote {OUT}")
    if not all(same.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
