"""Per-class feature intervals ("class bounds") mined from a fitted tree ensemble.

Three miners share one flattened view of the forest (:class:`_Forest`) and one vectorised trace
of the training rows through every tree (:func:`_trace`):

``dpg``
    The "Class Bounds" of a Decision Predicate Graph (Arrighi, Barbon Jr. et al., 2024), exactly as
    the ``dpg`` package computes them with the paper's settings (aggregated-transitions graph,
    context order 1, ``decimal_threshold=3``, ``perc_var=1e-7``): every training row is routed
    through every tree *with the rounded thresholds*; each visited split becomes a predicate node
    ``feature <= t`` / ``feature > t``; consecutive predicates of a trace are joined by an edge and
    the last one points at ``Class c`` (the leaf's majority class). For each class, every predicate
    from which its node is reachable counts: low = min of the ``>`` thresholds, high = max of the
    ``<=`` thresholds, a side without threshold is open.
``paths``
    The same traces, but a predicate counts for class c only if it lies on a trace that itself
    ends in a c-leaf (no reachability through predicates shared with other trees' paths). Without
    ``X_train`` every leaf of the forest counts. Its predicates are a subset of ``dpg``'s: where
    both bound a side, ``paths`` is at least as tight; it may leave open a side that ``dpg``
    closes through a predicate that reaches the class only via other trees' paths.
``mass``
    Per feature, the central ``mass`` share of the training rows the model predicts as c, widened
    outwards to the nearest split thresholds of the forest (a side beyond the outermost threshold
    is open). Robust to rare splits: only where the class's rows lie matters.

See ``docs/constraints.md`` for the semantics of empty intervals, integer and categorical
features.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cfgen.errors import ConfigError
from cfgen.schema import FeatureSchema, Kind
from cfgen.trees import TreeEnsemble

MODES: tuple[str, ...] = ("dpg", "paths", "mass", "none")


@dataclass
class ClassBounds:
    """Per class, per feature, an interval ``low < x <= high`` (open sides are ±inf).

    ``allowed[c][j]`` is the array of allowed category codes for categorical feature ``j`` in
    class ``c`` (``None`` for non-categorical features or when every code is allowed).

    ``raw_low``/``raw_high`` are the intervals as mined (rounded thresholds, before integer
    snapping and before empty intervals were opened); ``empty[c, j]`` marks the intervals that were
    empty as mined (``raw_low >= raw_high``, or no integer / category code inside) and were
    therefore opened to ``(-inf, inf)``.
    """

    feature_names: list[str]
    low: np.ndarray  # (n_classes, d)
    high: np.ndarray  # (n_classes, d)
    allowed: list[list[np.ndarray | None]] = field(default_factory=list)
    mode: str = "paths"
    seconds: float = 0.0
    raw_low: np.ndarray | None = None
    raw_high: np.ndarray | None = None
    empty: np.ndarray | None = None
    params: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return int(self.low.shape[0])

    def contains(self, X: np.ndarray, c: int) -> np.ndarray:
        """Boolean (n, d): does each value of ``X`` lie in class ``c``'s interval / allowed set."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        inside = (X > self.low[c]) & (X <= self.high[c])
        if self.allowed:
            for j, codes in enumerate(self.allowed[c]):
                if codes is not None:
                    inside[:, j] = np.isin(X[:, j], codes)
        return inside

    def describe(self, c: int, raw: bool = False) -> list[str]:
        """Class ``c``'s bounded features as DPG-style strings (``"0.7 < f <= 1.7"``).

        Numbers print as Python floats print (as the dpg package writes them); ``raw=True``
        describes the mined intervals (before snapping and opening empty ones).
        """
        low = self.raw_low if raw and self.raw_low is not None else self.low
        high = self.raw_high if raw and self.raw_high is not None else self.high
        out = []
        for j, name in enumerate(self.feature_names):
            lo, hi = low[c, j], high[c, j]
            if np.isfinite(lo) and np.isfinite(hi):
                out.append(f"{float(lo)} < {name} <= {float(hi)}")
            elif np.isfinite(hi):
                out.append(f"{name} <= {float(hi)}")
            elif np.isfinite(lo):
                out.append(f"{name} > {float(lo)}")
        return out

    def to_dict(self, class_names: list[str] | None = None) -> dict:
        """JSON-friendly form: {class: {feature: {low, high[, allowed]}}} plus metadata.

        Open sides are ``null``. Entries whose mined interval differs from the usable one (empty
        intervals, integer snapping) also carry ``mined_low``/``mined_high``; opened empty ones
        carry ``"empty": true``.
        """
        names = (
            [str(n) for n in class_names]
            if class_names
            else [str(c) for c in range(self.n_classes)]
        )
        out: dict = {
            "mode": self.mode,
            "seconds": float(self.seconds),
            "params": dict(self.params),
            "feature_names": list(self.feature_names),
            "class_names": names,
            "classes": {},
        }
        for c in range(self.n_classes):
            per: dict = {}
            for j, f in enumerate(self.feature_names):
                lo, hi = self.low[c, j], self.high[c, j]
                entry: dict = {"low": _num(lo), "high": _num(hi)}
                codes = self.allowed[c][j] if self.allowed else None
                if codes is not None:
                    entry["allowed"] = [int(v) for v in codes]
                if self.empty is not None and self.empty[c, j]:
                    entry["empty"] = True
                if self.raw_low is not None and self.raw_high is not None:
                    rlo, rhi = self.raw_low[c, j], self.raw_high[c, j]
                    if rlo != lo or rhi != hi:
                        entry["mined_low"], entry["mined_high"] = _num(rlo), _num(rhi)
                per[f] = entry
            out["classes"][names[c]] = per
        return out

    @classmethod
    def from_dict(cls, data: dict) -> ClassBounds:
        """Inverse of :meth:`to_dict` (class order = order of ``data["classes"]``)."""
        classes = data["classes"]
        per_class = list(classes.values())
        features = list(data.get("feature_names") or (per_class[0].keys() if per_class else []))
        C, d = len(per_class), len(features)
        low = np.full((C, d), -np.inf)
        high = np.full((C, d), np.inf)
        raw_low, raw_high = np.empty((C, d)), np.empty((C, d))
        empty = np.zeros((C, d), dtype=bool)
        allowed: list[list[np.ndarray | None]] = []
        for c, per in enumerate(per_class):
            row: list[np.ndarray | None] = []
            for j, f in enumerate(features):
                e = per[f]
                low[c, j] = -np.inf if e.get("low") is None else float(e["low"])
                high[c, j] = np.inf if e.get("high") is None else float(e["high"])
                raw_low[c, j] = (
                    low[c, j]
                    if "mined_low" not in e
                    else (-np.inf if e["mined_low"] is None else float(e["mined_low"]))
                )
                raw_high[c, j] = (
                    high[c, j]
                    if "mined_high" not in e
                    else (np.inf if e["mined_high"] is None else float(e["mined_high"]))
                )
                empty[c, j] = bool(e.get("empty", False))
                row.append(np.asarray(e["allowed"], dtype=int) if "allowed" in e else None)
            allowed.append(row)
        return cls(
            feature_names=features,
            low=low,
            high=high,
            allowed=allowed,
            mode=data.get("mode", "paths"),
            seconds=float(data.get("seconds", 0.0)),
            raw_low=raw_low,
            raw_high=raw_high,
            empty=empty,
            params=dict(data.get("params", {})),
        )


