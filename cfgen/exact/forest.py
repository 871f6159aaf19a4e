"""The exact method's view of a fitted tree ensemble: per-tree node arrays from
:class:`cfgen.trees.TreeEnsemble` (the project's one reading of RF/ET/DT and boosted models).

Semantics the MILP reproduces (see ``cfgen.trees``): a row goes left at a split when
``cast(x) <= threshold`` (``cast``: the library's input dtype, float32 for sklearn trees and
XGBoost, float64 for LightGBM / HistGB, with LightGBM's tiny-value zeroing); the score of column
``k`` is ``base[k] + sum over trees of value[leaf, k]``. With one column per class (voting
forests: summed leaf fractions; multi-class boosting: margins) the prediction is the argmax,
ties going to the lowest class index (``np.argmax``); a binary margin model (one column)
predicts class 1 when the score is positive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cfgen.trees import TreeEnsemble, unsupported


@dataclass(frozen=True)
class Tree:
    """One tree in local ids: ``left[n] == -1`` marks a leaf; ``value`` is (n_nodes, K)."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray


@dataclass(frozen=True)
class Ensemble:
    """Trees whose leaf values add up per score column (``base`` first)."""

    trees: tuple[Tree, ...]
    n_classes: int
    n_features: int
    base: np.ndarray  # (K,)
    dtype: type[np.floating]
    zero_below: float = 0.0
    kind: str = "vote"

    @property
    def n_columns(self) -> int:
        return int(self.base.shape[0])

    def cast(self, v) -> np.ndarray:
        """Values as the library compares them (float64 of ``v.astype(dtype)``)."""
        with np.errstate(over="ignore"):
            out = np.asarray(v, dtype=np.float64).astype(self.dtype).astype(np.float64)
        if self.zero_below > 0:
            out = np.where(np.abs(out) <= self.zero_below, 0.0, out)
        return out

    def thresholds(self, j: int) -> np.ndarray:
        """Distinct split thresholds on feature ``j`` over all trees (sorted)."""
        parts = [t.threshold[(t.left >= 0) & (t.feature == j)] for t in self.trees]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0)


def _split(view: TreeEnsemble) -> tuple[Tree, ...]:
    ends = np.append(view.roots[1:], view.n_nodes)
    out = []
    for a, b in zip(view.roots.tolist(), ends.tolist(), strict=True):
        left, right = view.left[a:b], view.right[a:b]
        out.append(
            Tree(
                feature=np.asarray(view.feature[a:b], dtype=np.intp),
                threshold=np.asarray(view.threshold[a:b], dtype=np.float64),
                left=np.where(left >= 0, left - a, -1).astype(np.intp),
                right=np.where(right >= 0, right - a, -1).astype(np.intp),
                value=np.asarray(view.value[a:b], dtype=np.float64),
            )
        )
    return tuple(out)


def ensemble_of(problem) -> Ensemble:
    """The ensemble of ``problem.trees`` (a TreeEnsemble) or of ``problem.estimator``.

    Raises :class:`cfgen.trees.UnsupportedModel` (a ``ConfigError``) for any other model.
    """
    view = getattr(problem, "trees", None)
    if view is None and hasattr(problem, "trees"):  # a Problem without a tree view
        model = getattr(problem, "model", problem.estimator)
        TreeEnsemble.from_model(model)  # not a tree ensemble: its own line
        raise unsupported(
            model,
            "is fitted on other columns than cfgen's encoded features "
            "(method=exact needs its trees over them)",
        )
    if not isinstance(view, TreeEnsemble):
        view = TreeEnsemble.from_model(problem.estimator)
    return Ensemble(
        _split(view),
        n_classes=view.n_classes,
        n_features=view.n_features,
        base=np.asarray(view.base_score, dtype=np.float64),
        dtype=view.input_dtype,
        zero_below=float(view.zero_below),
        kind=str(view.kind),
    )
