"""Plots of mined class bounds (:class:`cfgen.constraints.ClassBounds`).

matplotlib is imported inside the functions and drawn on an Agg canvas of a stand-alone
:class:`matplotlib.figure.Figure` (no ``pyplot``, no global backend switch). Each function writes
one PNG and returns its path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

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


def _figure_manual(width: float, height: float):
    """A figure without automatic layout (axes placed in inches by the caller)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path, dpi: int = 130) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


def _fmt(v: float) -> str:
    v = float(v)
    if v.is_integer() and abs(v) < 1e7:
        return str(int(v))
    return f"{v:.4g}"


CHIP_FONT = 6.5  # points; chips use a monospace font so their width is known in advance
CHAR_W = CHIP_FONT / 72 * 0.602  # inches per character of DejaVu Sans Mono
CHIP_PAD = 0.03  # inches of padding inside a chip, each side
CHIP_GAP = 0.07  # inches between chips
LINE_H = 0.2  # inches per chip line
CHIP_CHARS = 28  # longest chip label before it is cut with "…"


@dataclass
class _Layout:
    """Inches of the figure's parts (the figure is laid out by hand, not by constrained
    layout, so the chip panel can be drawn in inch coordinates)."""

    width: float
    left: float
    right: float
    top: float
    num_h: float
    gap: float
    cat_h: float
    bottom: float

    @property
    def axes_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def height(self) -> float:
        return self.top + self.num_h + self.gap + self.cat_h + self.bottom


