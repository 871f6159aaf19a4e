"""``python -m cfgen.plots.examples [DOCS_DIR]``: regenerate the example figures in ``docs/``.

One example of each plot on german_credit (categorical features with long labels, the hard
case): a real bound-guided search of one query, three replications; plus a real run (one query,
plots on) whose ``report.html`` is screenshotted into ``DOCS_DIR/example_report.png`` when
Debian's ``chromium`` is installed. ``docs/figures.md`` lists them (``make docs-figures``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

QUERY = 55  # a german_credit test row whose counterfactuals change several categories
FIGURES = (
    "example_fitness.png",
    "example_changes.png",
    "example_bounds.png",
    "example_bounds_iris.png",
    "example_pca.png",
)


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cfgen.cli import CONF_DIR
    from cfgen.config import register

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def _search(dataset: str, query: int, reps: int = 3):
    """Data, bounds and ``reps`` real searches of one query (seeded: the same every time)."""
    from cfgen.experiment import resolve_bounds
    from cfgen.methods import method_factory
    from cfgen.problem import Problem

    cfg = _compose([f"dataset={dataset}"])
    data = Problem.from_config(cfg.dataset, cfg.model)
    factory = method_factory(cfg.method)
    bounds, _ = resolve_bounds(data, factory, cfg.method, data.X_train)
    ex = factory(data, data.schema, bounds)
    x = data.X_test[query]
    proba = data.predictor.predict_proba(x[None, :])[0]
    target = int(np.argsort(-proba, kind="stable")[1])
    seeds = np.random.SeedSequence(cfg.experiment_params.seed).spawn(reps)
    exps = [ex.explain(x, target, 5, np.random.default_rng(s)) for s in seeds]
    return data, bounds, x, target, exps


def figures(out: Path) -> list[Path]:
    """The example plots, written into ``out``."""
    from cfgen.plots.bounds import plot_class_bounds
    from cfgen.plots.search import plot_change_heatmap, plot_fitness, plot_pca_path

    data, bounds, x, target, exps = _search("german_credit", QUERY)
    found = next(e for e in exps if e.n_found)
    label = f"german_credit query {QUERY} → {data.class_names[target]}"
    paths = [
        plot_fitness(exps, out / FIGURES[0], title=f"Search progress, {label}"),
        plot_change_heatmap(
            x,
            found,
            out / FIGURES[1],
            schema=data.schema,
            title=f"Changes per counterfactual, {label}",
        ),
        plot_class_bounds(
            bounds,
            data.schema,
            data.X_train,
            data.y_train,
            x,
            found.counterfactuals,
            out / FIGURES[2],
            data.class_names,
            target=target,
            title=f"Class bounds ({bounds.mode}), {label}",
        ),
    ]
    idata, ibounds, ix, itarget, iexps = _search("iris", 8, reps=1)
    paths.append(
        plot_class_bounds(
            ibounds,
            idata.schema,
            idata.X_train,
            idata.y_train,
            ix,
            iexps[0].counterfactuals,
            out / FIGURES[3],
            idata.class_names,
            target=itarget,
            title=f"Class bounds ({ibounds.mode}), iris query 8 → {idata.class_names[itarget]}",
        )
    )
    paths.append(
        plot_pca_path(
            data.X_train,
            data.y_train,
            x,
            found,
            out / FIGURES[4],
            class_names=data.class_names,
            title=f"PCA of training data and search path, {label}",
        )
    )
    return paths


def report_example(out: Path) -> list[Path]:
    """A screenshot of a real one-query run's report.html (when chromium is installed)."""
    from cfgen.experiment import run
    from cfgen.report.run_report import write_run_report

    written = []
    with tempfile.TemporaryDirectory(prefix="cfgen-docs-") as tmp:
        run_dir = Path(tmp) / "run"
        cfg = _compose(
            [
                "dataset=german_credit",
                "output.plots=true",
                "output.table=false",
                "experiment_params.num_samples=1",
                "experiment_params.num_replications=2",
                "experiment_params.parallel_replications=false",
            ]
        )
        res = run(cfg, run_dir)
        _ensure_change_files(res, run_dir, cfg.method.name)
        page = write_run_report(run_dir)
        chromium = shutil.which("chromium")
        if chromium:
            shot = out / "example_report.png"
            subprocess.run(
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    f"--user-data-dir={Path(tmp) / 'profile'}",
                    f"--screenshot={shot}",
                    "--window-size=1280,2200",
                    page.as_uri(),
                ],
                check=True,
                capture_output=True,
                timeout=180,
            )
            written.append(shot)
    return written


def _ensure_change_files(res, run_dir: Path, method: str) -> None:
    """changes.csv / queries.csv as the run writes them (for runs from before it did)."""
    from cfgen.changes import mh_distance, query_frame, run_changes
    from cfgen.store import write_frame

    d, proba = res.problem, res.problem.predictor.predict_proba
    if not (run_dir / "changes.csv").exists():
        write_frame(
            run_dir / "changes.csv",
            run_changes(d, res.tasks, res.results, proba, method, mh_distance(d.schema, d.X_train)),
        )
    if not (run_dir / "queries.csv").exists():
        write_frame(run_dir / "queries.csv", query_frame(d, res.summary["queries"], proba))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m cfgen.plots.examples",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("out", nargs="?", default="docs", help="directory (default: docs)")
    ap.add_argument("--no-report", action="store_true", help="only the plots")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = figures(out)
    if not args.no_report:
        paths += report_example(out)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