def parse_bound_strings(
    bounds: dict[str, list[str]], feature_names, class_labels
) -> tuple[np.ndarray, np.ndarray]:
    """DPG-style interval strings back to (low, high) arrays of shape (classes, features).

    The inverse of :meth:`ClassBounds.describe`, and the reader of the ``dpg`` package's
    ``"Class Bounds"`` (``{"Class c": ["0.7 < f <= 1.7", "g <= 2.0", "h > 0.5", ...]}``).
    Features a class has no string for stay open (±inf).
    """
    col = {str(n): j for j, n in enumerate(feature_names)}
    labels = [str(c) for c in class_labels]
    low = np.full((len(labels), len(col)), -np.inf)
    high = np.full((len(labels), len(col)), np.inf)
    for key, items in bounds.items():
        c = labels.index(str(key).removeprefix("Class "))
        for s in items:
            if m := re.fullmatch(r"(\S+) < (.+) <= (\S+)", s):
                low[c, col[m[2]]], high[c, col[m[2]]] = float(m[1]), float(m[3])
            elif m := re.fullmatch(r"(.+) <= (\S+)", s):
                high[c, col[m[1]]] = float(m[2])
            elif m := re.fullmatch(r"(.+) > (\S+)", s):
                low[c, col[m[1]]] = float(m[2])
            else:
                raise ValueError(f"not a class-bound string: {s!r}")
    return low, high


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


