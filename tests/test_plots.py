"""Plots that read: checked on their artists (data, ticks, text extents), not just on the file.

The fitness plot must not show the invalid-individual penalty; heatmap cells and category chips
must not overlap or run out of their cell; the colour bar stays narrow; counterfactuals are
numbered; categorical features get their own panel. Real german_credit / satimage searches.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from cfgen.explanation import Explanation  # noqa: E402
from cfgen.plots.bounds import class_bounds_figure  # noqa: E402
from cfgen.plots.search import (  # noqa: E402
    change_heatmap_figure,
    fitness_figure,
    fitness_series,
)

PENALTY = 1e6


def _exp(best, mean, extra=None, n_found=3, d=2):
    return Explanation(
        np.zeros((n_found, d)),
        1,
        5,
        0.1,
        best_fitness=np.asarray(best, float),
        mean_fitness=np.asarray(mean, float),
        extra=extra or {},
    )


def test_fitness_series_leaves_the_penalty_out():
    # generation 0: no valid individual (best carries the penalty); 1: valid best, mixed
    # population (mean = penalty share); 2: every individual valid (mean is penalty-free)
    e = _exp([PENALTY + 0.3, 0.9, 0.5], [PENALTY, 4e5, 0.6])
    s = fitness_series(e)
    assert np.isnan(s.best[0]) and s.best[1:].tolist() == [0.9, 0.5]
    assert np.isnan(s.mean[:2]).all() and s.mean[2] == 0.6
    assert s.n_valid is None
    # with the search's own records: the mean over valid individuals and their count
    book = [
        {"gen": g, "valid": v, "valid_mean": m}
        for g, v, m in ((0, 0, np.nan), (1, 4, 1.4), (2, 30, 0.6))
    ]
    s = fitness_series(_exp([PENALTY + 0.3, 0.9, 0.5], [PENALTY, 4e5, 0.6], {"logbook": book}))
    assert np.isnan(s.mean[0]) and s.mean[1:].tolist() == [1.4, 0.6]
    assert s.n_valid.tolist() == [0, 4, 30]


def test_fitness_figure_one_panel_per_replication_integer_ticks():
    exps = [
        _exp([PENALTY + 0.3, 0.9, 0.5, 0.5], [PENALTY, 4e5, 0.6, 0.55]),
        _exp([0.8, 0.7], [3e5, 2e5]),
        _exp([PENALTY + 1, PENALTY + 0.5, 1.2], [PENALTY, PENALTY, 9e5], n_found=1),
    ]
    fig = fitness_figure(exps)
    fig.canvas.draw()
    panels = [a for a in fig.axes if a.get_visible() and a.get_title()]
    assert [a.get_title() for a in panels] == [
        "replication 0: 4 generation(s), 3 found",
        "replication 1: 2 generation(s), 3 found",
        "replication 2: 3 generation(s), 1 found",
    ]
    for ax in panels:
        ys = np.concatenate([ln.get_ydata() for ln in ax.get_lines()]).astype(float)
        assert np.nanmax(ys) < 10  # the 1e6 penalty is nowhere on the axis
        assert ax.get_yscale() == "linear"
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
    # generations without a valid individual are shaded: 1 in the first panel, 2 in the third
    assert [len(a.patches) for a in panels] == [1, 0, 2]


@pytest.fixture(scope="module")
def german():
    """A real german_credit search: data, model, bounds, one query and its explanation."""
    from conftest import compose_config

    from cfgen.experiment import resolve_bounds
    from cfgen.methods import method_factory
    from cfgen.problem import Problem

    cfg = compose_config(["dataset=german_credit", "method/ga=quick"])
    problem = Problem.from_config(cfg.dataset, cfg.model)
    factory = method_factory(cfg.method)
    bounds, _ = resolve_bounds(problem, factory, cfg.method, problem.X_train)
    ex = factory(problem, problem.schema, bounds)
    x = problem.X_test[55]
    target = 1 - int(problem.predict(x[None, :])[0])
    exps = [ex.explain(x, target, 5, np.random.default_rng(s)) for s in range(2)]
    return problem, problem.estimator, bounds, x, target, exps


def _cell_boxes(fig, gid):
    r = fig.canvas.get_renderer()
    return [
        (t, t.get_window_extent(r))
        for ax in fig.axes
        for t in ax.texts
        if t.get_gid() == gid and t.get_text()
    ]


def test_real_fitness_plot_has_valid_counts(german):
    *_, exps = german
    fig = fitness_figure(exps)
    fig.canvas.draw()
    bars = [a for a in fig.axes if a.get_visible() and a.containers]
    assert len(bars) == len(exps)  # the search's logbook gives the valid individuals per gen
    for a, e in zip(bars, exps, strict=True):
        heights = [p.get_height() for p in a.containers[0]]
        assert heights == [r["valid"] for r in e.extra["logbook"]]


def test_change_heatmap_cells_fit_and_colour_bar_is_narrow(german):
    data, _, _, x, _, exps = german
    e = next(e for e in exps if e.n_found)
    fig = change_heatmap_figure(x, e, schema=data.schema)
    fig.canvas.draw()
    ax = fig.axes[0]
    boxes = _cell_boxes(fig, "cell")
    assert boxes
    # a cell is one data unit wide: its width in pixels
    x0, x1 = ax.transData.transform([(0, 0), (1, 0)])[:, 0]
    cell_px = abs(x1 - x0)
    for t, b in boxes:
        assert b.width < cell_px, f"{t.get_text()!r} is wider than its cell"
    for i, (_, a) in enumerate(boxes):
        for _, b in boxes[i + 1 :]:
            assert not a.overlaps(b)
    # only the changed features are rows (20 features > 12), and the note says how many hid
    changed = np.abs(e.counterfactuals - x).max(axis=0) > 1e-9
    assert len(ax.get_yticklabels()) == int(changed.sum())
    assert f"{int((~changed).sum())} feature(s) unchanged" in ax.get_xlabel()
    cbar = ax.child_axes[0]  # the colour bar sits in an inset of the heatmap
    width_in = cbar.get_window_extent(fig.canvas.get_renderer()).width / fig.dpi
    assert width_in < 0.2


def test_class_bounds_categoricals_as_chips_and_numbered_counterfactuals(german):
    data, _, bounds, x, target, exps = german
    e = next(e for e in exps if e.n_found)
    fig = class_bounds_figure(
        bounds,
        data.schema,
        data.X_train,
        data.y_train,
        x,
        e.counterfactuals,
        data.class_names,
        target=target,
    )
    fig.canvas.draw()
    numeric_ax, chip_ax = fig.axes
    num_names = [t.get_text() for t in numeric_ax.get_yticklabels()]
    assert num_names == [f.name for f in data.schema.features if f.kind.value != "categorical"]
    chips = _cell_boxes(fig, "chip")
    texts = [t.get_text() for t, _ in chips]
    # chips do not overlap each other, and stay inside the figure
    r = fig.canvas.get_renderer()
    patches = [t.get_bbox_patch().get_window_extent(r) for t, _ in chips]
    for i, a in enumerate(patches):
        assert a.x1 <= fig.bbox.width + 1
        for b in patches[i + 1 :]:
            assert not a.overlaps(b)
    # every category the target class allows is a chip, with its label (cut at 28 characters)
    from cfgen.plots.bounds import _cut

    for j, f in enumerate(data.schema.features):
        if f.kind.value != "categorical":
            continue
        codes = np.arange(len(f.categories), dtype=float)
        inside = bounds.contains(np.tile(codes[:, None], (1, len(data.schema))), target)[:, j]
        if not inside.all():
            for code in np.flatnonzero(inside):
                assert _cut(f.categories[code]) in texts
    # counterfactuals: each one that moves a numeric feature is numbered in a box there
    cf_labels = [t.get_text() for t, _ in _cell_boxes(fig, "cf")]
    numbers = {int(n) for lbl in cf_labels for n in lbl.split(",")}
    num_cols = [j for j, f in enumerate(data.schema.features) if f.kind.value != "categorical"]
    moved = np.flatnonzero((np.abs(e.counterfactuals - x)[:, num_cols] > 1e-9).any(axis=1))
    assert numbers == set(moved.tolist())


def test_run_plots_file_names(tmp_path, cfg_factory):
    from cfgen.experiment import run
    from cfgen.plots.run import slug

    assert slug("yes, registered / a b") == "yes_registered_a_b"
    res = run(
        cfg_factory(
            "experiment_params.num_samples=1",
            "experiment_params.num_replications=1",
            "experiment_params.target_class=0",
            "output.plots=true",
        ),
        tmp_path,
    )
    names = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    q = res.summary["queries"][0]
    t = slug(res.problem.class_names[res.tasks[0].target])
    assert names == sorted(
        f"{k}_q{q}_to_{t}_c0.png" for k in ("bounds", "changes", "fitness", "pca")
    )


def test_bounds_plot_of_wide_data_keeps_the_features_moved_most(tmp_path, cfg_factory):
    """satimage: 36 features; the bounds plot keeps the 15 moved most (relative to the range)."""
    from cfgen.experiment import run
    from cfgen.plots.run import MAX_BOUNDS_FEATURES, _bounds_plot, _explanation

    res = run(
        cfg_factory(
            "dataset=satimage",
            "experiment_params.num_samples=1",
            "experiment_params.num_replications=1",
        ),
        tmp_path,
    )
    r = next(r for r in res.results if len(r.counterfactuals))
    task = next(t for t in res.tasks if t.index == r.index)
    x = res.problem.X_test[task.query]
    got = _bounds_plot(
        lambda *a, **kw: kw,
        res.bounds,
        res.problem,
        x,
        _explanation(task, r, 5),
        tmp_path / "b.png",
        "q",
    )
    s = res.problem.schema
    move = (np.abs(r.counterfactuals - x) / (s.highs - s.lows)).max(axis=0)
    assert (move > 0).sum() > MAX_BOUNDS_FEATURES  # the case this is about
    expect = sorted(np.argsort(-move, kind="stable")[:MAX_BOUNDS_FEATURES])
    assert got["features"] == [s.names[j] for j in expect]
    assert "moved most" in got["title"]
