"""Quality of the returned sets: cfgen (dpg_ga) against the exact optimum, NICE and DiCE.

    PYTHONPATH=$PWD CFGEN_DATA_DIR=/work/shared/datasets \\
        .venv/bin/python bench/bench_quality.py run [--methods ...] [--datasets ...]
    .venv/bin/python bench/bench_quality.py table      # bench/results/quality.md from the raw rows

Per paper dataset (iris + the 13 in CFGEN_DATA_DIR, paper forests) the same ``--queries`` test
rows and targets (bench/quality_common.py, seed 0), k=5, every method built as the app builds it
(``method_factory(compose([f"method={name}"]).method)(problem, schema, bounds)``) and run
query by query, the methods interleaved. DiCE genetic (time_limit 30 s) runs on the first
``--dice-queries`` queries of datasets with more than 20 features (it takes seconds a query).
Per query and method one raw row goes to ``bench/results/quality_raw/<dataset>.<method>.csv``;
``table`` summarises them. The optimum is ``method=exact`` with k=1 (cached per dataset in
``bench/results/.exact_cache``); "closest ÷ optimum" is the closest valid member's distance
(MAD-scaled L1 + 1 per changed categorical, the search's own) over it, on queries whose
optimum is proven.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from quality_common import DATASETS, ROOT, build, load, optima, queries
from scipy.spatial.distance import cdist

from cfgen.schema import actionability_violations
from cfgen.search.distance import MixedDistance, feature_scale

RESULTS = ROOT / "bench" / "results"
RAW = RESULTS / "quality_raw"
TIMING = RESULTS / "quality_timing"  # dpg_ga, nice_sparsity, dice_genetic interleaved, CPU too
TIMED = ("dpg_ga", "nice_sparsity", "dice_genetic")
CACHE = RESULTS / ".exact_cache"
METHODS = ("dpg_ga", "exact", "nice_sparsity", "nice_proximity", "nice_plausibility",
           "dice_genetic")
LIMITS = {"dice_genetic": 30.0, "exact": 20.0}  # exact: k=5 members, all within 20 s


def measure(problem: Any, metric: MixedDistance, x: np.ndarray, target: int, e: Any,
            ) -> dict[str, Any]:
    """One explanation's numbers (distances in the search's metric, validity by predict)."""
    C = np.asarray(e.counterfactuals, dtype=float).reshape(-1, len(x))
    row: dict[str, Any] = {"found": len(C), "seconds": e.seconds, "timed_out": bool(e.timed_out)}
    if not len(C):
        return row
    schema = problem.schema
    valid = np.asarray(problem.estimator.predict(C)) == target
    lows, highs = schema.lows, schema.highs
    out_of_range = ((C < np.minimum(lows, x) - 1e-9) | (C > np.maximum(highs, x) + 1e-9)).sum()
    ref = problem.X_train[problem.y_train == target]
    dist = metric.to(metric.scaled(C), metric.scaled(x))
    impl = metric.nearest(metric.scaled(C), metric.scaled(ref)) if len(ref) else dist * np.nan
    changes = np.count_nonzero(C != x, axis=1)
    row.update(valid=int(valid.sum()),
               violations=int(actionability_violations(x, C, schema.rules).sum()),
               out_of_range=int(out_of_range))
    V = C[valid]
    if len(V):
        row.update(closest=float(dist[valid].min()), min_changes=int(changes[valid].min()),
                   min_implausibility=float(impl[valid].min()))
        m = len(V)
        row["count_diversity"] = float(cdist(V, V, "hamming").sum() / (m * (m - 1))) \
            if m > 1 else 0.0
    roles = list(getattr(e, "roles", []) or [])
    row["roles"] = "|".join(roles)
    return row


def run(datasets: list[str], methods: list[str], n: int, dice_n: int, seed: int,
        raw: Path = RAW) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for name in datasets:
        problem = load(name)
        qs = queries(problem, n, seed)
        opt = optima(name, qs, CACHE)
        metric = MixedDistance(feature_scale(problem.X_train, problem.schema),
                               problem.schema.categorical)
        exs = {}
        for m in methods:
            over = (f"method.time_limit={LIMITS[m]}",) if m in LIMITS else ()
            exs[m] = build(m, problem, over)
        rows: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
        for q, ((test_row, x, target), o) in enumerate(zip(qs, opt, strict=True)):
            for m, ex in exs.items():
                if m == "dice_genetic" and problem.d > 20 and q >= dice_n:
                    continue
                cpu = time.process_time()
                e = ex.explain(x, target, 5, np.random.default_rng([seed, q]))
                cpu = time.process_time() - cpu
                r = {"dataset": name, "method": m, "query": q, "row": test_row,
                     "target": target, "optimum": o["distance"],
                     "optimal": o["status"] == "optimal",
                     "cpu_seconds": cpu, **measure(problem, metric, x, target, e)}
                rows[m].append(r)
            print(f"{name} q{q:02d} " + " ".join(
                f"{m}={rows[m][-1].get('closest', np.nan):.3g}/{rows[m][-1]['seconds']:.2f}s"
                for m in methods if rows[m] and rows[m][-1]["query"] == q), flush=True)
        for m in methods:
            pd.DataFrame(rows[m]).to_csv(raw / f"{name}.{m}.csv", index=False)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (name, m), g in df.groupby(["dataset", "method"], sort=False):
        ok = g[g.optimal & (g.optimum > 0) & g.closest.notna()]
        ratio = ok.closest / ok.optimum
        found = g.found.fillna(0)
        out.append({
            "dataset": name, "method": m, "queries": len(g),
            "valid %": 100.0 * g.valid.fillna(0).sum() / max(found.sum(), 1),
            "some found %": 100.0 * (found > 0).mean(), "k found %": 100.0 * (found >= 5).mean(),
            "closest/opt median": ratio.median() if len(ratio) else np.nan,
            "closest/opt p90": ratio.quantile(0.9) if len(ratio) else np.nan,
            "sparsest changes": g.min_changes.mean(),
            "plausible impl": g.min_implausibility.mean(),
            "count div": g.count_diversity.mean(), "ms median": 1000 * g.seconds.median(),
            "cpu ms median": 1000 * g.cpu_seconds.median() if "cpu_seconds" in g else np.nan,
            "violations": int(g.violations.fillna(0).sum() + g.out_of_range.fillna(0).sum()),
            "timed out": int(g.timed_out.sum()),
        })
    return pd.DataFrame(out)


def markdown(df: pd.DataFrame) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "–" if np.isnan(v) else f"{v:.3g}"
        return str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(lines)


def targets(s: pd.DataFrame, t: pd.DataFrame | None) -> list[str]:
    """The task's targets, met or not (times: the interleaved timing run when there is one,
    CPU medians)."""
    lines = []
    per = {name: g.set_index("method") for name, g in s.groupby("dataset", sort=False)}

    def val(name: str, m: str, col: str) -> float:
        g = per[name]
        return float(g.loc[m, col]) if m in g.index else np.nan

    names = list(per)
    cf = [n for n in names if "dpg_ga" in per[n].index]
    gap = [n for n in cf if not np.isnan(val(n, "dpg_ga", "closest/opt median"))]
    med = [n for n in gap if val(n, "dpg_ga", "closest/opt median") <= 1.02]
    p90 = [n for n in gap if val(n, "dpg_ga", "closest/opt p90") <= 1.10]
    lines.append(f"- closest ≤ 1.02× optimum (median): {len(med)}/{len(gap)} datasets"
                 + _miss(gap, med))
    lines.append(f"- closest ≤ 1.10× optimum (p90): {len(p90)}/{len(gap)}" + _miss(gap, p90))
    for col, peer, label in (("sparsest changes", "nice_sparsity", "sparsest member's changes ≤ "
                              "NICE-sparsity's"),
                             ("plausible impl", "nice_plausibility", "most plausible member's "
                              "implausibility ≤ NICE-plausibility's"),
                             ("count div", "dice_genetic", "count diversity ≥ DiCE genetic's")):
        sign = -1 if col == "count div" else 1
        # a peer that found nothing loses to any result; neither found anything: left out
        both = [n for n in cf if not (np.isnan(val(n, peer, col))
                                      and np.isnan(val(n, "dpg_ga", col)))]
        win = [n for n in both if np.isnan(val(n, peer, col)) or
               sign * val(n, "dpg_ga", col) <= sign * val(n, peer, col) + 1e-12]
        lines.append(f"- {label}: {len(win)}/{len(both)}" + _miss(both, win)
                     + _peer_none(both, peer, val))
    valid = [n for n in cf if val(n, "dpg_ga", "valid %") >= 100.0 - 1e-9]
    lines.append(f"- 100 % valid: {len(valid)}/{len(cf)}" + _miss(cf, valid))
    kf = [n for n in cf if val(n, "dpg_ga", "k found %") >= 95.0]
    lines.append(f"- k found for ≥ 95 % of queries: {len(kf)}/{len(cf)}" + _miss(kf and cf, kf))
    viol = [n for n in cf if val(n, "dpg_ga", "violations") == 0]
    lines.append(f"- zero actionability / range violations: {len(viol)}/{len(cf)}"
                 + _miss(cf, viol))
    col = "ms median"
    if t is not None and len(t):
        per = {name: g.set_index("method") for name, g in t.groupby("dataset", sort=False)}
        col = "cpu ms median"
    timed = [n for n in cf if n in per and "dpg_ga" in per[n].index]
    both = [n for n in timed if not np.isnan(val(n, "dice_genetic", col))]
    fast = [n for n in both if val(n, "dice_genetic", col) >= 10 * val(n, "dpg_ga", col)]
    lines.append(f"- ≥ 10× faster than DiCE genetic ({col}): {len(fast)}/{len(both)}"
                 + _miss(both, fast))
    wide = [n for n in timed if load_d(n) > 20]
    nice_t = [n for n in wide if val(n, "dpg_ga", col) <= val(n, "nice_sparsity", col)]
    lines.append(f"- no slower than NICE-sparsity ({col}, > 20 features): "
                 f"{len(nice_t)}/{len(wide)}" + _miss(wide, nice_t))
    return lines


def _peer_none(names: list[str], peer: str, val) -> str:
    none = [n for n in names if np.isnan(val(n, peer, "sparsest changes"))]
    return f" ({peer} found nothing on: {', '.join(none)})" if none else ""


def load_d(name: str) -> int:
    return int(load(name).d)


def _miss(all_: list[str], ok: list[str]) -> str:
    miss = [n for n in all_ if n not in ok]
    return f" (not: {', '.join(miss)})" if miss else ""


def _read(raw: Path) -> pd.DataFrame | None:
    frames = [pd.read_csv(p) for p in sorted(raw.glob("*.csv"))]
    if not frames:
        return None
    df = pd.concat(frames, ignore_index=True)
    order = {n: i for i, n in enumerate(DATASETS)}
    morder = {m: i for i, m in enumerate(METHODS)}
    return df.sort_values(["dataset", "method", "query"], key=lambda c: c.map(order) if c.name ==
                          "dataset" else (c.map(morder) if c.name == "method" else c))


def timing_table(t: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (name, m), g in t.groupby(["dataset", "method"], sort=False):
        rows.append({"dataset": name, "method": m, "queries": len(g),
                     "ms median": 1000 * g.seconds.median(),
                     "cpu ms median": 1000 * g.cpu_seconds.median(),
                     "cpu ms p90": 1000 * g.cpu_seconds.quantile(0.9)})
    return pd.DataFrame(rows)


def table() -> None:
    df = _read(RAW)
    assert df is not None, f"no raw rows in {RAW}: run `bench_quality.py run` first"
    s = summary(df)
    traw = _read(TIMING)
    t = timing_table(traw) if traw is not None else None
    timing_md = [] if t is None else [
        "## Per-query time, interleaved", "",
        "`bench_quality.py timing`: dpg_ga, NICE-sparsity and DiCE genetic query by query in "
        "one process, the first 5 queries per dataset (DiCE: 3 on datasets with more than 20 "
        "features). CPU ms = `time.process_time` around `explain` (all threads of the "
        "process): on this shared machine wall time was up to 4× CPU time, from other "
        "processes.", "", markdown(t), ""]
    stamp = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}"
    text = "\n".join([
        "# Quality of the returned sets: cfgen vs the exact optimum, NICE and DiCE", "",
        f"Written by `python bench/bench_quality.py table` ({stamp} UTC) from the raw rows in "
        f"bench/results/quality_raw/ (`... run`); Python "
        f"{platform.python_version()}, a shared 2-core machine (times are noisy).", "",
        "Paper forests, 20 test rows per dataset drawn with seed 0 and one target class each "
        "(not the prediction), k=5, every method as the app builds it. DiCE genetic: "
        "time_limit 30 s, the first 10 queries on datasets with more than 20 features; exact "
        "(k=5 row): time_limit 20 s. "
        "closest/opt: the closest valid member's distance over the exact optimum (k=1, proven "
        "optimal queries only). sparsest changes: mean over queries of the fewest changes of a "
        "valid member; plausible impl: mean of the smallest distance of a valid member to the "
        "nearest training row of the target class; count div: mean share of features in which "
        "two valid members differ (pairs of one set); violations: actionability + range, over "
        "all rows; valid %: valid rows / returned rows; healthcare_dataset_stroke: 19 of 20 "
        "queries are proven infeasible under its actionability rules.", "",
        markdown(s), "", *timing_md, "## Targets (cfgen default settings)", "",
        *targets(s, t), "", NOTES])
    (RESULTS / "quality.md").write_text(text)
    print(text)


NOTES = """## What was tried (measured with this script and bench/quality_common.py)