# --------------------------------------------------------------------------- the forest


def tree_ensemble(model: TreeEnsemble | Any) -> TreeEnsemble:
    """The :class:`TreeEnsemble` of ``model`` (a fitted supported tree model, or the view itself).

    Raises :class:`cfgen.trees.UnsupportedModel` (a :class:`ConfigError`) with the same line as
    the compiler and the split grid for any other model.
    """
    return TreeEnsemble.from_model(model)


def tree_estimators(model: Any, mode: str = "dpg", key: str = "constraints") -> TreeEnsemble:
    """The :class:`TreeEnsemble` if ``mode`` can mine ``model``, else :class:`ConfigError`
    (kept for callers that check minability first: ``dpg`` refuses boosted ensembles)."""
    ens = tree_ensemble(model)
    if mode == "dpg" and ens.kind != "vote":
        raise _dpg_refusal(ens, key)
    return ens


def _dpg_refusal(ens: TreeEnsemble, key: str) -> ConfigError:
    return ConfigError(
        f"{key}.mode='dpg' needs a voting forest (random forest, extra trees, decision "
        f"tree); {ens.model_type} is boosted: use {key}.mode=paths, mass or none"
    )


def _round_thresholds(thr: np.ndarray, decimals: int | None) -> np.ndarray:
    """Python's ``round(float(t), decimals)`` (what the dpg package uses), per threshold.

    ``np.round`` scales by 10**decimals and can differ from Python's correctly rounded ``round``
    in the last digit; the loop runs over tree nodes, not over rows.
    """
    if decimals is None:
        return thr.astype(float, copy=True)
    return np.array([round(t, decimals) for t in thr.tolist()], dtype=float)