def _cut(text: str, n: int = CHIP_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _chip_w(text: str) -> float:
    return len(text) * CHAR_W + 2 * CHIP_PAD


def _flow(items: Sequence[str], x0: float, width: float) -> list[list[tuple[float, str]]]:
    """Chips laid left to right from ``x0``, wrapped into lines no wider than ``width``."""
    lines: list[list[tuple[float, str]]] = [[]]
    x = x0
    for t in items:
        w = _chip_w(t)
        if lines[-1] and x + w > width:
            lines.append([])
            x = x0
        lines[-1].append((x, t))
        x += w + CHIP_GAP
    return lines


@dataclass
class _CatRow:
    """One categorical feature's chip lanes: per class the allowed categories, then the
    query's category and where the counterfactuals move it."""

    name: str
    lanes: list[tuple[str, list[list[tuple[float, str]]], dict]]

    @property
    def n_lines(self) -> int:
        return sum(len(lines) for _, lines, _ in self.lanes)


def _cat_rows(bounds, schema, cols, query, cfs, class_names, x0, width, target) -> list[_CatRow]:
    rows = []
    d = len(schema)
    for j in cols:
        f = schema.features[j]
        cats = [str(c) for c in f.categories] or [str(i) for i in range(int(f.high) + 1)]
        codes = np.arange(len(cats), dtype=float)
        lanes = []
        for c in range(bounds.n_classes):
            inside = bounds.contains(np.tile(codes[:, None], (1, d)), c)[:, j]
            if inside.all():
                items = [f"any of the {len(cats)}"]
            elif not inside.any():
                items = ["none"]
            else:
                items = [_cut(cats[i]) for i in np.flatnonzero(inside)]
            label = class_names[c] + (" (target)" if c == target else "")
            lanes.append((label, _flow(items, x0, width), {"class": c}))
        if query is not None:
            q = int(round(float(query[j])))
            items = ["★ " + _cut(cats[q]) if 0 <= q < len(cats) else f"★ {q}"]
            moved: dict[int, list[int]] = {}
            if cfs is not None:
                for i, v in enumerate(cfs[:, j]):
                    code = int(round(float(v)))
                    if code != q:
                        moved.setdefault(code, []).append(i)
            for code, idx in moved.items():
                name = cats[code] if 0 <= code < len(cats) else str(code)
                items.append(f"{_cut(name)} ({','.join(map(str, idx))})")
            if cfs is not None and not moved:
                items.append("unchanged")
            lanes.append(("query → cfs", _flow(items, x0, width), {"marks": True}))
        rows.append(_CatRow(f.name, lanes))
    return rows


def _draw_chips(ax, rows: list[_CatRow], cmap, lane_x: float) -> None:
    """Chips in inch coordinates (x right, y down)."""
    y = 0.35
    for r, row in enumerate(rows):
        h = row.n_lines * LINE_H + 0.1
        ax.axhspan(y - 0.08, y + h - 0.08, color="0.94" if r % 2 else "white", zorder=0)
        ax.text(-0.12, y + (h - 0.1) / 2 - 0.02, row.name, ha="right", va="center", fontsize=8)
        for label, lines, info in row.lanes:
            colour = "black" if info.get("marks") else cmap(info["class"] % 10)
            ax.text(
                lane_x - 0.1,
                y + 0.05,
                label,
                ha="right",
                va="center",
                fontsize=CHIP_FONT,
                color=colour,
                family="DejaVu Sans Mono",
                fontweight="bold" if label.endswith("(target)") else "normal",
            )
            for line in lines:
                for x, text in line:
                    fc: Any
                    ec: Any
                    if info.get("marks"):
                        fc = "#ffe27a" if text.startswith("★") else "white"
                        ec = "0.6" if text == "unchanged" else "black"
                    else:
                        ec = cmap(info["class"] % 10)
                        fc = (*ec[:3], 0.22)
                    ax.text(
                        x + CHIP_PAD,
                        y + 0.05,
                        text,
                        ha="left",
                        va="center",
                        fontsize=CHIP_FONT,
                        family="DejaVu Sans Mono",
                        gid="chip",
                        bbox={
                            "boxstyle": f"round,pad={CHIP_PAD * 72 / CHIP_FONT:.2f}",
                            "fc": fc,
                            "ec": ec,
                            "lw": 0.7,
                        },
                    )
                y += LINE_H
        y += 0.1


def _cf_groups(
    values: np.ndarray, q: float | None, tol: float = 0.004
) -> list[tuple[float, list[int]]]:
    """Counterfactuals that move a feature, grouped by (nearly) equal position."""
    groups: list[tuple[float, list[int]]] = []
    for i in np.argsort(values, kind="stable"):
        v = float(values[i])
        if q is not None and abs(v - q) <= 1e-9:
            continue  # unchanged: no marker
        if groups and abs(groups[-1][0] - v) <= tol:
            groups[-1][1].append(int(i))
        else:
            groups.append((v, [int(i)]))
    return [(v, sorted(idx)) for v, idx in groups]


def _numeric_panel(
    ax, bounds, schema, cols, X_train, y_train, query, cfs, norm, vmin, vmax, cmap
) -> None:
    C = bounds.n_classes
    marks = query is not None or cfs is not None
    n_lanes = C + (1 if marks else 0)
    lane = 0.86 / n_lanes
    rng = np.random.default_rng(0)
    for r, j in enumerate(cols):
        base = len(cols) - 1 - r
        top, bottom = base + 0.43, base - 0.43
        ax.axhspan(base - 0.5, base + 0.5, color="0.94" if r % 2 else "white", zorder=0)
        for c in range(C):
            yc = top - lane * (c + 0.5)
            colour = cmap(c % 10)
            lo, hi = bounds.low[c, j], bounds.high[c, j]
            a = 0.0 if not np.isfinite(lo) else float(np.clip(norm(lo, j), 0, 1))
            b = 1.0 if not np.isfinite(hi) else float(np.clip(norm(hi, j), 0, 1))
            empty = bounds.empty is not None and bool(bounds.empty[c, j])
            ax.barh(
                yc,
                max(b - a, 0.004),
                left=a,
                height=lane * 0.7,
                color=colour,
                alpha=0.25 if empty else 0.45,
                hatch="///" if empty else None,
                edgecolor=colour,
                linewidth=0.8,
                zorder=3,
            )
            for open_side, x_end, mk in (
                (not np.isfinite(lo), 0.0, "<"),
                (not np.isfinite(hi), 1.0, ">"),
            ):
                if open_side and not empty:
                    ax.plot(x_end, yc, marker=mk, color=colour, ms=4.5, zorder=5)
            rows = X_train[y_train == c, j]
            if rows.size:
                jitter = rng.uniform(-0.22, 0.22, rows.size) * lane
                ax.scatter(
                    norm(rows, j),
                    yc + jitter,
                    s=5,
                    color=colour,
                    alpha=0.55,
                    linewidths=0,
                    zorder=4,
                )
        ax.text(-0.015, base, _fmt(vmin[j]), ha="right", va="center", fontsize=7, color="0.35")
        ax.text(1.015, base, _fmt(vmax[j]), ha="left", va="center", fontsize=7, color="0.35")
        if marks:
            _marks_lane(ax, j, bottom + lane * 0.5, lane, bottom, top, query, cfs, norm)
    ax.set_yticks(np.arange(len(cols))[::-1])
    ax.set_yticklabels([schema.features[j].name for j in cols], fontsize=8)
    ax.set_ylim(-0.5, len(cols) - 0.5)
    ax.set_xlim(-0.09, 1.09)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_xticklabels(["min", "25%", "50%", "75%", "max"], fontsize=8)
    ax.set_xlabel(
        "position within each feature's observed range (ends written beside each row)", fontsize=8
    )
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)


