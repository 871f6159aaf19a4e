"""The exact method's view of a fitted tree ensemble: flat per-tree node arrays plus leaf values.

One small reader for sklearn voting forests (RandomForest / ExtraTrees / DecisionTree /
ExtraTree) read straight from ``tree_``; it is the seam where ``cfgen.trees.TreeEnsemble`` plugs
in once that view exists (see :func:`ensemble_of`).

Semantics the MILP reproduces: a row goes left at a split when ``float32(x) <= threshold``; a
voting forest predicts the argmax of the per-tree leaf class fractions summed over trees, ties
going to the lowest class index (``np.argmax``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cfgen.errors import ConfigError


@dataclass(frozen=True)
class Tree:
    """One tree: ``left[n] == -1`` marks a leaf; ``value`` is (n_nodes, n_classes)."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray


@dataclass(frozen=True)
class Ensemble:
    """Trees whose leaf values are summed per class; the largest sum wins (lowest index on ties)."""

    trees: tuple[Tree, ...]
    n_classes: int
    n_features: int

    def thresholds(self, j: int) -> np.ndarray:
        """Distinct split thresholds on feature ``j`` over all trees (sorted)."""
        parts = [t.threshold[(t.left >= 0) & (t.feature == j)] for t in self.trees]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0)


def _leaf_fractions(value: np.ndarray) -> np.ndarray:
    """Per-node class fractions (sklearn >= 1.4 stores fractions; older versions counts)."""
    total = value.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0
    return value / total


def _sklearn_trees(estimator) -> list | None:
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    inner = getattr(estimator, "model", None)  # cfgen.api's wrapper answering class indices
    if inner is not None and not isinstance(
        estimator, (RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier)
    ):
        estimator = inner
    if isinstance(estimator, (RandomForestClassifier, ExtraTreesClassifier)):
        return [e.tree_ for e in getattr(estimator, "estimators_", [])] or None
    if isinstance(estimator, DecisionTreeClassifier) and hasattr(estimator, "tree_"):
        return [estimator.tree_]
    return None


def ensemble_of(estimator) -> Ensemble:
    """The voting ensemble inside a fitted sklearn tree classifier or forest.

    Raises :class:`ConfigError` for any other model (the exact method needs the trees).
    """
    trees = _sklearn_trees(estimator)
    if trees is None:
        raise ConfigError(
            f"method=exact: model {type(estimator).__name__} is not supported; expected a fitted "
            "RandomForest/ExtraTrees/DecisionTree classifier"
        )
    if trees[0].n_outputs != 1:
        raise ConfigError("method=exact: multi-output tree models are not supported")
    out = tuple(
        Tree(
            feature=np.asarray(t.feature, dtype=np.intp),
            threshold=np.asarray(t.threshold, dtype=np.float64),
            left=np.asarray(t.children_left, dtype=np.intp),
            right=np.asarray(t.children_right, dtype=np.intp),
            value=_leaf_fractions(np.asarray(t.value[:, 0, :], dtype=np.float64)),
        )
        for t in trees
    )
    return Ensemble(out, n_classes=int(out[0].value.shape[1]), n_features=int(trees[0].n_features))