@dataclass
class _Forest:
    """A :class:`TreeEnsemble`'s nodes with rounded thresholds and per-leaf class votes.

    ``votes[leaf, c]``: the leaf votes for class c (:meth:`TreeEnsemble.leaf_class_votes`: the
    majority class of a forest's leaf; for boosted trees the classes whose score it raises).
    """

    feature: np.ndarray  # (N,) split feature, -1 at leaves
    threshold: np.ndarray  # (N,) rounded split threshold (nan at leaves)
    left: np.ndarray
    right: np.ndarray
    parent: np.ndarray  # -1 at roots
    is_right: np.ndarray  # node is its parent's right child (the ``>`` branch)
    votes: np.ndarray  # (N, C) bool, False at internal nodes
    roots: np.ndarray  # (T,)
    levels: list[np.ndarray]  # node ids by depth, root level first
    n_classes: int
    rounded: bool  # thresholds rounded: route raw values (as the dpg package); else cast(x)
    ensemble: TreeEnsemble

    @classmethod
    def build(cls, ens: TreeEnsemble, decimals: int | None) -> _Forest:
        feature = ens.feature.astype(np.int64)
        internal = feature >= 0
        threshold = np.full(ens.n_nodes, np.nan)
        threshold[internal] = _round_thresholds(ens.threshold[internal], decimals)
        parent = ens.parent.astype(np.int64)
        is_right = np.zeros(ens.n_nodes, dtype=bool)
        is_right[ens.right[internal]] = True
        levels = [np.flatnonzero(ens.depth == k) for k in range(ens.max_depth + 1)]
        return cls(
            feature,
            threshold,
            ens.left.astype(np.int64),
            ens.right.astype(np.int64),
            parent,
            is_right,
            ens.leaf_class_votes(),
            ens.roots.astype(np.int64),
            [lv for lv in levels if lv.size],
            ens.n_classes,
            decimals is not None,
            ens,
        )

    @property
    def n_nodes(self) -> int:
        return int(self.feature.shape[0])

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Leaf id (n, T) of every row in every tree, routing ``x[f] <= rounded threshold``.

        The dpg package routes with the rounded thresholds on the raw (float64) values, which
        can differ from sklearn's own routing when a value falls between a threshold and its
        rounding; we follow the package so the graph is the same. Without rounding the rows
        take the model's own paths (values cast as the library compares them).
        """
        if not self.rounded:
            X = self.ensemble.cast(X)
        n, T = X.shape[0], self.roots.shape[0]
        cur = np.tile(self.roots, n)  # flat (n*T,), row-major: row i, tree t at i*T + t
        rows = np.repeat(np.arange(n), T)
        active = np.flatnonzero(self.feature[cur] >= 0)
        while active.size:
            nodes = cur[active]
            go_left = X[rows[active], self.feature[nodes]] <= self.threshold[nodes]
            nxt = np.where(go_left, self.left[nodes], self.right[nodes])
            cur[active] = nxt
            active = active[self.feature[nxt] >= 0]
        return cur.reshape(n, T)

    def subtree_sum(self, leaf_values: np.ndarray) -> np.ndarray:
        """Per node, the sum of ``leaf_values`` over the leaves below it (bottom-up sweep)."""
        total = np.array(leaf_values, copy=True)
        for level in self.levels[:0:-1]:
            np.add.at(total, self.parent[level], total[level])
        return total

    def predicates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The DPG predicate of each non-root node (the split it was reached through).

        Returns ``pred`` (N,) predicate id (-1 at roots) and, per predicate id, its feature,
        whether it is a ``>`` predicate, and its (rounded) threshold. Predicates are identified by
        (feature, operator, rounded threshold) across all trees, as the DPG labels them.
        """
        nonroot = np.flatnonzero(self.parent >= 0)
        par = self.parent[nonroot]
        keys = np.empty((nonroot.size, 3), dtype=np.int64)
        keys[:, 0] = self.feature[par]
        keys[:, 1] = self.is_right[nonroot]
        # bit pattern keeps -0.0 and 0.0 apart, as their labels ("-0.0", "0.0") are
        keys[:, 2] = self.threshold[par].view(np.int64)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        pred = np.full(self.n_nodes, -1, dtype=np.int64)
        pred[nonroot] = inverse.ravel()
        return pred, uniq[:, 0], uniq[:, 1].astype(bool), uniq[:, 2].copy().view(np.float64)


def _leaf_counts(
    forest: _Forest, X: np.ndarray, perc_var: float, key: str = "constraints"
) -> tuple[np.ndarray, np.ndarray]:
    """Traces per leaf (N,) and the leaf matrix (n, T), after the DPG's ``perc_var`` filter.

    A trace is one (row, tree) path. The dpg package drops every trace *variant* (identical
    label sequence, possibly shared by several trees) seen fewer than ``perc_var * n_traces``
    times; with the paper's 1e-7 that threshold is below 1 and nothing is dropped.
    """
    leaves = forest.apply(X)
    counts = np.bincount(leaves.ravel(), minlength=forest.n_nodes).astype(np.int64)
    min_count = leaves.size * perc_var
    if perc_var > 0 and min_count > 1:
        pred, *_ = forest.predicates()
        reached = np.flatnonzero(counts)
        variants: dict[tuple, list[int]] = {}
        for leaf in reached.tolist():
            labels: list = [("class", tuple(np.flatnonzero(forest.votes[leaf]).tolist()))]
            node = leaf
            while forest.parent[node] >= 0:
                labels.append(int(pred[node]))
                node = int(forest.parent[node])
            variants.setdefault(tuple(labels), []).append(leaf)
        for members in variants.values():
            if counts[members].sum() < min_count:
                counts[members] = 0
        if not counts.any():
            raise ConfigError(
                f"{key}.perc_var={perc_var!r} drops every decision path "
                f"(fewer than {min_count:g} traces each); lower it"
            )
    return counts, leaves


