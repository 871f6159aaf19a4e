"""Plots of one query's genetic search: fitness curves, PCA map with search path, change heatmap.

Each function draws one figure, writes it as a PNG and returns its path. matplotlib is imported
inside the functions (so ``import cfgen`` does not need it) and drawn through the Agg canvas of a
stand-alone :class:`matplotlib.figure.Figure` (no ``pyplot``, no global backend switch: safe in
workers and headless jobs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from cfgen.explanation import Explanation
from cfgen.schema import FeatureSchema

__all__ = ["plot_change_heatmap", "plot_fitness", "plot_pca_path"]

CATEGORY_COLOUR = "#b07cc6"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path, dpi: int = 130) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


@dataclass
class FitnessSeries:
    """One replication's search progress, penalty-free.

    ``best``: objective of the best *valid* individual per generation (NaN while none is valid);
    ``mean``: mean objective over the valid individuals (from the search's ``valid_mean`` record;
    without it, the population mean where it is free of any penalty, else NaN); ``n_valid``:
    valid individuals per generation (``None`` when the search did not record it).
    """

    generations: np.ndarray
    best: np.ndarray
    mean: np.ndarray
    n_valid: np.ndarray | None
    found: int


def _invalid_offset() -> float:
    try:
        from cfgen.search.objectives import INVALID

        return float(INVALID)
    except ImportError:  # pragma: no cover - the search is part of cfgen
        return 1e6


def _record(exp: Explanation, key: str) -> np.ndarray | None:
    """A per-generation series from ``extra[key]`` or the logbook's ``key`` entries."""
    v = exp.extra.get(key) if exp.extra else None
    if v is None and exp.extra and exp.extra.get("logbook"):
        book = exp.extra["logbook"]
        if all(key in r for r in book):
            v = [r[key] for r in book]
    return None if v is None else np.asarray(v, dtype=float)


def fitness_series(exp: Explanation, invalid: float | None = None) -> FitnessSeries:
    """The penalty-free series of :func:`plot_fitness` (fitness >= ``invalid`` is the penalty
    of invalid individuals, ``cfgen.search.objectives.INVALID``)."""
    cut = _invalid_offset() if invalid is None else invalid
    best = np.asarray(exp.best_fitness, dtype=float)
    gens = np.arange(best.size)
    best_valid = np.where(best < cut, best, np.nan)
    mean = _record(exp, "valid_mean")
    if mean is None or mean.size != best.size:
        # without the record: the population mean only where it carries no penalty at all (one
        # invalid individual in a population of up to 10 000 adds more than cut / 10 000)
        raw = np.asarray(exp.mean_fitness, dtype=float)
        mean = (
            np.where(raw < cut / 1e4, raw, np.nan)
            if raw.size == best.size
            else np.full(best.size, np.nan)
        )
    n_valid = _record(exp, "n_valid")
    if n_valid is None:
        n_valid = _record(exp, "valid")
    if n_valid is not None and n_valid.size != best.size:
        n_valid = None
    return FitnessSeries(gens, best_valid, np.where(mean < cut, mean, np.nan), n_valid, exp.n_found)