def _marks_lane(ax, j, ym, lane, bottom, top, query, cfs, norm) -> None:
    """The query (gold star) and the counterfactuals that move feature ``j`` (numbered boxes:
    the numbers of the diff table; one box per position, listing every cf there)."""
    q = float(norm(query[j], j)) if query is not None else None
    if q is not None:
        ax.vlines(q, bottom, top, color="goldenrod", lw=1.1, zorder=5)
        ax.scatter(
            q, ym, marker="*", s=120, color="gold", edgecolor="black", linewidth=0.6, zorder=8
        )
    if cfs is None:
        return
    groups = _cf_groups(norm(cfs[:, j], j), q)
    prev = -1.0
    up = False
    for v, idx in groups:
        up = (not up) if v - prev < 0.06 else False
        prev = v
        y = ym + (lane * 0.45 if up else 0.0)
        if q is not None:
            ax.plot([q, v], [ym, ym], color="black", lw=0.6, alpha=0.6, zorder=5)
        ax.vlines(v, bottom, top, color="black", lw=0.5, ls=":", alpha=0.6, zorder=5)
        ax.text(
            v,
            y,
            ",".join(map(str, idx)),
            ha="center",
            va="center",
            fontsize=6,
            zorder=9,
            gid="cf",
            bbox={"boxstyle": "round,pad=0.18", "fc": "white", "ec": "black", "lw": 0.7},
        )


def _observed_range(X_train: np.ndarray, q: np.ndarray | None, cfs: np.ndarray | None):
    """Each feature's range over the training rows, the query and the counterfactuals (every
    mark then falls inside the panel), and ``norm(v, j)``: value ``v``'s place in feature
    ``j``'s range, in [0, 1]."""
    extra = [a for a in (None if q is None else q[None, :], cfs) if a is not None]
    seen = np.vstack([X_train, *extra])
    vmin, vmax = seen.min(axis=0), seen.max(axis=0)
    span = np.where(vmax > vmin, vmax - vmin, 1.0)

    def norm(v, j):
        return (np.asarray(v, dtype=float) - vmin[j]) / span[j]

    return vmin, vmax, norm


def _lane_x(class_names: list[str], target: int | None) -> float:
    """Inches from the chip panel's left edge to its first chip: past the longest lane label."""
    return 0.15 + CHAR_W * max(
        len(n) + (len(" (target)") if c == target else 0)
        for c, n in enumerate([*class_names, "query → cfs"])
    )


def _fit_heights(lay: _Layout, n_num: int, n_lanes: int, cat: list[_CatRow]) -> None:
    """The panels' heights in inches: per numeric feature a lane per class (and the marks'),
    per categorical feature its chip lines."""
    if n_num:
        lay.num_h = n_num * (0.2 * n_lanes + 0.2) + 0.45
    if cat:
        lay.gap = 0.35 if n_num else 0.1
        lay.cat_h = 0.4 + sum(r.n_lines * LINE_H + 0.1 for r in cat)


def _numeric_axes(fig, lay: _Layout):
    """The numeric panel's axes, above the chip panel (0.45 inch left below for its x label)."""
    H = lay.height
    return fig.add_axes(
        (
            lay.left / lay.width,
            (lay.bottom + lay.cat_h + lay.gap + 0.45) / H,
            lay.axes_w / lay.width,
            (lay.num_h - 0.45) / H,
        )
    )


def _chip_panel(fig, lay: _Layout, cat: list[_CatRow], cmap, lane_x: float) -> None:
    """The categorical panel at the bottom, in inch coordinates (y down) so that chips laid
    out by :func:`_flow` land where they were measured, with its caption."""
    H = lay.height
    cax = fig.add_axes(
        (lay.left / lay.width, lay.bottom / H, lay.axes_w / lay.width, lay.cat_h / H)
    )
    cax.set_xlim(0, lay.axes_w)
    cax.set_ylim(lay.cat_h, 0)
    cax.axis("off")
    _draw_chips(cax, cat, cmap, lane_x)
    cax.text(
        0,
        0.06,
        "categorical features: the categories each class's bounds allow; "
        "★ the query's category, then where counterfactuals (numbers) move it",
        fontsize=7.5,
        color="0.25",
        va="top",
    )