def _ancestors(src: np.ndarray, dst: np.ndarray, P: int, C: int) -> np.ndarray:
    """(C, P) bool: which predicate nodes reach class node ``P + c`` along edges ``src -> dst``.

    A breadth-first search per class over the reversed graph in CSR form (int arrays only: the
    graphs are small and scipy's input validation would cost more than the search).
    """
    n = P + C
    order = np.argsort(dst, kind="stable")
    preds = src[order]  # predecessors, grouped by node
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=n), out=indptr[1:])
    member = np.zeros((C, n), dtype=bool)
    for c in range(C):
        seen = member[c]
        frontier = np.array([P + c])
        seen[frontier] = True
        while frontier.size:
            starts = indptr[frontier]
            counts = indptr[frontier + 1] - starts
            total = int(counts.sum())
            if total == 0:
                break
            offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts)
            nxt = preds[np.arange(total) + offsets]
            nxt = np.unique(nxt[~seen[nxt]])
            seen[nxt] = True
            frontier = nxt
    return member[:, :P]


def _bounds_from_predicates(
    member: np.ndarray, p_feat: np.ndarray, p_gt: np.ndarray, p_thr: np.ndarray, d: int
) -> tuple[np.ndarray, np.ndarray]:
    """low/high (C, d) from a (C, P) predicate membership: min of ``>``, max of ``<=``."""
    C = member.shape[0]
    low = np.full((C, d), np.inf)
    high = np.full((C, d), -np.inf)
    for c in range(C):
        gt = member[c] & p_gt
        le = member[c] & ~p_gt
        np.minimum.at(low[c], p_feat[gt], p_thr[gt])
        np.maximum.at(high[c], p_feat[le], p_thr[le])
    low[np.isposinf(low)] = -np.inf
    high[np.isneginf(high)] = np.inf
    return low, high


# --------------------------------------------------------------------------- miners


def mine_dpg(
    model: TreeEnsemble | Any,
    schema: FeatureSchema,
    X_train: np.ndarray | None,
    decimal_threshold: int | None = 3,
    perc_var: float = 1e-7,
    key: str = "constraints",
) -> ClassBounds:
    """DPG class bounds (mode ``dpg``): reachability in the predicate graph of the traces.

    Defined for voting forests only (the DPG's ``Class c`` node is a leaf's majority class);
    boosted ensembles are refused with a :class:`ConfigError` naming the alternatives.
    """
    start = time.perf_counter()
    ens = tree_ensemble(model)
    if ens.kind != "vote":
        raise _dpg_refusal(ens, key)
    forest = _Forest.build(ens, decimal_threshold)
    X = _check_X(X_train, schema, "dpg", key)
    counts, _ = _leaf_counts(forest, X, perc_var, key)
    visits = forest.subtree_sum(counts)
    pred, p_feat, p_gt, p_thr = forest.predicates()
    P, C = p_feat.shape[0], forest.n_classes

    # DPG edges: (label of the parent's step, label of this step) for every visited node below
    # depth 1, and (label of the last step, Class c) for every visited leaf below the root.
    seen = (visits > 0) & (forest.parent >= 0)
    chain = np.flatnonzero(seen)
    chain = chain[forest.parent[forest.parent[chain]] >= 0]
    leaf = np.flatnonzero(seen & (forest.feature < 0))
    src = np.concatenate([pred[forest.parent[chain]], pred[leaf]])
    leaf_class = np.argmax(forest.votes[leaf], axis=1)  # one majority class per forest leaf
    dst = np.concatenate([pred[chain], P + leaf_class])
    member = _ancestors(src, dst, P, C)
    low, high = _bounds_from_predicates(member, p_feat, p_gt, p_thr, len(schema))
    return finalize(
        low,
        high,
        schema,
        mode="dpg",
        seconds=time.perf_counter() - start,
        params={"decimal_threshold": decimal_threshold, "perc_var": perc_var},
    )