def fitness_figure(
    explanations: Sequence[Explanation] | Explanation,
    *,
    title: str | None = None,
    max_cols: int = 4,
):
    """The figure of :func:`plot_fitness` (returned, not saved: tests read its artists)."""
    from matplotlib.ticker import MaxNLocator

    if isinstance(explanations, Explanation):
        explanations = [explanations]
    series = [fitness_series(e) for e in explanations] or [
        FitnessSeries(np.zeros(0), np.zeros(0), np.zeros(0), None, 0)
    ]
    n = len(series)
    ncols = min(n, max_cols)
    groups = -(-n // ncols)
    counts = any(s.n_valid is not None for s in series)
    per = 2 if counts else 1
    fig = _figure(2.2 + 2.9 * ncols, (3.0 + (1.2 if counts else 0.0)) * groups + 0.6)
    ratios = ([3, 1] if counts else [1]) * groups
    axes = fig.subplots(
        groups * per, ncols, squeeze=False, sharex="col", gridspec_kw={"height_ratios": ratios}
    )
    finite = np.concatenate([np.r_[s.best, s.mean] for s in series])
    finite = finite[np.isfinite(finite)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pad = 0.08 * (hi - lo) if hi > lo else 0.1 * max(abs(hi), 1.0)
    for i in range(groups * ncols):
        gi, c = divmod(i, ncols)
        ax = axes[gi * per, c]
        cax = axes[gi * per + 1, c] if counts else None
        if i >= n:
            ax.set_visible(False)
            if cax is not None:
                cax.set_visible(False)
            continue
        _fitness_panel(ax, cax, series[i], i, (lo - pad, hi + pad))
        for a in (ax, cax):
            if a is not None:
                a.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if c == 0:
            ax.set_ylabel("objective of valid\nindividuals (lower better)", fontsize=8)
            if cax is not None:
                cax.set_ylabel("valid\nindividuals", fontsize=8)
        (cax if cax is not None else ax).set_xlabel("generation", fontsize=8)
    fig.suptitle(title or "Search progress per replication", fontsize=10)
    return fig


def _fitness_panel(ax, cax, s: FitnessSeries, r: int, ylim: tuple[float, float]) -> None:
    g = s.generations
    none_valid = ~np.isfinite(s.best)
    for gen in g[none_valid]:
        ax.axvspan(gen - 0.5, gen + 0.5, color="0.85", lw=0, zorder=0)
    ax.plot(g, s.best, color="#1f77b4", lw=1.8, marker="o", ms=3.5, label="best valid")
    if np.isfinite(s.mean).any():
        ax.plot(
            g, s.mean, color="#ff7f0e", lw=1.2, ls="--", marker=".", ms=3, label="mean of valid"
        )
    ax.set_ylim(*ylim)
    ax.set_xlim(-0.5, max(len(g) - 0.5, 0.5))
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=7)
    ax.set_title(f"replication {r}: {len(g)} generation(s), {s.found} found", fontsize=8.5)
    handles, labels = ax.get_legend_handles_labels()
    if none_valid.any():
        from matplotlib.patches import Patch

        handles.append(Patch(color="0.85", label="no valid individual yet"))
    ax.legend(handles=handles, fontsize=6.5, loc="upper right", framealpha=0.85)
    if cax is not None:
        if s.n_valid is not None:
            cax.bar(g, s.n_valid, width=0.7, color="#2ca02c", alpha=0.7)
        cax.grid(True, axis="y", alpha=0.3)
        cax.tick_params(labelsize=7)


def plot_fitness(
    explanations: Sequence[Explanation] | Explanation,
    path: str | Path,
    *,
    title: str | None = None,
    logy: bool | None = None,
) -> Path:
    """Search progress, one panel per replication: the objective of the best valid individual
    and the mean over valid individuals per generation (the penalty of invalid individuals,
    ~1e6, left out: it would flatten every curve), generations without a valid individual
    shaded, and below each panel the number of valid individuals (when the search recorded it).
    ``logy`` is accepted for compatibility and ignored (the penalty-free values need no log).
    """
    del logy
    return _save(fitness_figure(explanations, title=title), path)


def _pca_projection(X_train: np.ndarray):
    """The map to the first two principal components of the standardised training data, and
    the fitted PCA (its explained variance labels the axes)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X_train)
    pca = PCA(n_components=2).fit(scaler.transform(X_train))

    def proj(A):
        A = np.atleast_2d(np.asarray(A, dtype=float))
        return pca.transform(scaler.transform(A)) if A.size else np.zeros((0, 2))

    return proj, pca


def _draw_training(ax, P: np.ndarray, y_train: np.ndarray, class_names, cmap) -> None:
    """The training rows, faint, one colour per class: the backdrop the search moves on."""
    for c in np.unique(y_train):
        name = class_names[int(c)] if class_names is not None else f"class {c}"
        sel = y_train == c
        ax.scatter(
            P[sel, 0], P[sel, 1], s=14, alpha=0.35, color=cmap(int(c) % 10), label=f"train: {name}"
        )


def _draw_search_path(ax, path_pts: np.ndarray) -> None:
    """The best individual per generation, joined light (first) to dark (last), its start and
    end marked: where the search went, not only where it ended."""
    from matplotlib.collections import LineCollection

    if len(path_pts) >= 2:
        segs = np.stack([path_pts[:-1], path_pts[1:]], axis=1)
        lc = LineCollection(list(segs), cmap="Greys", norm=None, linewidths=1.8, zorder=3)
        lc.set_array(np.linspace(0.35, 1.0, len(segs)))
        lc.set_clim(0.0, 1.0)
        ax.add_collection(lc)
    if len(path_pts):
        ax.scatter(
            *path_pts[0],
            marker="o",
            s=40,
            facecolor="white",
            edgecolor="black",
            zorder=4,
            label="best individual, generation 0",
        )
        ax.scatter(
            *path_pts[-1],
            marker="s",
            s=40,
            facecolor="black",
            edgecolor="black",
            zorder=4,
            label=f"best individual, generation {len(path_pts) - 1}",
        )


def _draw_endpoints(ax, C: np.ndarray, q: np.ndarray, target: int, class_names, cmap) -> None:
    """The counterfactuals (crosses in the target's colour) and the query (gold star), drawn
    last so that the training cloud never hides them."""
    tname = class_names[target] if class_names is not None else f"class {target}"
    if len(C):
        ax.scatter(
            C[:, 0],
            C[:, 1],
            marker="X",
            s=120,
            color=cmap(target % 10),
            edgecolor="black",
            linewidth=0.8,
            zorder=5,
            label=f"counterfactuals ({len(C)}, target {tname})",
        )
    ax.scatter(
        *q,
        marker="*",
        s=320,
        color="gold",
        edgecolor="black",
        linewidth=1.0,
        zorder=6,
        label="query",
    )


def plot_pca_path(
    X_train: np.ndarray,
    y_train: np.ndarray,
    x: np.ndarray,
    explanation: Explanation,
    path: str | Path,
    *,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Training data in its first two principal components, coloured by class, with the query,
    its counterfactuals and the best individual's position at every generation.

    PCA is fitted on the standardised training data (categorical codes included as numbers:
    the map is for orientation, not for distances). The path is drawn from light (first
    generation) to dark (last), with its start and end marked.
    """
    from matplotlib import colormaps

    X_train = np.asarray(X_train, dtype=float)
    y_train = np.asarray(y_train)
    proj, pca = _pca_projection(X_train)
    fig = _figure(7.5, 6.0)
    ax = fig.add_subplot()
    cmap = colormaps["tab10"]
    _draw_training(ax, proj(X_train), y_train, class_names, cmap)
    _draw_search_path(ax, proj(explanation.best_per_generation))
    C = proj(explanation.counterfactuals)
    _draw_endpoints(ax, C, proj(x)[0], explanation.target, class_names, cmap)
    ev = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 ({100 * ev[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC2 ({100 * ev[1]:.0f}% of variance)")
    ax.set_title(title or "PCA of training data: query, counterfactuals and best individual's path")
    ax.legend(fontsize=7, loc="best", framealpha=0.85)
    ax.grid(True, alpha=0.25)
    return _save(fig, path)


def _fmt(v: float, decimals: int | None) -> str:
    if decimals is not None and 0 <= decimals <= 3:
        return f"{v:.{int(decimals)}f}"
    return f"{v:.4g}"


class _Labels:
    """Cell texts that fit a cell: wrapped to ``width`` characters on at most two lines; longer
    ones cut, with a numbered footnote ``[n]`` holding the whole text."""

    def __init__(self, width: int = 16, lines: int = 2) -> None:
        self.width, self.lines = width, lines
        self.notes: dict[str, int] = {}

    def __call__(self, text: str) -> str:
        import textwrap

        parts = textwrap.wrap(text, self.width, break_long_words=True) or [""]
        if len(parts) <= self.lines:
            return "\n".join(parts)
        key = self.notes.setdefault(text, len(self.notes) + 1)
        tag = f" [{key}]"
        head = parts[: self.lines]
        last = head[-1][: max(self.width - len(tag) - 1, 1)].rstrip() + "…" + tag
        return "\n".join([*head[:-1], last])

    def footnotes(self, feature_of: dict[str, str]) -> list[str]:
        return [f"[{k}] {feature_of.get(t, '')}: {t}" for t, k in self.notes.items()]


def _feature_facts(
    d: int, schema: FeatureSchema | None, feature_names: Sequence[str] | None
) -> tuple[list[str], np.ndarray, np.ndarray, list[int | None]]:
    """Every feature's name, categorical flag, range and decimals: from ``schema`` when there
    is one, else plain numeric features of unknown range (NaN) and free formatting."""
    if schema is not None:
        decimals: list[int | None] = list(schema.decimals)
        return schema.names, schema.categorical, schema.highs - schema.lows, decimals
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(d)]
    return names, np.zeros(d, dtype=bool), np.full(d, np.nan), [None] * d


@dataclass
class _Changes:
    """The heatmap's rows (features shown) and each counterfactual's change there, relative
    to the feature's range, so that features of any scale share one colour scale."""

    rows: np.ndarray  # indices of the features shown
    hidden: int  # features left out (no counterfactual changes them)
    cat: np.ndarray  # (d,) categorical
    changed: np.ndarray  # (m, d)
    rel: np.ndarray  # (d, m): signed change / range
    vmax: float  # the colour scale's half-width: the largest numeric change shown


def _changes(
    x: np.ndarray,
    cfs: np.ndarray,
    cat_all: np.ndarray,
    span_all: np.ndarray,
    atol: float,
    hide_unchanged: bool | None,
) -> _Changes:
    """The changes to show; ``hide_unchanged`` (default: above 12 features) drops the rows no
    counterfactual changes, which would only push the changed ones apart."""
    d_all, m = x.size, len(cfs)
    changed_all = np.abs(cfs - x) > atol
    if hide_unchanged is None:
        hide_unchanged = d_all > 12
    rows = np.flatnonzero(changed_all.any(axis=0)) if hide_unchanged and m else np.arange(d_all)
    cat = cat_all[rows]
    delta = (cfs - x)[:, rows]
    # without a known range: the largest change of the feature here
    fallback = np.abs(delta).max(axis=0) if m else np.ones(len(rows))
    span = span_all[rows]
    span = np.where(np.isfinite(span) & (span > 0), span, np.where(fallback > 0, fallback, 1.0))
    rel = (delta / span).T  # (d, m)
    num_changes = np.abs(rel[~cat]) if (~cat).any() else np.zeros(0)
    vmax = float(num_changes.max()) if num_changes.size and num_changes.max() > 0 else 1.0
    return _Changes(rows, d_all - len(rows), cat, changed_all[:, rows], rel, vmax)


def _cell_texts(
    x: np.ndarray,
    cfs: np.ndarray,
    rows: np.ndarray,
    schema: FeatureSchema | None,
    facts: tuple[list[str], np.ndarray, np.ndarray, list[int | None]],
    wrapper: _Labels,
) -> tuple[list[list[str]], list[str]]:
    """Per shown feature: the query's and each counterfactual's value as cell text (category
    names wrapped to fit a cell), and the footnotes of the names cut short."""
    names_all, cat_all, _, dec_all = facts
    feature_of: dict[str, str] = {}

    def label(r: int, v: float) -> str:
        j = int(rows[r])
        if cat_all[j] and schema is not None:
            cats = schema.features[j].categories
            code = int(round(v))
            text = str(cats[code]) if 0 <= code < len(cats) else str(code)
            feature_of.setdefault(text, names_all[j])
            return wrapper(text)
        return _fmt(v, dec_all[j])

    texts = [
        [label(r, x[rows[r]])] + [label(r, cfs[i, rows[r]]) for i in range(len(cfs))]
        for r in range(len(rows))
    ]
    return texts, wrapper.footnotes(feature_of)


def _draw_cells(ax, ch: _Changes):
    """The cell colours, three layers: numeric changes on the diverging scale, changed
    categories in one colour, the query's column grey. Returns the numeric layer (its
    colour bar)."""
    from matplotlib.colors import ListedColormap

    d, m = ch.rel.shape
    num = np.ma.masked_array(
        np.hstack([np.zeros((d, 1)), ch.rel]),
        mask=np.hstack([np.ones((d, 1), bool), ch.cat[:, None] & np.ones((d, m), bool)]),
    )
    im = ax.imshow(num, cmap="RdBu_r", vmin=-ch.vmax, vmax=ch.vmax, aspect="auto")
    catm = np.ma.masked_array(
        np.ones((d, m + 1)),
        mask=~np.hstack([np.zeros((d, 1), bool), (ch.changed.T & ch.cat[:, None])]),
    )
    ax.imshow(catm, cmap=ListedColormap([CATEGORY_COLOUR]), vmin=0, vmax=1, aspect="auto")
    query_col = np.ma.masked_array(
        np.ones((d, m + 1)), mask=~np.hstack([np.ones((d, 1), bool), np.zeros((d, m), bool)])
    )
    ax.imshow(query_col, cmap=ListedColormap(["#e6e6e6"]), vmin=0, vmax=1, aspect="auto")
    return im


def _write_cells(ax, texts: list[list[str]], ch: _Changes, fs: float) -> None:
    """The values in the cells: changed ones bold (white on a dark colour), unchanged grey."""
    d, m = ch.rel.shape
    for r in range(d):
        ax.text(0, r, texts[r][0], ha="center", va="center", fontsize=fs, gid="cell")
        for i in range(m):
            moved = bool(ch.changed[i, r])
            dark = moved and not ch.cat[r] and abs(ch.rel[r, i]) > 0.6 * ch.vmax
            colour = "white" if dark else ("black" if moved else "#999999")
            ax.text(
                i + 1,
                r,
                texts[r][i + 1],
                ha="center",
                va="center",
                fontsize=fs,
                fontweight="bold" if moved else "normal",
                color=colour,
                gid="cell",
                linespacing=1.0,
            )


def _heatmap_ticks(ax, names: list[str], m: int) -> None:
    """Counterfactuals numbered along the top, feature names down the side, white cell rims."""
    d = len(names)
    ax.set_xticks(range(m + 1), ["query"] + [f"cf {i}" for i in range(m)])
    ax.set_yticks(range(d), names)
    ax.set_xticks(np.arange(-0.5, m + 1), minor=True)
    ax.set_yticks(np.arange(-0.5, d), minor=True)
    ax.grid(which="minor", color="white", lw=1.5)
    ax.tick_params(which="minor", length=0)
    ax.tick_params(labelsize=8)
    ax.xaxis.tick_top()


def _heatmap_footer(ax, ch: _Changes, notes: list[str]) -> None:
    """What the purple means, how many features were left out, and the cut names' notes."""
    foot = []
    if ch.cat.any():
        foot.append("purple: category changed")
    if ch.hidden:
        foot.append(f"{ch.hidden} feature(s) unchanged in every counterfactual not shown")
    foot += notes
    if foot:
        ax.set_xlabel("\n".join(foot), fontsize=7, loc="left", color="0.25")


def change_heatmap_figure(
    x: np.ndarray,
    counterfactuals: Explanation | np.ndarray,
    *,
    schema: FeatureSchema | None = None,
    feature_names: Sequence[str] | None = None,
    title: str | None = None,
    atol: float = 1e-9,
    hide_unchanged: bool | None = None,
    wrap: int = 16,
):
    """The figure of :func:`plot_change_heatmap` (returned, not saved)."""
    x = np.asarray(x, dtype=float).ravel()
    cfs = np.asarray(
        counterfactuals.counterfactuals
        if isinstance(counterfactuals, Explanation)
        else counterfactuals,
        dtype=float,
    ).reshape(-1, x.size)
    m = len(cfs)
    facts = _feature_facts(x.size, schema, feature_names)
    names_all, cat_all, span_all, _ = facts
    ch = _changes(x, cfs, cat_all, span_all, atol, hide_unchanged)
    names = [names_all[j] for j in ch.rows]
    d = len(ch.rows)
    texts, notes = _cell_texts(x, cfs, ch.rows, schema, facts, _Labels(wrap))
    # the figure grows with the cells: each column as wide as its longest line (up to wrap)
    longest = max((len(line) for row in texts for t in row for line in t.split("\n")), default=4)
    two_line = any("\n" in t for row in texts for t in row)
    col_w = min(max(0.75, 0.2 + 0.068 * longest), 0.2 + 0.068 * wrap)
    row_h = 0.5 if two_line else 0.36
    name_w = 0.35 + 0.075 * max((len(n) for n in names), default=4)
    width = name_w + col_w * (m + 1) + 0.9
    height = 1.1 + row_h * max(d, 1) + 0.16 * len(notes) + (0.25 if ch.hidden else 0)
    fig = _figure(width, height)
    ax = fig.add_subplot()
    im = _draw_cells(ax, ch)
    _write_cells(ax, texts, ch, 7.5 if two_line else 8)
    _heatmap_ticks(ax, names, m)
    # a narrow colour bar: about 0.12 inch wide whatever the figure's width
    cax = ax.inset_axes((1.0 + 0.1 / (col_w * (m + 1)), 0.1, 0.12 / (col_w * (m + 1)), 0.8))
    cb = fig.colorbar(im, cax=cax)
    cb.set_label("change / feature range", fontsize=7)
    cb.ax.tick_params(labelsize=6)
    _heatmap_footer(ax, ch, notes)
    ax.set_title(
        title or "Query vs counterfactuals: feature changes (cell text = new value)", fontsize=10
    )
    return fig


def plot_change_heatmap(
    x: np.ndarray,
    counterfactuals: Explanation | np.ndarray,
    path: str | Path,
    *,
    schema: FeatureSchema | None = None,
    feature_names: Sequence[str] | None = None,
    title: str | None = None,
    atol: float = 1e-9,
    hide_unchanged: bool | None = None,
) -> Path:
    """Features (rows) x counterfactuals (columns): what each counterfactual changes in the query.

    The first column shows the query's values. A numeric change is coloured by its signed size
    relative to the feature's range (``schema`` low/high, else the largest change of that feature
    here), red up, blue down, the colour scale spanning the largest such change shown; a changed
    category is purple. Every cell carries the counterfactual's value (category names from
    ``schema``, wrapped on two lines; longer ones cut with a numbered footnote below the plot),
    bold where it differs from the query. ``hide_unchanged`` (default: when there are more than
    12 features) leaves out the features no counterfactual changes, and says how many.
    """
    return _save(
        change_heatmap_figure(
            x,
            counterfactuals,
            schema=schema,
            feature_names=feature_names,
            title=title,
            atol=atol,
            hide_unchanged=hide_unchanged,
        ),
        path,
    )