def class_bounds_figure(
    bounds: ClassBounds,
    schema: FeatureSchema,
    X_train: np.ndarray,
    y_train: np.ndarray,
    query: np.ndarray | None = None,
    counterfactuals: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    *,
    features: Sequence[str] | None = None,
    title: str | None = None,
    target: int | None = None,
    width: float = 10.0,
):
    """The figure of :func:`plot_class_bounds` (returned, not saved)."""
    from matplotlib import colormaps

    X_train = np.atleast_2d(np.asarray(X_train, dtype=float))
    y_train = np.asarray(y_train)
    names = list(features) if features is not None else list(schema.names)
    cols = [schema.index(n) for n in names]
    C = bounds.n_classes
    class_names = (
        [str(n) for n in class_names]
        if class_names is not None
        else [f"class {c}" for c in range(C)]
    )
    q = None if query is None else np.asarray(query, dtype=float).ravel()
    cfs = None
    if counterfactuals is not None and np.size(counterfactuals):
        cfs = np.atleast_2d(np.asarray(counterfactuals, dtype=float))
    vmin, vmax, norm = _observed_range(X_train, q, cfs)
    cat_cols = [j for j in cols if schema.features[j].kind is Kind.CATEGORICAL]
    num_cols = [j for j in cols if j not in cat_cols]
    n_lanes = C + (1 if q is not None or cfs is not None else 0)
    left = 0.35 + 0.075 * max(len(n) for n in names)
    lay = _Layout(width, left, 0.7, 0.75, 0.0, 0.0, 0.0, 0.1)
    lane_x = _lane_x(class_names, target)
    cat = _cat_rows(
        bounds, schema, cat_cols, q, cfs, class_names, lane_x, lay.axes_w - 0.05, target
    )
    _fit_heights(lay, len(num_cols), n_lanes, cat)
    fig = _figure_manual(lay.width, lay.height)
    cmap = colormaps["tab10"]
    if num_cols:
        ax = _numeric_axes(fig, lay)
        _numeric_panel(
            ax, bounds, schema, num_cols, X_train, y_train, q, cfs, norm, vmin, vmax, cmap
        )
    if cat:
        _chip_panel(fig, lay, cat, cmap, lane_x)
    _legend(fig, bounds, class_names, q is not None, cfs is not None, cmap, lay)
    fig.suptitle(
        title or f"Class bounds (mode {bounds.mode}): interval per class and feature",
        fontsize=10,
        y=1 - 0.12 / lay.height,
    )
    return fig


def _legend(fig, bounds, class_names, has_q, has_cf, cmap, lay) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [
        Patch(color=cmap(c % 10), alpha=0.75, label=class_names[c]) for c in range(bounds.n_classes)
    ]
    if bounds.empty is not None and bounds.empty.any():
        handles.append(
            Patch(facecolor="white", edgecolor="0.3", hatch="///", label="empty as mined: opened")
        )
    if has_q:
        handles.append(
            Line2D(
                [],
                [],
                marker="*",
                color="gold",
                markeredgecolor="black",
                ls="",
                ms=10,
                label="query",
            )
        )
    if has_cf:
        handles.append(
            Line2D(
                [],
                [],
                marker="s",
                color="white",
                markeredgecolor="black",
                ls="",
                ms=8,
                label="counterfactuals (box: their numbers)",
            )
        )
    fig.legend(
        handles=handles,
        fontsize=7,
        loc="upper center",
        ncol=min(len(handles), 7),
        frameon=False,
        bbox_to_anchor=(0.5, 1 - 0.38 / lay.height),
    )


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
    target: int | None = None,
) -> Path:
    """Every class's interval per feature, with the query and its counterfactuals.

    Numeric features (one row each; ``features`` picks and orders them, default all) share a
    panel whose horizontal axis is each feature's observed range scaled to [0, 1], its ends
    written beside the row: one thin lane per class holds its interval (an open side ends in an
    arrow, an interval that was empty as mined is hatched) and its training rows (dots); the
    bottom lane holds the query (gold star) and, as numbered boxes, the counterfactuals that
    move the feature (the numbers of the diff table; one box lists every counterfactual at that
    value). Categorical features get their own panel: per class the categories its bounds allow
    as chips ("any of the n" when all are), then the query's category (★) and the categories
    the counterfactuals move it to, with their numbers. ``target`` marks the target class.
    """
    return _save(
        class_bounds_figure(
            bounds,
            schema,
            X_train,
            y_train,
            query,
            counterfactuals,
            class_names,
            features=features,
            title=title,
            target=target,
        ),
        path,
    )