def mine_paths(
    model: TreeEnsemble | Any,
    schema: FeatureSchema,
    X_train: np.ndarray | None = None,
    decimal_threshold: int | None = 3,
    perc_var: float = 1e-7,
    key: str = "constraints",
) -> ClassBounds:
    """Union along each tree's own root-to-leaf paths (mode ``paths``).

    For class c and feature j: low = min threshold of the ``>`` splits on paths that end in a
    leaf voting for c, high = max threshold of the ``<=`` splits on such paths. With ``X_train``
    only the paths the training rows take (routed as in ``dpg``) count, so its predicates are a
    subset of ``dpg``'s (each bounded side is at least as tight; a side may stay open where
    ``dpg`` closes it); without it every leaf of the forest counts.

    Boosted ensembles: a leaf votes for the classes whose score it raises
    (:meth:`TreeEnsemble.leaf_class_votes`); everything else is the same.
    """
    start = time.perf_counter()
    forest = _Forest.build(tree_ensemble(model), decimal_threshold)
    leaf = forest.feature < 0
    if X_train is not None:
        counts, _ = _leaf_counts(forest, _check_X(X_train, schema, "paths", key), perc_var, key)
        leaf = leaf & (counts > 0)
    C = forest.n_classes
    below = forest.votes & leaf[:, None]  # a kept leaf voting c lies below
    for level in forest.levels[:0:-1]:
        np.logical_or.at(below, forest.parent[level], below[level])
    pred, p_feat, p_gt, p_thr = forest.predicates()
    nonroot = np.flatnonzero(forest.parent >= 0)
    member = np.zeros((C, p_feat.shape[0]), dtype=bool)
    for c in range(C):
        member[c, pred[nonroot[below[nonroot, c]]]] = True
    low, high = _bounds_from_predicates(member, p_feat, p_gt, p_thr, len(schema))
    return finalize(
        low,
        high,
        schema,
        mode="paths",
        seconds=time.perf_counter() - start,
        params={
            "decimal_threshold": decimal_threshold,
            "perc_var": perc_var,
            "uses_training_rows": X_train is not None,
        },
    )


