"""Runner benchmark on the real workload → bench/results/launcher.md

``python -m cfgen dataset=german_credit`` with the default ``dpg_ga`` search, 200 tasks
(``num_samples=40 num_replications=5``) and 2 000 tasks (``num_samples=100
num_replications=20``), each run a fresh process, in these modes, interleaved, ``--repeats``
rounds (5): in this process (``parallel_replications=false``), ``max_workers=1``,
``max_workers=2``, and ``max_workers=null`` (the automatic choice). Per run it records the run's
own ``wall_seconds`` (summary.json: everything from loading the data to the last file), the
command's elapsed time (process start to exit, which includes imports and Hydra), and the task
phase (from the plan's log line to the last task's, read from the log). Medians and ratios to
the in-process run of the same size.

Targets: 2 000 tasks on ``max_workers=2`` ≥ 1.7× faster than in this process; ``max_workers=1``
≤ 1.1× in-process; never slower than in-process for 200 tasks.

Start-up, interleaved the same way: ``python -m cfgen`` (iris defaults, in an empty directory)
against ``python -c "import sklearn.ensemble, pandas, hydra"`` (target ≤ 1.3×), and
``python -m cfgen --help`` and a bad input (``dataset=nope``; targets: under a second).

Run: ``python bench/bench_launcher.py`` (``--quick``: one round of the 200-task runs and three
of the start-up commands, printed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "launcher.md"
SIZES = {
    200: ["experiment_params.num_samples=40", "experiment_params.num_replications=5"],
    2000: ["experiment_params.num_samples=100", "experiment_params.num_replications=20"],
}
MODES = {
    "in-process": ["experiment_params.parallel_replications=false"],
    "max_workers=1": ["experiment_params.max_workers=1"],
    "max_workers=2": ["experiment_params.max_workers=2"],
    "max_workers=null": [],
}
STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def _stamp(line: str) -> float | None:
    m = STAMP.match(line)
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() if m else None


def task_phase(log: str) -> float:
    """Seconds from the plan's log line ("N tasks: ...") to the last task's ("N/N tasks")."""
    start = end = None
    for line in log.splitlines():
        if re.search(r"\] - \d+ tasks: \d+ quer", line):
            start = _stamp(line)
        m = re.search(r"\] - (\d+)/(\d+) tasks done", line)
        if m and m.group(1) == m.group(2):
            end = _stamp(line)
    return end - start if start is not None and end is not None else float("nan")


def one_run(size: int, mode: str, tmp: Path, i: int) -> dict:
    run_dir = tmp / f"{size}_{re.sub(r'[^a-z0-9]+', '_', mode)}_{i}"
    args = [
        sys.executable,
        "-m",
        "cfgen",
        "dataset=german_credit",
        "output.table=false",
        *SIZES[size],
        *MODES[mode],
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} {size}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n_failed"] == 0 and summary["n_tasks"] == size, summary
    return {
        "wall": summary["wall_seconds"],
        "elapsed": elapsed,
        "tasks": task_phase(proc.stdout + "\n" + proc.stderr),
        "csv": (run_dir / "counterfactuals.csv").read_bytes(),
    }


STARTUP = {
    "imports": ["-c", "import sklearn.ensemble, pandas, hydra"],
    "python -m cfgen": ["-m", "cfgen"],
    "--help": ["-m", "cfgen", "--help"],
    "dataset=nope": ["-m", "cfgen", "dataset=nope"],
}


def startup(repeats: int) -> dict[str, list[float]]:
    """Elapsed seconds of each STARTUP command, interleaved, each in a fresh empty directory."""
    times: dict[str, list[float]] = {k: [] for k in STARTUP}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(repeats):
        for name, args in STARTUP.items():
            with tempfile.TemporaryDirectory(prefix="cfgen-bench-") as tmp:
                start = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, *args], cwd=tmp, env=env, capture_output=True, text=True
                )
                times[name].append(time.perf_counter() - start)
            if proc.returncode != (2 if name == "dataset=nope" else 0):
                raise RuntimeError(f"{name}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    return times


def startup_report(times: dict[str, list[float]]) -> list[str]:
    base = statistics.median(times["imports"])
    lines = [
        "",
        f"Start-up ({len(times['imports'])} interleaved rounds, medians; ratio = ÷ the imports):",
        "",
        "| command | elapsed s | ratio |",
        "|---|---:|---:|",
    ]
    for name, vals in times.items():
        v = statistics.median(vals)
        lines.append(f"| `{name}` | {v:.2f} | {v / base:.2f}× |")
    return lines


def cpu_idle(seconds: float = 2.0) -> float:
    """Share of all CPUs idle over ``seconds`` (/proc/stat)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            v = [int(x) for x in fh.readline().split()[1:9]]
        return v[3] + v[4], sum(v)

    i0, t0 = sample()
    time.sleep(seconds)
    i1, t1 = sample()
    return (i1 - i0) / max(1, t1 - t0)