def _mode_rows(
    bounds_by_mode: Mapping[str, ClassBounds] | Mapping[str, Mapping[str, ClassBounds]],
) -> dict[str, Mapping[str, ClassBounds]]:
    """``row label -> mode -> bounds``: one level of mapping (mode -> bounds) becomes a single
    row with an empty label."""
    first_value = next(iter(bounds_by_mode.values()))
    nested: Any = bounds_by_mode  # one level (mode -> bounds) or two (label -> mode -> bounds)
    return dict(nested) if isinstance(first_value, Mapping) else {"": nested}


def _padded_limits(X2: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis limits for the two columns of ``X2``: their range with 8 % to spare, so that a box's
    open side (drawn past the limit) is told apart from a closed one at the data's edge."""
    lo_data = X2.min(axis=0)
    hi_data = X2.max(axis=0)
    pad = 0.08 * (hi_data - lo_data)
    xlim = (lo_data[0] - pad[0], hi_data[0] + pad[0])
    ylim = (lo_data[1] - pad[1], hi_data[1] + pad[1])
    return xlim, ylim


def _mode_panel(
    ax, b: ClassBounds, X_train, y_train, cols, n_classes, class_names, xlim, ylim, cmap
) -> None:
    """One mode's panel: per class its training rows and its bounds' box (a faint fill and an
    outline in the class's colour and its own line style, so that overlapping boxes stay
    apart; an open side runs one unit past the panel's edge)."""
    from matplotlib.patches import Rectangle

    ja, jb = cols
    styles = ["-", "--", ":", "-."]
    for c in range(n_classes):
        colour = cmap(c % 10)
        sel = y_train == c
        ax.scatter(
            X_train[sel, ja],
            X_train[sel, jb],
            s=10,
            color=colour,
            alpha=0.5,
            linewidths=0,
            label=class_names[c],
        )
        x0 = b.low[c, ja] if np.isfinite(b.low[c, ja]) else xlim[0] - 1
        x1 = b.high[c, ja] if np.isfinite(b.high[c, ja]) else xlim[1] + 1
        y0 = b.low[c, jb] if np.isfinite(b.low[c, jb]) else ylim[0] - 1
        y1 = b.high[c, jb] if np.isfinite(b.high[c, jb]) else ylim[1] + 1
        ax.add_patch(
            Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor=colour, alpha=0.08, edgecolor="none")
        )
        ax.add_patch(
            Rectangle(
                (x0, y0),
                x1 - x0,
                y1 - y0,
                facecolor="none",
                edgecolor=colour,
                lw=1.8,
                ls=styles[c % len(styles)],
            )
        )


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

    rows = _mode_rows(bounds_by_mode)
    X_train = np.asarray(X_train, dtype=float)
    y_train = np.asarray(y_train)
    n_cols = max(len(r) for r in rows.values())
    some = next(iter(next(iter(rows.values())).values()))
    ja, jb = (some.feature_names.index(f) for f in features)
    C = some.n_classes
    class_names = (
        [str(n) for n in class_names]
        if class_names is not None
        else [f"class {c}" for c in range(C)]
    )
    xlim, ylim = _padded_limits(X_train[:, [ja, jb]])
    cmap = colormaps["tab10"]
    fig = _figure(4.0 * n_cols, 0.4 + 3.9 * len(rows))
    axes = fig.subplots(len(rows), n_cols, sharex=True, sharey=True, squeeze=False)
    for r, (row_label, modes) in enumerate(rows.items()):
        for k, (mode, b) in enumerate(modes.items()):
            ax = axes[r, k]
            _mode_panel(ax, b, X_train, y_train, (ja, jb), C, class_names, xlim, ylim, cmap)
            ax.set_xlim(*xlim)
            ax.set_ylim(*ylim)
            ax.set_title(f"{row_label}: mode {mode}" if row_label else f"mode {mode}", fontsize=9)
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
