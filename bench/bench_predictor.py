"""Benchmark: sklearn ``predict_proba`` vs :class:`cfgen.predictor.CompiledForest`.

Run ``python bench/bench_predictor.py``; writes ``bench/results/predictor.md``. Each cell is the
median of many interleaved calls (``time.perf_counter``) on a fixed batch of rows perturbed
around the training data, the shape of one GA generation's population.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

ROOT = Path(__file__).resolve().parents[1]
try:
    from cfgen.predictor import CompiledForest
except ModuleNotFoundError:  # running from a checkout without the package installed
    sys.path.insert(0, str(ROOT))
    from cfgen.predictor import CompiledForest


def _models() -> list[tuple[str, Any, np.ndarray]]:
    X_iris, y_iris = load_iris(return_X_y=True)
    X_big, y_big = make_classification(2000, 20, random_state=0)
    X_mc, y_mc = make_classification(
        1000, 8, n_informative=6, n_classes=5, n_clusters_per_class=1, random_state=1
    )
    paper = dict(n_estimators=7, max_depth=4, max_features=0.5, random_state=42, n_jobs=1)
    specs = [
        (
            "iris RF paper (7 trees, depth 4, max_features 0.5, min_impurity_decrease 0.1)",
            RandomForestClassifier(**paper, min_impurity_decrease=0.1),
            X_iris,
            y_iris,
        ),
        (
            "iris RF (7 trees, depth 4, max_features 0.5)",
            RandomForestClassifier(**paper),
            X_iris,
            y_iris,
        ),
        (
            "5-class synthetic RF (4 trees, depth 3, max_features 0.7)",
            RandomForestClassifier(n_estimators=4, max_depth=3, max_features=0.7, random_state=42),
            X_mc,
            y_mc,
        ),
        (
            "make_classification(2000, 20) RF (100 trees, depth 10)",
            RandomForestClassifier(n_estimators=100, max_depth=10, random_state=42),
            X_big,
            y_big,
        ),
        (
            "make_classification(2000, 20) RF (100 trees, unlimited depth, conf default)",
            RandomForestClassifier(n_estimators=100, max_features="sqrt", random_state=42),
            X_big,
            y_big,
        ),
        (
            "make_classification(2000, 20) ExtraTrees (100 trees, depth 10)",
            ExtraTreesClassifier(n_estimators=100, max_depth=10, random_state=42),
            X_big,
            y_big,
        ),
    ]
    return [(name, model.fit(X, y), X) for name, model, X, y in specs]


def _median_interleaved(
    f: Callable[[], Any], g: Callable[[], Any], budget_s: float, min_reps: int = 25
) -> tuple[float, float, int]:
    """Median seconds of ``f`` and ``g``, alternating calls so both see the same noise."""
    for _ in range(3):
        f()
        g()
    tf: list[float] = []
    tg: list[float] = []
    start = time.perf_counter()
    while len(tf) < min_reps or (time.perf_counter() - start < budget_s and len(tf) < 5000):
        t0 = time.perf_counter()
        f()
        t1 = time.perf_counter()
        g()
        t2 = time.perf_counter()
        tf.append(t1 - t0)
        tg.append(t2 - t1)
    return float(np.median(tf)), float(np.median(tg)), len(tf)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[50, 20, 200])
    ap.add_argument("--budget", type=float, default=1.5, help="seconds per measurement")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "predictor.md")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    rows = []
    for name, model, X in _models():
        t0 = time.perf_counter()
        comp = CompiledForest(model)
        compile_ms = (time.perf_counter() - t0) * 1e3
        for n in args.batches:
            noise = rng.normal(0.0, 0.3, size=(n, X.shape[1])) * X.std(axis=0)
            Q = X[rng.integers(0, len(X), size=n)] + noise
            if not np.array_equal(comp.predict_proba(Q), model.predict_proba(Q)):
                raise SystemExit(f"compiled predict_proba differs from sklearn for {name}")
            t_sk, t_c, reps = _median_interleaved(
                lambda m=model, q=Q: m.predict_proba(q),
                lambda c=comp, q=Q: c.predict_proba(q),
                args.budget,
            )
            rows.append((name, comp, n, t_sk * 1e3, t_c * 1e3, t_sk / t_c, reps, compile_ms))
            print(
                f"{name[:60]:<60} n={n:<4} sklearn {t_sk * 1e3:8.3f} ms  "
                f"compiled {t_c * 1e3:7.3f} ms  x{t_sk / t_c:6.1f}  ({reps} reps)",
                flush=True,
            )

    lines = [
        "# CompiledForest vs sklearn `predict_proba`",
        "",
        f"Generated by `python bench/bench_predictor.py` on "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}, {os.cpu_count()} CPUs (shared machine, noisy).",
        "",
        "Each time is the median of interleaved calls on the same batch (rows of the training "
        "data plus Gaussian noise); compiled results were checked equal (`np.array_equal`) to "
        "sklearn's before timing. `compile ms` is the one-off cost of building the predictor.",
        "",
        "| model | trees | nodes | max depth | batch | sklearn ms | compiled ms | speedup "
        "| reps | compile ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, comp, n, sk, c, sp, reps, cm in rows:
        lines.append(
            f"| {name} | {comp.n_trees} | {comp.n_nodes} | {comp.max_depth} | {n} "
            f"| {sk:.3f} | {c:.3f} | {sp:.1f}x | {reps} | {cm:.1f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
