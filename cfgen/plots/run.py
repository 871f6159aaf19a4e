"""All plots of one run, written into ``<run_dir>/plots`` (``output.plots=true``)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from cfgen.constraints import ClassBounds
from cfgen.data import Dataset
from cfgen.explanation import Explanation
from cfgen.launcher import TaskResult
from cfgen.plan import Task


def _explanation(task: Task, r: TaskResult, k: int) -> Explanation:
    return Explanation(r.counterfactuals, task.target, k, r.seconds, r.reason, r.best_fitness,
                       r.mean_fitness, r.best_per_generation, r.generations)


def write_run_plots(
    run_dir: Path,
    data: Dataset,
    bounds: ClassBounds | None,
    tasks: list[Task],
    results: list[TaskResult],
    k: int,
) -> list[Path]:
    """Per query × target × combination: fitness curves (all replications), PCA path, change
    heatmap and class-interval plot (first replication with counterfactuals). Returns paths."""
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
        stem = f"q{q}_to_{names[target]}_c{comb}"
        x = data.X_test[q]
        label = f"query {q} → {names[target]} (combination {comb})"
        if any(len(e.best_fitness) for e in exps):
            paths.append(plot_fitness(exps, out / f"fitness_{stem}.png",
                                      title=f"Fitness per generation, {label}"))
        found = next((e for e in exps if e.n_found), None)
        if found is None:
            continue
        if len(found.best_per_generation):
            paths.append(plot_pca_path(data.X_train, data.y_train, x, found,
                                       out / f"pca_{stem}.png", class_names=names,
                                       title=f"PCA of training data and search path, {label}"))
        paths.append(plot_change_heatmap(x, found, out / f"changes_{stem}.png", schema=data.schema,
                                         title=f"Changes per counterfactual, {label}"))
        if bounds is not None:
            paths.append(plot_class_bounds(bounds, data.schema, data.X_train, data.y_train,
                                           query=x, counterfactuals=found.counterfactuals,
                                           path=out / f"bounds_{stem}.png", class_names=names,
                                           title=f"Class bounds ({bounds.mode}), {label}"))
    return paths
