"""Per-query time of the baselines (DiCE random/genetic/kdtree, NICE three modes).

    PYTHONPATH=$PWD:$PWD/tests CFGEN_DATA_DIR=/work/shared/datasets \
        .venv/bin/python bench/bench_baselines.py [--rounds 2] [--queries 20]

Each dataset's 6 methods are built once (NICE plausibility: the autoencoder fit is reported
apart); rounds interleave the methods query by query; per-query seconds are Explanation.seconds,
summarised as medians (machine is noisy). k=5 (the paper's), time_limit=30 s (experiment=paper).
Writes bench/results/baselines.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from test_dice import load, other_target, plugin

METHODS = [
    ("dice_random", {}),
    ("dice_genetic", {}),
    ("dice_kdtree", {}),
    ("nice", {"mode": "sparsity"}),
    ("nice", {"mode": "proximity"}),
    ("nice", {"mode": "plausibility"}),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--datasets", nargs="+", default=["iris", "diabetes", "german_credit"])
    args = ap.parse_args()
    lines = [
        "# Baselines: per-query time",
        "",
        f"{args.queries} test rows (0..{args.queries - 1}), target = next class, k=5, "
        f"time_limit=30 s, {args.rounds} interleaved rounds; medians over queries x rounds.",
        "",
        "| dataset | method | build s | median ms | p90 ms | max ms | found | "
        "timed out | mean changes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in args.datasets:
        p = load(name)
        exs, build = {}, {}
        for file, over in METHODS:
            t = time.perf_counter()
            ex = plugin(file, p, time_limit=30, **over)
            build[ex.name] = time.perf_counter() - t
            exs[ex.name] = ex
        secs: dict[str, list[float]] = {m: [] for m in exs}
        found = dict.fromkeys(exs, 0)
        tout = dict.fromkeys(exs, 0)
        changes: dict[str, list[float]] = {m: [] for m in exs}
        for r in range(args.rounds):
            for q in range(args.queries):
                x, t = other_target(p, q)
                for m, ex in exs.items():
                    e = ex.explain(x, t, 5, np.random.default_rng([r, q]))
                    secs[m].append(e.seconds)
                    found[m] += e.n_found > 0
                    tout[m] += e.timed_out
                    if e.n_found:
                        changes[m].append(float(np.mean((e.counterfactuals != x).sum(1))))
        n = args.rounds * args.queries
        for m in exs:
            s = np.array(secs[m]) * 1000
            lines.append(
                f"| {name} | {m} | {build[m]:.2f} | {np.median(s):.1f} | "
                f"{np.percentile(s, 90):.1f} | {s.max():.1f} | {found[m]}/{n} | "
                f"{tout[m]} | {np.mean(changes[m]) if changes[m] else float('nan'):.2f} |"
            )
        print("\n".join(lines[-len(exs) :]), flush=True)
    out = Path(__file__).parent / "results" / "baselines.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
