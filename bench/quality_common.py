"""What bench/bench_quality.py and the quality tests share: problems, queries, the exact optima.

Problems are the paper datasets with their paper forests (``dataset=<name>``, default
``model=random_forest`` picks ``paper_forest/<name>_random_forest``). Queries: ``n`` test rows
drawn with ``numpy.random.default_rng(seed)``, each with one target class other than the
model's prediction drawn from the same generator (the scheme of bench/bench_exact.py, so its
numbers compare). Exact optima (``method=exact``, k=1) are cached as JSON per dataset, keyed by
query row, target and the forest's fingerprint, because satimage takes minutes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: iris (shipped) + the 13 datasets in CFGEN_DATA_DIR
DATASETS = ("iris", "abalone", "customer_personality_analysis", "diabetes", "ecoli",
            "education_dataset", "energy_dataset", "german_credit", "healthcare_dataset_stroke",
            "libras_move", "mammography", "satimage", "us_crime", "yeast_ml8")


def compose(overrides: list[str]) -> Any:
    """The config ``python -m cfgen <overrides>`` would run."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cfgen.cli import CONF_DIR
    from cfgen.config import register
    from cfgen.datasets import open_dict_overrides

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=open_dict_overrides(overrides))


@functools.cache
def load(name: str) -> Any:
    """The dataset's problem with its paper forest."""
    from cfgen.problem import Problem

    cfg = compose([f"dataset={name}"])
    return Problem.from_config(cfg.dataset, cfg.model)


def build(method: str, problem: Any, overrides: tuple[str, ...] = ()) -> Any:
    """A method exactly as the app builds it: config, factory, class bounds, explainer."""
    from cfgen.experiment import resolve_bounds
    from cfgen.methods import method_factory

    cfg = compose([f"method={method}", *overrides])
    factory = method_factory(cfg.method)
    bounds, _ = resolve_bounds(problem, factory, cfg.method, problem.X_train)
    return factory(problem, problem.schema, bounds)


def queries(problem: Any, n: int, seed: int) -> list[tuple[int, np.ndarray, int]]:
    """``(test row, x, target)`` per query."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(problem.X_test), size=min(n, len(problem.X_test)), replace=False)
    pred = np.asarray(problem.estimator.predict(problem.X_test[idx]))
    out = []
    for i, p in zip(idx, pred, strict=True):
        target = int(rng.choice([c for c in range(problem.n_classes) if c != p]))
        out.append((int(i), np.asarray(problem.X_test[i], dtype=float), target))
    return out


def fingerprint(problem: Any) -> str:
    """A short hash of the forest's split features, thresholds and leaf values."""
    h = hashlib.sha1()
    for est in problem.model.estimators_:
        t = est.tree_
        for a in (t.feature, t.threshold, t.value):
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:12]


def optima(name: str, qs: list[tuple[int, np.ndarray, int]], cache_dir: Path,
           time_limit: float = 60.0) -> list[dict[str, Any]]:
    """Per query the exact method's k=1 result: ``distance``, ``status``, ``seconds``."""
    problem = load(name)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{name}.json"
    fp = fingerprint(problem)
    cache: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if cache.get("fingerprint") != fp:
        cache = {"fingerprint": fp, "rows": {}}
    exact = None
    out = []
    for row, x, target in qs:
        key = f"{row}:{target}"
        hit = cache["rows"].get(key)
        if hit is None or (hit["status"] != "optimal" and hit.get("limit", 0) < time_limit):
            if exact is None:
                exact = build("exact", problem, (f"method.time_limit={time_limit}",))
            e = exact.explain(x, target, 1, np.random.default_rng(0))
            dist = e.extra.get("objective")
            hit = {"distance": float("inf") if dist is None else float(dist),
                   "status": e.extra["status"],
                   "seconds": e.seconds, "limit": time_limit}
            cache["rows"][key] = hit
            path.write_text(json.dumps(cache, indent=0, sort_keys=True, allow_nan=True))
            print(f"  exact {name} row {row} -> {hit['status']} d={hit['distance']:.4g} "
                  f"({hit['seconds']:.1f} s)", flush=True)
        out.append(hit)
    return out
