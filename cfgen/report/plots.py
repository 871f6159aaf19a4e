"""The per-dataset winner heatmap (matplotlib imported lazily, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

TIE_COLOUR = "#d9d9d9"
NONE_COLOUR = "#ffffff"
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def short_name(method: str, width: int = 10) -> str:
    """A method label short enough for a heatmap cell (the legend has the whole label)."""
    return method if len(method) <= width else method[: width - 1] + "…"


def _winner_grid(
    winners: pd.DataFrame, datasets: list[str], metrics: list[str], code: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Per dataset and metric the winner's colour code (0: no data, 1: tie) and cell text."""
    grid = np.zeros((len(datasets), len(metrics)), dtype=int)
    text = np.full(grid.shape, "", dtype=object)
    lookup = winners.set_index(["dataset", "metric"])
    for i, d in enumerate(datasets):
        for j, m in enumerate(metrics):
            if (d, m) not in lookup.index:
                continue
            w = lookup.loc[(d, m), "winner"]
            w = "" if not isinstance(w, str) else w
            grid[i, j] = code.get(w, 0)
            text[i, j] = "tie" if w == "tie" else short_name(w) if w else ""
    return grid, text


def _write_winners(ax, grid: np.ndarray, text: np.ndarray) -> None:
    """The winners' short names in their cells, black on white and grey, white on colours."""
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if text[i, j]:
                ax.text(
                    j,
                    i,
                    text[i, j],
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if grid[i, j] <= 1 else "white",
                )


def winner_heatmap(
    winners: pd.DataFrame,
    methods: Sequence[str],
    metrics: Sequence[str],
    path: str | Path,
    title: str = "Best method per dataset and metric",
) -> Path:
    """Datasets × metrics grid coloured by the winning method (grey: tie, white: no data)."""
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    path = Path(path)
    datasets = sorted(winners["dataset"].unique())
    metrics = [m for m in metrics if m in set(winners["metric"])]
    colours = [NONE_COLOUR, TIE_COLOUR, *[PALETTE[i % len(PALETTE)] for i in range(len(methods))]]
    code = {"": 0, "tie": 1, **{m: i + 2 for i, m in enumerate(methods)}}
    grid, text = _winner_grid(winners, datasets, metrics, code)

    fig_w = 3.5 + 0.95 * max(len(metrics), 1)
    fig_h = 1.6 + 0.38 * max(len(datasets), 1)
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    ax.imshow(grid, cmap=ListedColormap(colours), vmin=0, vmax=len(colours) - 1, aspect="auto")
    _write_winners(ax, grid, text)
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels(metrics, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(datasets)))
    ax.set_yticklabels(datasets, fontsize=8)
    ax.set_xticks(np.arange(-0.5, len(metrics), 1), minor=True)
    ax.set_yticks(np.arange(-0.5, len(datasets), 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    handles = [Patch(color=colours[code[m]], label=m) for m in methods]
    handles.append(Patch(color=TIE_COLOUR, label="tie"))
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        frameon=False,
        title="winner",
        title_fontsize=8,
    )
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return path
