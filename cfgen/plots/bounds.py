"""Plots of mined class bounds (:class:`cfgen.constraints.ClassBounds`).

matplotlib is imported inside the functions and drawn on an Agg canvas of a stand-alone
:class:`matplotlib.figure.Figure` (no ``pyplot``, no global backend switch). Each function writes
one PNG and returns its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cfgen.constraints import ClassBounds
from cfgen.schema import FeatureSchema, Kind

__all__ = ["plot_class_bounds", "plot_bounds_modes"]


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


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def plot_class_bounds(
    bounds: ClassBounds,
    schema: FeatureSchema,
    X_train: np.ndarray,
    y_train: np.ndarray,
    query: np.ndarray | None = None,
    counterfactuals: np.ndarray | None = None,
    path: str | Path = "class_bounds.png",
    class_names: Sequence[str] | None = None,
    *,
    features: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Every class's interval per feature, side by side, in one panel.

    One row per feature (``features`` picks and orders them; default all), one thin lane per
    class inside the row. The horizontal axis is each feature's observed range (training rows,
    query and counterfactuals) scaled to [0, 1], its ends written beside the row, so features of
    any scale fit. A bar is the class's interval clipped to that range; a side left open (no
    threshold) ends in an arrow at the edge, and an interval that was empty as mined (opened, see
    ``ClassBounds.empty``) is drawn hatched. Categorical features show one square per code
    (filled: allowed for the class, hollow: not), with the category names above. Dots are the
    class's training rows (``y_train``; not drawn for categorical features). The bottom lane of
    each row holds the query (gold star, gold line across the row) and its counterfactuals
    (black crosses joined to it, dotted lines across the row).
    """
    from matplotlib import colormaps
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    X_train = np.atleast_2d(np.asarray(X_train, dtype=float))
    y_train = np.asarray(y_train)
    names = list(features) if features is not None else list(schema.names)
    cols = [schema.index(n) for n in names]
    C = bounds.n_classes
    class_names = [str(n) for n in class_names] if class_names is not None else [
        f"class {c}" for c in range(C)
    ]
    extra = [np.atleast_2d(np.asarray(a, dtype=float)) for a in (query, counterfactuals)
             if a is not None and np.size(a)]
    seen = np.vstack([X_train, *extra])
    vmin, vmax = seen.min(axis=0), seen.max(axis=0)
    span = np.where(vmax > vmin, vmax - vmin, 1.0)

    def norm(v, j):
        return (np.asarray(v, dtype=float) - vmin[j]) / span[j]

    cmap = colormaps["tab10"]
    has_cf = counterfactuals is not None and np.size(counterfactuals)
    cf_all = np.atleast_2d(np.asarray(counterfactuals, dtype=float)) if has_cf else None
    marks = query is not None or has_cf
    n_lanes = C + (1 if marks else 0)  # one lane per class, plus one for query/counterfactuals
    lane = 0.86 / n_lanes  # lanes inside a row of height 1
    fig = _figure(8.5, 0.9 + 0.2 * n_lanes * len(cols) + 0.2 * len(cols))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    for r, j in enumerate(cols):
        base = len(cols) - 1 - r  # first feature on top
        top, bottom = base + 0.43, base - 0.43
        f = schema.features[j]
        ax.axhspan(base - 0.5, base + 0.5, color="0.94" if r % 2 else "white", zorder=0)
        for c in range(C):
            yc = top - lane * (c + 0.5)
            colour = cmap(c % 10)
            if f.kind is Kind.CATEGORICAL:
                # every code of the feature: filled = allowed for the class, hollow = not
                codes = np.arange(len(f.categories) or int(vmax[j]) + 1, dtype=float)
                inside = bounds.contains(np.tile(codes[:, None], (1, len(schema))), c)[:, j]
                ax.scatter(norm(codes[inside], j), np.full(inside.sum(), yc), marker="s",
                           s=34, color=colour, linewidth=0, zorder=3)
                ax.scatter(norm(codes[~inside], j), np.full((~inside).sum(), yc), marker="s",
                           s=20, facecolor="white", edgecolor=colour, linewidth=0.8, zorder=3)
                continue
            else:
                lo, hi = bounds.low[c, j], bounds.high[c, j]
                a = 0.0 if not np.isfinite(lo) else float(np.clip(norm(lo, j), 0, 1))
                b = 1.0 if not np.isfinite(hi) else float(np.clip(norm(hi, j), 0, 1))
                empty = bounds.empty is not None and bool(bounds.empty[c, j])
                ax.barh(yc, max(b - a, 0.004), left=a, height=lane * 0.7, color=colour,
                        alpha=0.25 if empty else 0.45, hatch="///" if empty else None,
                        edgecolor=colour, linewidth=0.8, zorder=3)
                for open_side, x_end, m in ((not np.isfinite(lo), 0.0, "<"),
                                            (not np.isfinite(hi), 1.0, ">")):
                    if open_side and not empty:
                        ax.plot(x_end, yc, marker=m, color=colour, ms=4.5, zorder=5)
            rows = X_train[y_train == c, j]
            if rows.size:  # the class's training rows, on top of its bar
                jitter = rng.uniform(-0.22, 0.22, rows.size) * lane
                ax.scatter(norm(rows, j), yc + jitter, s=5, color=colour, alpha=0.55,
                           linewidths=0, zorder=4)
        if f.kind is Kind.CATEGORICAL and 0 < len(f.categories) <= 12:
            for code, cat in enumerate(f.categories):
                ax.text(norm(code, j), top + 0.02, str(cat)[:12], ha="center", va="bottom",
                        fontsize=6, color="0.3", zorder=6)
        ax.text(-0.015, base, _fmt(vmin[j]), ha="right", va="center", fontsize=7, color="0.35")
        ax.text(1.015, base, _fmt(vmax[j]), ha="left", va="center", fontsize=7, color="0.35")
        ym = bottom + lane * 0.5  # the query/counterfactual lane
        if has_cf:
            cf = norm(cf_all[:, j], j)
            ax.vlines(cf, bottom, top, color="black", lw=0.6, ls=":", alpha=0.7, zorder=5)
            q0 = norm(np.asarray(query, dtype=float).ravel()[j], j) if query is not None else None
            for x_cf in cf:
                if q0 is not None and abs(x_cf - q0) > 1e-9:
                    ax.plot([q0, x_cf], [ym, ym], color="black", lw=0.6, alpha=0.6, zorder=5)
            ax.scatter(cf, np.full(cf.size, ym), marker="X", s=36, color="black",
                       linewidth=0.3, zorder=7)
        if query is not None:
            q = norm(np.asarray(query, dtype=float).ravel()[j], j)
            ax.vlines(q, bottom, top, color="goldenrod", lw=1.1, zorder=5)
            ax.scatter(q, ym, marker="*", s=120, color="gold", edgecolor="black",
                       linewidth=0.6, zorder=8)
    ax.set_yticks(np.arange(len(cols))[::-1])
    ax.set_yticklabels(names, fontsize=8)
    ax.set_ylim(-0.5, len(cols) - 0.5)
    ax.set_xlim(-0.09, 1.09)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_xticklabels(["min", "25%", "50%", "75%", "max"], fontsize=8)
    ax.set_xlabel("position within each feature's observed range (ends written beside each row)")
    handles = [Patch(color=cmap(c % 10), alpha=0.75, label=class_names[c]) for c in range(C)]
    if bounds.empty is not None and bounds.empty.any():
        handles.append(Patch(facecolor="white", edgecolor="0.3", hatch="///",
                             label="empty as mined: opened"))
    if query is not None:
        handles.append(Line2D([], [], marker="*", color="gold", markeredgecolor="black", ls="",
                              ms=10, label="query"))
    if has_cf:
        handles.append(Line2D([], [], marker="X", color="black", ls=":", lw=0.8, ms=6,
                              label="counterfactuals"))
    ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.06 -
              0.25 / max(len(cols), 1)), ncol=min(len(handles), 6), frameon=False)
    ax.set_title(title or f"Class bounds (mode {bounds.mode}): interval per class and feature",
                 fontsize=10)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return _save(fig, path)