def _weighted_quantile_range(
    values: np.ndarray, weights: np.ndarray, mass: float
) -> tuple[float, float]:
    """Smallest ``[lo, hi]`` leaving at most ``(1-mass)/2`` of the weight on each side."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    total = w.sum()
    tail = (1.0 - mass) / 2.0 * total * (1 + 1e-12)
    lo = v[min(np.searchsorted(np.cumsum(w), tail, side="right"), v.size - 1)]
    hi = v[::-1][min(np.searchsorted(np.cumsum(w[::-1]), tail, side="right"), v.size - 1)]
    return float(lo), float(hi)


def mine_mass(
    model: TreeEnsemble | Any,
    schema: FeatureSchema,
    X_train: np.ndarray | None,
    mass: float = 0.9,
    decimal_threshold: int | None = 3,
    key: str = "constraints",
) -> ClassBounds:
    """Central-mass intervals (mode ``mass``).

    The training mass of class c is the training rows the model predicts as c (when it predicts
    none, every row weighted by its predicted probability of c). Per feature, ``[lo, hi]`` is the
    central ``mass`` share of those rows (``(1-mass)/2`` cut from each tail); it is widened to the
    split cell of the forest that holds it: low = the largest rounded threshold on the feature
    below ``lo``, high = the smallest one at or above ``hi`` (open if there is none: the model
    does not tell values beyond its outermost split apart). Categorical features get the smallest
    set of codes holding ``mass`` of the class's rows instead of an interval. The same for
    boosted ensembles (predictions by the compiled model, equal to the library's).
    """
    if not 0.0 < mass <= 1.0:
        raise ConfigError(f"{key}.mass={mass!r} is not allowed: expected a share in (0, 1]")
    from cfgen.predictor import CompiledEnsemble

    start = time.perf_counter()
    ens = tree_ensemble(model)
    forest = _Forest.build(ens, decimal_threshold)
    X = _check_X(X_train, schema, "mass", key)
    C, d = forest.n_classes, len(schema)
    proba = CompiledEnsemble(ens).predict_proba(X)
    predicted = np.argmax(proba, axis=1)
    weights = np.where(predicted[:, None] == np.arange(C)[None, :], 1.0, 0.0)
    none = weights.sum(axis=0) == 0
    weights[:, none] = proba[:, none]

    internal = forest.feature >= 0
    cuts = [np.unique(forest.threshold[internal & (forest.feature == j)]) for j in range(d)]
    low = np.full((C, d), -np.inf)
    high = np.full((C, d), np.inf)
    allowed_codes: dict[tuple[int, int], np.ndarray] = {}
    categorical = schema.categorical
    for c in range(C):
        w = weights[:, c]
        on = w > 0
        if not on.any():
            continue  # no training mass reaches c: leave it open
        for j in range(d):
            if categorical[j]:
                codes, inv = np.unique(X[on, j], return_inverse=True)
                share = np.bincount(inv.ravel(), weights=w[on]) / w[on].sum()
                order = np.argsort(-share, kind="stable")
                k = int(np.searchsorted(np.cumsum(share[order]), mass - 1e-12) + 1)
                allowed_codes[c, j] = np.sort(codes[order[:k]]).astype(int)
                lo, hi = allowed_codes[c, j].min(), allowed_codes[c, j].max()
                low[c, j], high[c, j] = lo - 1, hi
                continue
            lo, hi = _weighted_quantile_range(X[on, j], w[on], mass)
            below = cuts[j][cuts[j] < lo]
            above = cuts[j][cuts[j] >= hi]
            low[c, j] = below[-1] if below.size else -np.inf
            high[c, j] = above[0] if above.size else np.inf
    bounds = finalize(
        low,
        high,
        schema,
        mode="mass",
        seconds=0.0,
        params={"mass": mass, "decimal_threshold": decimal_threshold},
    )
    for (c, j), codes in allowed_codes.items():
        n_codes = len(schema.features[j].categories)
        bounds.allowed[c][j] = None if n_codes and codes.size >= n_codes else codes
    bounds.seconds = time.perf_counter() - start
    return bounds


# --------------------------------------------------------------------------- schema semantics


def finalize(
    low: np.ndarray,
    high: np.ndarray,
    schema: FeatureSchema,
    mode: str,
    seconds: float,
    params: dict | None = None,
) -> ClassBounds:
    """Apply schema semantics to mined intervals ``low < x <= high``.

    * Empty intervals (``low >= high``) are opened to ``(-inf, inf)`` and flagged in ``empty``.
      With min-of-``>`` / max-of-``<=`` this happens only when no single path to the class bounds
      the feature from both sides: the class lives in both tails (``x <= high`` *or* ``x > low``),
      whose convex hull is the whole line. Swapping the ends would keep exactly the gap between
      the tails, where the class's paths are not.
    * Integer and categorical features snap to integers: ``x > low`` is ``x > floor(low)`` and
      ``x <= high`` is ``x <= floor(high)`` for integer ``x``. An interval holding no integer
      becomes empty (opened and flagged) as above.
    * Categorical features get ``allowed`` = the codes inside the interval (``None`` when every
      code is allowed; an interval holding no valid code is opened and flagged).
    """
    raw_low = np.asarray(low, dtype=float).copy()
    raw_high = np.asarray(high, dtype=float).copy()
    low, high = raw_low.copy(), raw_high.copy()
    snap = schema.integer | schema.categorical
    with np.errstate(invalid="ignore"):
        low[:, snap] = np.floor(low[:, snap])
        high[:, snap] = np.floor(high[:, snap])
    empty = low >= high
    allowed: list[list[np.ndarray | None]] = []
    for c in range(low.shape[0]):
        row: list[np.ndarray | None] = []
        for j, f in enumerate(schema.features):
            if f.kind is Kind.CATEGORICAL and not empty[c, j]:
                codes = np.arange(len(f.categories))
                ok = (codes > low[c, j]) & (codes <= high[c, j])
                if codes.size and not ok.any():
                    empty[c, j] = True
                row.append(codes[ok] if ok.any() and not ok.all() else None)
            else:
                row.append(None)
        allowed.append(row)
    low[empty], high[empty] = -np.inf, np.inf
    return ClassBounds(
        schema.names,
        low,
        high,
        allowed,
        mode=mode,
        seconds=seconds,
        raw_low=raw_low,
        raw_high=raw_high,
        empty=empty,
        params=dict(params or {}),
    )


def _check_X(X_train, schema: FeatureSchema, mode: str, key: str = "constraints") -> np.ndarray:
    if X_train is None:
        raise ConfigError(f"{key}.mode={mode!r} needs the training rows (X_train)")
    X = np.asarray(X_train, dtype=float)
    if X.ndim != 2 or X.shape[1] != len(schema) or X.shape[0] == 0:
        raise ConfigError(
            f"{key}.mode={mode!r}: X_train has shape {X.shape}, "
            f"expected (n > 0, {len(schema)}) for the schema's features"
        )
    return X


def mine_class_bounds(
    model: TreeEnsemble | Any,
    schema: FeatureSchema,
    mode: str = "paths",
    X_train: np.ndarray | None = None,
    decimal_threshold: int | None = 3,
    perc_var: float = 1e-7,
    mass: float = 0.9,
    key: str = "constraints",
) -> ClassBounds | None:
    """Class bounds with the requested miner; ``mode='none'`` gives ``None`` (no guidance).

    ``model`` is a :class:`TreeEnsemble` or a fitted model it supports. ``dpg`` and ``mass``
    need ``X_train``; ``paths`` uses it when given. Raises :class:`ConfigError` naming
    ``key`` (the config group holding these settings) for an unknown mode, a bad parameter or
    ``dpg`` on a boosted ensemble, and :class:`cfgen.trees.UnsupportedModel` for a model that
    is not a supported tree ensemble.
    """
    if mode not in MODES:
        raise ConfigError(f"{key}.mode={mode!r} is not allowed: expected one of {', '.join(MODES)}")
    if mode == "none":
        return None
    ens = tree_ensemble(model)  # fail fast on a non-tree estimator
    if decimal_threshold is not None and (
        isinstance(decimal_threshold, bool)
        or not isinstance(decimal_threshold, (int, np.integer))
        or decimal_threshold < 0
    ):
        raise ConfigError(
            f"{key}.decimal_threshold={decimal_threshold!r} is not allowed: "
            "expected an integer >= 0 or null (no rounding)"
        )
    if not perc_var >= 0:
        raise ConfigError(f"{key}.perc_var={perc_var!r} is not allowed: expected >= 0")
    if ens.n_features != len(schema):
        raise ConfigError(
            f"{key}.mode={mode!r}: the model has {ens.n_features} features, "
            f"the schema {len(schema)}"
        )
    if mode == "dpg":
        return mine_dpg(ens, schema, X_train, decimal_threshold, perc_var, key)
    if mode == "paths":
        return mine_paths(ens, schema, X_train, decimal_threshold, perc_var, key)
    return mine_mass(ens, schema, X_train, mass, decimal_threshold, key)