def wait_quiet(threshold: float, timeout: float) -> float:
    """Wait until at least ``threshold`` of the CPUs is idle (or ``timeout`` s): that share."""
    end = time.time() + timeout
    idle = cpu_idle()
    while idle < threshold and time.time() < end:
        idle = cpu_idle()
    return idle


def _burn(n: int) -> float:
    start = time.perf_counter()
    x = 0
    for i in range(n):
        x += i * i
    return time.perf_counter() - start


def capacity(n: int = 5_000_000) -> float:
    """Speedup two CPU-bound processes get over one right now (2.0: two free cores): the
    best any launcher could do with two workers at that moment."""
    import multiprocessing

    alone = _burn(n)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        start = time.perf_counter()
        pool.map(_burn, [n, n])
        pair = time.perf_counter() - start
    return 2 * alone / pair


def measure(sizes: list[int], repeats: int, quiet: float, timeout: float) -> dict:
    runs: dict[tuple[int, str], list[dict]] = {(s, m): [] for s in sizes for m in MODES}
    with tempfile.TemporaryDirectory(prefix="cfgen-bench-") as tmp:
        for size in sizes:
            for i in range(repeats):  # interleaved: the machine is shared and noisy
                idle = wait_quiet(quiet, timeout)
                cap = capacity()
                print(f"round {i}: {idle:.0%} of the CPUs idle, capacity {cap:.2f}", flush=True)
                for mode in MODES:
                    r = one_run(size, mode, Path(tmp), i)
                    r["idle"], r["capacity"] = idle, cap
                    runs[(size, mode)].append(r)
                    print(
                        f"{size:5d} {mode:17s} wall {r['wall']:6.2f} s  tasks "
                        f"{r['tasks']:6.2f} s  elapsed {r['elapsed']:6.2f} s",
                        flush=True,
                    )
    return runs


def report(
    runs: dict,
    sizes: list[int],
    repeats: int,
    load: tuple,
    load_after: tuple,
    starts: dict[str, list[float]] | None = None,
) -> str:
    from cfgen.runner.resources import usable_cpus

    def med(size: int, mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[(size, mode)])

    lines = [
        "# Runner benchmark (real workload)",
        "",
        f"`python bench/bench_launcher.py` on {platform.machine()}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs ({usable_cpus()} usable). "
        "`python -m cfgen dataset=german_credit` with the default `dpg_ga` search, each run a "
        f"fresh process, modes interleaved, {repeats} rounds, medians. Load average before/after: "
        f"{load[0]:.2f} / {load_after[0]:.2f} (a shared machine: other jobs use the same cores).",
        "",
        "*wall* = the run's own `wall_seconds` (summary.json: data, model, bounds, tasks, "
        "metrics, files); *tasks* = the task phase (plan log line → last task's); *elapsed* = "
        "the whole command (imports, Hydra, exit). Ratio = in-process ÷ mode (> 1: faster).",
        "",
        "| tasks | mode | wall s | ratio | tasks s | ratio | elapsed s | ratio | same bytes |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for size in sizes:
        ref = {k: med(size, "in-process", k) for k in ("wall", "tasks", "elapsed")}
        csv = runs[(size, "in-process")][0]["csv"]
        for mode in MODES:
            cells = [str(size), f"`{mode}`"]
            for key in ("wall", "tasks", "elapsed"):
                v = med(size, mode, key)
                cells += [f"{v:.2f}", f"{ref[key] / v:.2f}×"]
            cells.append(str(all(r["csv"] == csv for r in runs[(size, mode)])))
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Per run (wall s). Before each round: the idle share of the CPUs, and the "
        "*capacity* (how much faster two CPU-bound processes finished than one, just "
        "then: 2.00 means two free cores; the best any launcher could reach):",
        "",
    ]
    for size in sizes:
        idle = ", ".join(
            f"{r['idle']:.0%} / {r['capacity']:.2f}" for r in runs[(size, "in-process")]
        )
        lines.append(f"- {size} tasks, idle / capacity before each round: {idle}")
        for mode in MODES:
            vals = ", ".join(f"{r['wall']:.2f}" for r in runs[(size, mode)])
            lines.append(f"- {size} `{mode}`: {vals}")
    if starts:
        lines += startup_report(starts)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--quiet",
        type=float,
        default=0.6,
        help="start a round once this share of the CPUs is idle ...",
    )
    parser.add_argument(
        "--quiet-timeout", type=float, default=300, help="... or after this many seconds of waiting"
    )
    args = parser.parse_args()
    sizes = [200] if args.quick else [200, 2000]
    repeats = 1 if args.quick else args.repeats
    load = os.getloadavg()
    runs = measure(sizes, repeats, args.quiet, args.quiet_timeout)
    starts = startup(3 if args.quick else repeats)
    text = report(runs, sizes, repeats, load, os.getloadavg(), starts)
    print(text)
    if not args.quick:
        OUT.write_text(text)
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
