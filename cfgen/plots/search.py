"""Plots of one query's genetic search: fitness curves, PCA map with search path, change heatmap.

Each function draws one figure, writes it as a PNG and returns its path. matplotlib is imported
inside the functions (so ``import cfgen`` does not need it) and drawn through the Agg canvas of a
stand-alone :class:`matplotlib.figure.Figure` (no ``pyplot``, no global backend switch: safe in
workers and headless jobs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from cfgen.explanation import Explanation
from cfgen.schema import FeatureSchema

__all__ = ["plot_change_heatmap", "plot_fitness", "plot_pca_path"]

CATEGORY_COLOUR = "#b07cc6"


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, path: str | Path, dpi: int = 130) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


def plot_fitness(
    explanations: Sequence[Explanation],
    path: str | Path,
    *,
    title: str | None = None,
    logy: bool | None = None,
) -> Path:
    """Best and mean fitness per generation, every replication of one query overlaid.

    One colour per replication; best is solid, population mean dashed. Fitness is minimised.
    ``logy=None`` switches to a log axis when all values are positive and span more than two
    decades (the mean carries the large offset of invalid individuals early in a run).
    """
    from matplotlib import colormaps

    if isinstance(explanations, Explanation):
        explanations = [explanations]
    fig = _figure(7.5, 4.5)
    ax = fig.add_subplot()
    cmap = colormaps["tab10"]
    values = []
    for r, exp in enumerate(explanations):
        colour = cmap(r % 10)
        best = np.asarray(exp.best_fitness, dtype=float)
        mean = np.asarray(exp.mean_fitness, dtype=float)
        if best.size:
            ax.plot(np.arange(best.size), best, color=colour, lw=1.8, label=f"rep {r}: best")
            values.append(best)
        if mean.size:
            ax.plot(
                np.arange(mean.size),
                mean,
                color=colour,
                lw=1.2,
                ls="--",
                alpha=0.8,
                label=f"rep {r}: mean",
            )
            values.append(mean)
    if values:
        allv = np.concatenate(values)
        allv = allv[np.isfinite(allv)]
        if logy is None:
            logy = bool(allv.size and allv.min() > 0 and allv.max() / allv.min() > 100)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness (lower is better)" + (", log scale" if logy else ""))
    n = len(explanations)
    ax.set_title(
        title or f"Fitness per generation: best (solid) and mean (dashed), {n} replication(s)"
    )
    ax.grid(True, alpha=0.3)
    if values:
        ax.legend(fontsize=7, ncol=2 if n > 3 else 1, loc="upper right")
    return _save(fig, path)


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
    from matplotlib.collections import LineCollection
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    X_train = np.asarray(X_train, dtype=float)
    y_train = np.asarray(y_train)
    scaler = StandardScaler().fit(X_train)
    pca = PCA(n_components=2).fit(scaler.transform(X_train))

    def proj(A):
        A = np.atleast_2d(np.asarray(A, dtype=float))
        return pca.transform(scaler.transform(A)) if A.size else np.zeros((0, 2))

    fig = _figure(7.5, 6.0)
    ax = fig.add_subplot()
    classes = np.unique(y_train)
    cmap = colormaps["tab10"]
    P = proj(X_train)
    for c in classes:
        name = class_names[int(c)] if class_names is not None else f"class {c}"
        sel = y_train == c
        ax.scatter(
            P[sel, 0], P[sel, 1], s=14, alpha=0.35, color=cmap(int(c) % 10), label=f"train: {name}"
        )

    path_pts = proj(explanation.best_per_generation)
    if len(path_pts) >= 2:
        segs = np.stack([path_pts[:-1], path_pts[1:]], axis=1)
        lc = LineCollection(segs, cmap="Greys", norm=None, linewidths=1.8, zorder=3)
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

    tname = (
        class_names[explanation.target]
        if class_names is not None
        else f"class {explanation.target}"
    )
    C = proj(explanation.counterfactuals)
    if len(C):
        ax.scatter(
            C[:, 0],
            C[:, 1],
            marker="X",
            s=120,
            color=cmap(explanation.target % 10),
            edgecolor="black",
            linewidth=0.8,
            zorder=5,
            label=f"counterfactuals ({len(C)}, target {tname})",
        )
    q = proj(x)[0]
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


def plot_change_heatmap(
    x: np.ndarray,
    counterfactuals: Explanation | np.ndarray,
    path: str | Path,
    *,
    schema: FeatureSchema | None = None,
    feature_names: Sequence[str] | None = None,
    title: str | None = None,
    atol: float = 1e-9,
) -> Path:
    """Features (rows) x counterfactuals (columns): what each counterfactual changes in the query.

    The first column shows the query's values. A numeric change is coloured by its signed size
    relative to the feature's range (``schema`` low/high, else the largest change of that feature
    here), red up, blue down, the colour scale spanning the largest such change shown; a changed
    category is purple. Every cell carries the counterfactual's
    value (category names from ``schema``), bold where it differs from the query.
    """
    from matplotlib.colors import ListedColormap

    x = np.asarray(x, dtype=float).ravel()
    if isinstance(counterfactuals, Explanation):
        cfs = np.asarray(counterfactuals.counterfactuals, dtype=float)
    else:
        cfs = np.asarray(counterfactuals, dtype=float)
    cfs = cfs.reshape(-1, x.size)
    d, m = x.size, len(cfs)
    if schema is not None:
        names = schema.names
        cat = schema.categorical
        span = schema.highs - schema.lows
        decimals = list(schema.decimals)
    else:
        names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(d)]
        cat = np.zeros(d, dtype=bool)
        span = np.full(d, np.nan)
        decimals = [None] * d
    delta = cfs - x  # (m, d)
    changed = np.abs(delta) > atol
    fallback = np.abs(delta).max(axis=0) if m else np.ones(d)
    span = np.where(np.isfinite(span) & (span > 0), span, np.where(fallback > 0, fallback, 1.0))
    rel = (delta / span).T  # (d, m)
    num_changes = np.abs(rel[~cat]) if (~cat).any() else np.zeros(0)
    vmax = float(num_changes.max()) if num_changes.size and num_changes.max() > 0 else 1.0

    def label(j: int, v: float) -> str:
        if cat[j] and schema is not None:
            cats = schema.features[j].categories
            code = int(round(v))
            return str(cats[code]) if 0 <= code < len(cats) else str(code)
        return _fmt(v, decimals[j])

    fig = _figure(2.4 + 1.05 * (m + 1), 1.3 + 0.42 * d)
    ax = fig.add_subplot()
    num = np.ma.masked_array(
        np.hstack([np.zeros((d, 1)), rel]),
        mask=np.hstack([np.ones((d, 1), bool), cat[:, None] & np.ones((d, m), bool)]),
    )
    im = ax.imshow(num, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
    catm = np.ma.masked_array(
        np.ones((d, m + 1)), mask=~np.hstack([np.zeros((d, 1), bool), (changed.T & cat[:, None])])
    )
    ax.imshow(catm, cmap=ListedColormap([CATEGORY_COLOUR]), vmin=0, vmax=1, aspect="auto")
    query_col = np.ma.masked_array(
        np.ones((d, m + 1)), mask=~np.hstack([np.ones((d, 1), bool), np.zeros((d, m), bool)])
    )
    ax.imshow(query_col, cmap=ListedColormap(["#e6e6e6"]), vmin=0, vmax=1, aspect="auto")
    for j in range(d):
        ax.text(0, j, label(j, x[j]), ha="center", va="center", fontsize=8)
        for i in range(m):
            ch = bool(changed[i, j])
            dark = ch and not cat[j] and abs(rel[j, i]) > 0.6 * vmax
            colour = "white" if dark else ("black" if ch else "#999999")
            ax.text(
                i + 1,
                j,
                label(j, cfs[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                fontweight="bold" if ch else "normal",
                color=colour,
            )
    ax.set_xticks(range(m + 1), ["query"] + [f"cf {i}" for i in range(m)])
    ax.set_yticks(range(d), names)
    ax.set_xticks(np.arange(-0.5, m + 1), minor=True)
    ax.set_yticks(np.arange(-0.5, d), minor=True)
    ax.grid(which="minor", color="white", lw=1.5)
    ax.tick_params(which="minor", length=0)
    ax.xaxis.tick_top()
    cb = fig.colorbar(im, ax=ax, shrink=0.9, pad=0.02)
    cb.set_label("change / feature range", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    if cat.any():
        ax.set_xlabel("purple cell: category changed", fontsize=8, color=CATEGORY_COLOUR)
    ax.set_title(
        title or "Query vs counterfactuals: feature changes (cell text = new value)", fontsize=10
    )
    return _save(fig, path)
