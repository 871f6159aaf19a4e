"""All plots of one run, written into ``<run_dir>/plots`` (``output.plots=true``).

File names are ``<kind>_q<query>_to_<target>_c<combination>.png`` (``kind``: fitness, pca,
changes, bounds; ``target`` the class name made file-safe by :func:`slug`); the run report
(:mod:`cfgen.report.run_report`) finds them by that pattern.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cfgen.constraints import ClassBounds
from cfgen.explanation import Explanation
from cfgen.plan import Task

#: above this many features the bounds plot shows only the features some counterfactual changes
MAX_BOUNDS_FEATURES = 15


def slug(name: str) -> str:
    """A class name as a file-name part: letters, digits, ``.``, ``-``, ``_``; others → ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "_"


def _explanation(task: Task, r: Any, k: int) -> Explanation:
    """A task result as an Explanation; per-generation search records (``n_valid``,
    ``valid_mean``) ride along in ``extra`` when the result carries them."""
    exp = getattr(r, "explanation", None)
    if isinstance(exp, Explanation):
        return exp
    extra = {
        key: np.asarray(getattr(r, key))
        for key in ("n_valid", "valid_mean")
        if getattr(r, key, None) is not None
    }
    return Explanation(
        r.counterfactuals,
        task.target,
        k,
        r.seconds,
        r.reason,
        r.best_fitness,
        r.mean_fitness,
        r.best_per_generation,
        r.generations,
        roles=list(getattr(r, "roles", None) or []),
        extra=extra,
    )


def write_run_plots(
    run_dir: Path,
    data: Any,
    bounds: ClassBounds | None,
    tasks: list[Task],
    results: list[Any],
    k: int,
    progress: Callable[[], None] | None = None,
) -> list[Path]:
    """Per query × target × combination: fitness curves (all replications), PCA path, change
    heatmap and class-interval plot (first replication with counterfactuals). Returns paths.

    ``data`` has ``X_train``, ``y_train``, ``X_test``, ``schema`` and ``class_names`` (a
    ``Problem`` or ``Dataset``). ``progress`` is called once per query × target × combination,
    e.g. ``cfgen.console.Phase.advance``.
    """
    from cfgen.plots.bounds import plot_class_bounds
    from cfgen.plots.search import plot_change_heatmap, plot_fitness, plot_pca_path

    out = Path(run_dir) / "plots"
    by_index = {r.index: r for r in results}
    groups: dict[tuple[int, int, int], list[Explanation]] = defaultdict(list)
    for t in tasks:
        r = by_index[t.index]
        if r.error is None:
            groups[(t.query, t.target, t.combination)].append(_explanation(t, r, k))
    paths: list[Path] = []
    names = data.class_names
    for (q, target, comb), exps in groups.items():
        stem = f"q{q}_to_{slug(names[target])}_c{comb}"
        x = data.X_test[q]
        label = f"query {q} → {names[target]} (combination {comb})"
        if progress is not None:
            progress()
        if any(len(e.best_fitness) for e in exps):
            paths.append(
                plot_fitness(exps, out / f"fitness_{stem}.png", title=f"Search progress, {label}")
            )
        found = next((e for e in exps if e.n_found), None)
        if found is None:
            continue
        if len(found.best_per_generation):
            paths.append(
                plot_pca_path(
                    data.X_train,
                    data.y_train,
                    x,
                    found,
                    out / f"pca_{stem}.png",
                    class_names=names,
                    title=f"PCA of training data and search path, {label}",
                )
            )
        paths.append(
            plot_change_heatmap(
                x,
                found,
                out / f"changes_{stem}.png",
                schema=data.schema,
                title=f"Changes per counterfactual, {label}",
            )
        )
        if bounds is not None:
            paths.append(
                _bounds_plot(
                    plot_class_bounds, bounds, data, x, found, out / f"bounds_{stem}.png", label
                )
            )
    return paths


def _bounds_plot(plot, bounds, data, x, found: Explanation, path: Path, label: str) -> Path:
    """The class-bounds plot; with many features only those the counterfactuals move, at most
    :data:`MAX_BOUNDS_FEATURES` (the largest moves relative to the feature's range)."""
    features = None
    note = ""
    schema = data.schema
    d = len(schema)
    if d > MAX_BOUNDS_FEATURES:
        span = np.where(schema.highs > schema.lows, schema.highs - schema.lows, 1.0)
        move = (np.abs(found.counterfactuals - x) / span).max(axis=0)
        moved = np.flatnonzero(move > 1e-12)
        keep = moved[np.argsort(-move[moved], kind="stable")[:MAX_BOUNDS_FEATURES]]
        keep = np.sort(keep) if keep.size else np.arange(d)
        features = [schema.names[j] for j in keep]
        if moved.size > keep.size:
            note = (
                f"; the {keep.size} of {moved.size} changed features moved most "
                f"({d - moved.size} unchanged)"
            )
        elif keep.size < d:
            note = f"; {d - keep.size} features that no counterfactual changes are not shown"
    return plot(
        bounds,
        schema,
        data.X_train,
        data.y_train,
        query=x,
        counterfactuals=found.counterfactuals,
        path=path,
        class_names=data.class_names,
        features=features,
        target=found.target,
        title=f"Class bounds ({bounds.mode}), {label}{note}",
    )
