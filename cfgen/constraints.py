"""Per-class feature intervals ("class bounds") mined from a fitted tree ensemble."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from cfgen.schema import FeatureSchema


@dataclass
class ClassBounds:
    """Per class, per feature, an interval ``low < x <= high`` (open sides are ±inf).

    ``allowed[c][j]`` is the array of allowed category codes for categorical feature ``j`` in
    class ``c`` (``None`` for non-categorical features or when every code is allowed).
    """

    feature_names: list[str]
    low: np.ndarray  # (n_classes, d)
    high: np.ndarray  # (n_classes, d)
    allowed: list[list[np.ndarray | None]] = field(default_factory=list)
    mode: str = "paths"
    seconds: float = 0.0

    @property
    def n_classes(self) -> int:
        return int(self.low.shape[0])

    def to_dict(self, class_names: list[str] | None = None) -> dict:
        """JSON-friendly form: {class: {feature: {low, high[, allowed]}}} plus metadata."""
        names = class_names or [str(c) for c in range(self.n_classes)]
        out: dict = {"mode": self.mode, "seconds": self.seconds, "classes": {}}
        for c in range(self.n_classes):
            per: dict = {}
            for j, f in enumerate(self.feature_names):
                lo, hi = self.low[c, j], self.high[c, j]
                entry: dict = {
                    "low": None if not np.isfinite(lo) else float(lo),
                    "high": None if not np.isfinite(hi) else float(hi),
                }
                if self.allowed and self.allowed[c][j] is not None:
                    entry["allowed"] = [int(v) for v in self.allowed[c][j]]
                per[f] = entry
            out["classes"][names[c]] = per
        return out


def tree_estimators(model) -> list:
    """The fitted ``DecisionTree*`` members of a supported tree ensemble (or the tree itself)."""
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

    if isinstance(model, (RandomForestClassifier, ExtraTreesClassifier)):
        return list(model.estimators_)
    if isinstance(model, (DecisionTreeClassifier, ExtraTreeClassifier)):
        return [model]
    raise TypeError(type(model).__name__)


def _leaf_classes_below(tree) -> np.ndarray:
    """Boolean (n_nodes, n_classes): does the subtree of each node hold a leaf voting for c."""
    t = tree.tree_
    n_classes = t.value.shape[2]
    below = np.zeros((t.node_count, n_classes), dtype=bool)
    leaves = t.children_left == -1
    below[leaves, np.argmax(t.value[leaves, 0, :], axis=1)] = True
    # children always have larger ids than their parent in sklearn trees: sweep ids downwards.
    for node in range(t.node_count - 1, -1, -1):
        if not leaves[node]:
            below[node] = below[t.children_left[node]] | below[t.children_right[node]]
    return below


def mine_paths(model, schema: FeatureSchema, decimal_threshold: int | None = 3) -> ClassBounds:
    """Union along each tree's own root-to-leaf paths (mode ``paths``).

    For class c and feature j: low = min threshold of ``>`` splits on paths to leaves voting for
    c, high = max threshold of ``<=`` splits on such paths.
    """
    start = time.perf_counter()
    trees = tree_estimators(model)
    n_classes = trees[0].tree_.value.shape[2]
    d = len(schema)
    low = np.full((n_classes, d), np.inf)
    high = np.full((n_classes, d), -np.inf)
    for est in trees:
        t = est.tree_
        below = _leaf_classes_below(est)
        internal = np.flatnonzero(t.children_left != -1)
        feat = t.feature[internal]
        thr = t.threshold[internal]
        if decimal_threshold is not None:
            thr = np.round(thr, decimal_threshold)
        left = below[t.children_left[internal]]  # (n_internal, C): `<=` side reaches class c
        right = below[t.children_right[internal]]  # `>` side reaches class c
        for c in range(n_classes):
            np.maximum.at(high[c], feat[left[:, c]], thr[left[:, c]])
            np.minimum.at(low[c], feat[right[:, c]], thr[right[:, c]])
    low[np.isinf(low)] = -np.inf
    high[np.isinf(high)] = np.inf
    return finalize(low, high, schema, mode="paths", seconds=time.perf_counter() - start)


def finalize(
    low: np.ndarray, high: np.ndarray, schema: FeatureSchema, mode: str, seconds: float
) -> ClassBounds:
    """Apply schema semantics: integer snapping, category sets, inverted intervals."""
    low, high = low.copy(), high.copy()
    inverted = low > high
    # DPG can yield low > high (thresholds from different trees); the interval is then empty.
    # We swap the ends: the region between the two thresholds is where the class's paths meet.
    low[inverted], high[inverted] = high[inverted].copy(), low[inverted].copy()
    allowed: list[list[np.ndarray | None]] = []
    for c in range(low.shape[0]):
        row: list[np.ndarray | None] = []
        for j, f in enumerate(schema.features):
            if f.kind.value == "categorical":
                codes = np.arange(len(f.categories))
                ok = (codes > low[c, j]) & (codes <= high[c, j])
                row.append(codes[ok] if ok.any() and not ok.all() else None)
            else:
                row.append(None)
        allowed.append(row)
    integer = schema.integer
    # x > low with integer x means x >= floor(low) + 1; x <= high means x <= floor(high).
    low[:, integer] = np.where(np.isfinite(low[:, integer]), np.floor(low[:, integer]), low[:, integer])
    high[:, integer] = np.where(np.isfinite(high[:, integer]), np.floor(high[:, integer]), high[:, integer])
    return ClassBounds(schema.names, low, high, allowed, mode=mode, seconds=seconds)


def mine_class_bounds(model, schema: FeatureSchema, mode: str = "paths", **kwargs) -> ClassBounds | None:
    """Class bounds with the requested miner; ``mode='none'`` gives ``None`` (no guidance)."""
    if mode == "none":
        return None
    if mode == "paths":
        return mine_paths(model, schema, **kwargs)
    raise ValueError(f"constraints.mode={mode!r}")