- Before this work (the GA, refinement and one weighted final choice): closest ÷ optimum
  median 2.0 (iris), 1.04 (diabetes), 1.52 (german_credit), 1.32 (yeast_ml8), 1.26 (ecoli),
  1.51 (mammography); p90 up to 7.4. The split-flip beam search (`cfgen/search/closest.py`)
  alone reaches the optimum on every query of the low-dimensional sets.
- Beam width, satimage / us_crime p90: 16 → 1.16 / 1.14; 32 → 1.13 / 1.04; 48 (default) →
  1.09 / 1.06; 64 → 1.04 / 1.04 at about 1.5× the flip time. Two rounds of polish +
  ruin-and-recreate brought us_crime p90 from 1.14 to 1.08 at beam 16; stopping the beam 2
  layers after the last improvement (instead of 3) raised us_crime p90 to 1.12.
- Diverse members from 12 / 40 (default) / all NSGA-II-ranked candidates: count diversity
  german_credit 0.37 / 0.46 / 0.51, customer_personality_analysis 0.24 / 0.33 / 0.34.
- The target rows the actionable box moves least as candidates (`plausible_rows`):
  customer_personality_analysis implausibility 11.0 → 3.2 (its rules pin features, so the
  anchors are no longer real rows), count diversity 0.33 → 0.45.