def plot_bounds_modes(
    bounds_by_mode: Mapping[str, ClassBounds] | Mapping[str, Mapping[str, ClassBounds]],
    X_train: np.ndarray,
    y_train: np.ndarray,
    features: tuple[str, str],
    path: str | Path,
    class_names: Sequence[str] | None = None,
    *,
    title: str | None = None,
) -> Path:
    """Two features as a scatter of the training rows, one panel per mode, each class's bounds
    drawn as a box (open sides run past the panel's edge).

    ``bounds_by_mode`` maps a mode name to its bounds (one row of panels), or a row label (e.g.
    a forest's description) to such a mapping (one row of panels per label).
    """
    from matplotlib import colormaps
    from matplotlib.patches import Rectangle

    first_value = next(iter(bounds_by_mode.values()))
    rows = dict(bounds_by_mode) if isinstance(first_value, Mapping) else {"": bounds_by_mode}
    X_train = np.asarray(X_train, dtype=float)
    y_train = np.asarray(y_train)
    n_cols = max(len(r) for r in rows.values())
    some = next(iter(next(iter(rows.values())).values()))
    ja, jb = (some.feature_names.index(f) for f in features)
    C = some.n_classes
    class_names = [str(n) for n in class_names] if class_names is not None else [
        f"class {c}" for c in range(C)
    ]
    lo_data = X_train[:, [ja, jb]].min(axis=0)
    hi_data = X_train[:, [ja, jb]].max(axis=0)
    pad = 0.08 * (hi_data - lo_data)
    xlim = (lo_data[0] - pad[0], hi_data[0] + pad[0])
    ylim = (lo_data[1] - pad[1], hi_data[1] + pad[1])
    styles = ["-", "--", ":", "-."]
    cmap = colormaps["tab10"]
    fig = _figure(4.0 * n_cols, 0.4 + 3.9 * len(rows))
    axes = fig.subplots(len(rows), n_cols, sharex=True, sharey=True, squeeze=False)
    for r, (row_label, modes) in enumerate(rows.items()):
        for k, (mode, b) in enumerate(modes.items()):
            ax = axes[r, k]
            for c in range(C):
                colour = cmap(c % 10)
                sel = y_train == c
                ax.scatter(X_train[sel, ja], X_train[sel, jb], s=10, color=colour, alpha=0.5,
                           linewidths=0, label=class_names[c])
                x0 = b.low[c, ja] if np.isfinite(b.low[c, ja]) else xlim[0] - 1
                x1 = b.high[c, ja] if np.isfinite(b.high[c, ja]) else xlim[1] + 1
                y0 = b.low[c, jb] if np.isfinite(b.low[c, jb]) else ylim[0] - 1
                y1 = b.high[c, jb] if np.isfinite(b.high[c, jb]) else ylim[1] + 1
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor=colour,
                                       alpha=0.08, edgecolor="none"))
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor="none",
                                       edgecolor=colour, lw=1.8, ls=styles[c % len(styles)]))
            ax.set_xlim(*xlim)
            ax.set_ylim(*ylim)
            ax.set_title(f"{row_label}: mode {mode}" if row_label else f"mode {mode}",
                         fontsize=9)
            ax.grid(True, alpha=0.2)
            if r == len(rows) - 1:
                ax.set_xlabel(features[0])
        axes[r, 0].set_ylabel(features[1])
        for k in range(len(modes), n_cols):
            axes[r, k].set_visible(False)
    axes[0, 0].legend(fontsize=7, loc="upper left", markerscale=1.5)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path)