- The sparsity beam (changes + 1e-3 distance): satimage fewest changes 4.15 → 3.3,
  customer_personality_analysis 2.2 → 1.9.
- Not met: the time targets where the peer is very fast. NICE-sparsity needs a handful of
  predictions (2-20 ms); dpg_ga's GA loop alone is 3-6 ms CPU (DEAP's HallOfFame deep-copies
  every inserted individual: about a third of it on the small sets) before the final pass.
  DiCE genetic stops within 80-180 ms CPU on education, energy, mammography and satimage
  (dpg_ga: 6-45 ms there, 4-12× faster).
- Count diversity below DiCE genetic where DiCE changes nearly every feature (libras_move,
  us_crime, satimage: 0.84-0.98; yeast_ml8: 1.0 with all 103 features changed): the closest
  and sparsest members change 2-5 features each, so their pair shares most features.
- healthcare_dataset_stroke: exact proves 19 of 20 queries infeasible under the dataset's
  actionability rules (the forest predicts the minority class for one training row), so no
  method can return k there; dpg_ga finds the one feasible query.
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("run", "timing", "table", "all"), nargs="?",
                    default="all")
    ap.add_argument("--datasets", nargs="*", default=list(DATASETS))
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--dice-queries", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    started = time.perf_counter()
    if a.what in ("run", "all"):
        run(a.datasets, a.methods, a.queries, a.dice_queries, a.seed)
        print(f"ran in {time.perf_counter() - started:.0f} s")
    if a.what == "timing":
        run(a.datasets, [m for m in TIMED if m in a.methods], min(a.queries, 5), 3, a.seed,
            raw=TIMING)
    if a.what in ("table", "all", "timing"):
        table()


if __name__ == "__main__":
    main()
