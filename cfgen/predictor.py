"""Fast class-probability predictors for the genetic search's hot path.

:class:`CompiledEnsemble` compiles any :class:`~cfgen.trees.TreeEnsemble` (sklearn random forest,
extra trees, decision tree, gradient boosting, hist gradient boosting, XGBoost, LightGBM
classifiers) into a handful of numpy arrays and evaluates a whole population with a vectorised
traversal (a Python loop over depth only). It reproduces the library's own arithmetic:

* vote ensembles (sklearn forests / trees): ``predict_proba`` bit-for-bit equal;
* sklearn GB / HGB, LightGBM: float64 margins summed in the library's order from the library's
  base score, then its link (``expit`` / sklearn's ``softmax`` / LightGBM's ``1/(1+exp(-x))``
  and max-shifted softmax): probabilities within ~1e-15, classes by the library's own rule
  (GB: ``raw >= 0``; HGB: ``raw > 0``; LightGBM: argmax of the probabilities);
* XGBoost: float32 margins summed tree by tree as XGBoost does, and its float32 sigmoid /
  softmax with an exact emulation of glibc's ``expf`` (which XGBoost calls): probabilities
  bit-for-bit equal; classes ``p > 0.5`` (binary) or argmax.

:class:`BatchedPredictor` wraps any other classifier's ``predict_proba`` behind the same interface;
:func:`compile_predictor` picks the right one.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from cfgen.trees import TreeEnsemble, UnsupportedModel

__all__ = [
    "BatchedPredictor",
    "CompiledEnsemble",
    "CompiledForest",
    "Predictor",
    "compile_predictor",
    "is_compilable",
]


@runtime_checkable
class Predictor(Protocol):
    """Probability predictor over the model's encoded feature space."""

    classes_: np.ndarray

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns ordered as ``classes_``."""
        ...

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class labels (``classes_`` values)."""
        ...


def is_compilable(model: Any) -> bool:
    """Whether :class:`CompiledEnsemble` supports ``model`` (see :mod:`cfgen.trees`)."""
    try:
        TreeEnsemble.from_model(model)
    except UnsupportedModel:
        return False
    return True


# --------------------------------------------------------------------------- input checks


def _as_2d(X: Any, n_features: int, dtype: type[np.floating]) -> np.ndarray:
    """``X`` as a C-contiguous (n, d) array of ``dtype``, as the library converts it.

    Raises ``ValueError`` for NaN, for values infinite in ``dtype`` (sklearn rejects them too; the
    missing-value rules of boosted libraries are not emulated) and for a wrong shape.
    """
    with np.errstate(over="ignore"):  # float64 beyond float32 range -> inf, reported below
        Xc = np.ascontiguousarray(X, dtype=dtype)
    if Xc.ndim != 2:
        raise ValueError(f"expected a 2-D array (n_rows, {n_features}), got shape {Xc.shape}")
    if Xc.shape[1] != n_features:
        raise ValueError(
            f"X has {Xc.shape[1]} features, but the model expects {n_features} features"
        )
    if not np.isfinite(Xc).all():
        _raise_non_finite(Xc)
    return Xc


def _raise_non_finite(X: np.ndarray) -> None:
    nan_rows = np.flatnonzero(np.isnan(X).any(axis=1))
    if nan_rows.size:
        raise ValueError(
            f"X contains NaN (first at row {int(nan_rows[0])}); NaN inputs are rejected "
            "explicitly rather than routed by the trees' missing-value rules"
        )
    inf_rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
    raise ValueError(
        f"X contains infinity or a value too large for float32 (first at row {int(inf_rows[0])})"
    )


def _float32_floor(t: np.ndarray) -> np.ndarray:
    """Largest float32 ``<= t`` elementwise (``-inf`` below the float32 range).

    For every float32 ``v``: ``float64(v) <= t``  <=>  ``v <= _float32_floor(t)``, so a split
    test on float32 input can be done in float32 with the same outcome as a float32-X-vs-float64-
    threshold comparison.
    """
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(over="ignore"):
        t32 = t.astype(np.float32)
    too_big = t32.astype(np.float64) > t
    t32[too_big] = np.nextafter(t32[too_big], np.float32(-np.inf))
    return t32


# --------------------------------------------------------------------------- glibc expf


def _expf_table() -> np.ndarray:
    """``bits(2^(i/32)) - (i << 47)``, i < 32: the table of glibc's ``expf`` (derived here)."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 50
        exact = [float(Decimal(2) ** (Decimal(i) / 32)) for i in range(32)]  # correctly rounded
    bits = np.array(exact, dtype=np.float64).view(np.uint64)
    return bits - (np.arange(32, dtype=np.uint64) << np.uint64(47))


_EXPF_TAB = _expf_table()
_EXPF_INV_LN2_N = float.fromhex("0x1.71547652b82fep+0") * 32
_EXPF_SHIFT = float.fromhex("0x1.8p+52")
_EXPF_C = (
    float.fromhex("0x1.c6af84b912394p-5") / 32**3,
    float.fromhex("0x1.ebfce50fac4f3p-3") / 32**2,
    float.fromhex("0x1.62e42ff0c52d6p-1") / 32,
)
_EXPF_UNDERFLOW = np.float32(float.fromhex("-0x1.9fe368p6"))  # below: expf returns 0


def expf(x: np.ndarray) -> np.ndarray:
    """glibc's float32 ``expf`` (>= 2.27), bit for bit, for ``x <= 88.7`` (XGBoost's range).

    The algorithm (ARM optimized-routines, used by glibc): ``x * 32 / ln 2 = k + r`` with
    ``2^(k/32)`` from a table and a cubic polynomial for ``2^(r/32)``, all in float64, rounded
    once to float32. Checked against ``libm.expf`` in the tests.
    """
    xd = np.asarray(x, dtype=np.float32).astype(np.float64)
    z = _EXPF_INV_LN2_N * xd
    kd = z + _EXPF_SHIFT
    ki = kd.view(np.uint64)
    kd = kd - _EXPF_SHIFT  # a new array: ``ki`` views the old one
    r = z - kd
    s = (_EXPF_TAB[ki & np.uint64(31)] + (ki << np.uint64(47))).view(np.float64)
    y = (_EXPF_C[0] * r + _EXPF_C[1]) * (r * r) + (_EXPF_C[2] * r + 1.0)
    out = (y * s).astype(np.float32)
    out[xd < _EXPF_UNDERFLOW] = 0.0
    return out


def _xgb_sigmoid(m: np.ndarray) -> np.ndarray:
    """XGBoost's float32 ``Sigmoid``: ``1 / (expf(min(-m, 88.7)) + 1 + 1e-16)``."""
    e = expf(np.minimum(-m, np.float32(88.7)))
    return np.float32(1.0) / ((e + np.float32(1.0)) + np.float32(1e-16))


def _xgb_softmax(m: np.ndarray) -> np.ndarray:
    """XGBoost's float32 softmax per row: ``expf(m - max)`` over a float64 sum cast to float32."""
    e = expf(m - m.max(axis=1, keepdims=True))
    total = e[:, 0].astype(np.float64)
    for k in range(1, e.shape[1]):  # sequential, as XGBoost's loop
        total = total + e[:, k]
    return e / total.astype(np.float32)[:, None]


# --------------------------------------------------------------------------- layout

# steps (0-based) after which (tree, row) pairs already on a leaf are dropped, and the problem
# size (n_trees * n_rows) from which that pays off; measured on 100-tree forests: ~15% faster
# at depth 10 and ~45% with unlimited depth, no gain on small forests
_COMPACT_AT = frozenset({5, 8, 12, 17, 23, 30, 38, 47, 57, 68, 80, 93, 107, 122, 138, 155})
_COMPACT_MIN_PAIRS = 1024


def _adjacent_order(left: np.ndarray, right: np.ndarray, roots: np.ndarray) -> np.ndarray:
    """Breadth-first order of global node ids over all trees at once, children adjacent.

    Level by level: the roots, then for every split node of the level its (left, right) pair.
    """
    parts = [roots]
    level = roots
    while level.size:
        inner = level[left[level] >= 0]
        level = np.column_stack([left[inner], right[inner]]).ravel()
        parts.append(level)
    return np.concatenate(parts)


class _NativeEngine:
    """Leaf ids of all trees in one call of scikit-learn's compiled gradient-boosting kernel.

    ``sklearn.ensemble._gradient_boosting.predict_stages`` walks sklearn ``Tree`` objects over
    float32 rows (``float64(x) <= threshold``) and adds ``scale * value[leaf]`` to ``out[:, k]``.
    Each tree here becomes one ``Tree`` in its own output column whose leaf values are the
    compiled leaf ids, so one call returns every (row, tree) leaf; sums and links then run in
    numpy exactly as on the numpy path. float64-comparing libraries (HGB, LightGBM) are made
    exact in float32 by binning: per feature, ``x`` becomes the number of its split thresholds
    below ``x`` (an integer), and a split on the threshold of rank ``r`` tests ``bin <= r``.

    It uses a private scikit-learn function, so :class:`CompiledEnsemble` checks it against the
    numpy traversal when compiling and falls back to that traversal if it fails or differs.
    """

    def __init__(self, comp: CompiledEnsemble, ens: TreeEnsemble, new_of_old: np.ndarray,
                 roots: np.ndarray) -> None:
        from sklearn.ensemble._gradient_boosting import predict_stages
        from sklearn.tree._tree import NODE_DTYPE, Tree

        self._predict_stages = predict_stages
        self._binned = ens.input_dtype is not np.float32
        grid = ens.feature_thresholds() if self._binned else []
        self._grid = [(j, t) for j, t in enumerate(grid) if t.size]
        thr = ens.threshold.copy()
        if self._binned:
            split = np.flatnonzero(ens.feature >= 0)
            for j, t in self._grid:
                on = split[ens.feature[split] == j]
                thr[on] = np.searchsorted(t, ens.threshold[on]).astype(np.float64)
        ends = np.append(ens.roots[1:], ens.n_nodes)
        holders = []
        for r in roots.tolist():
            holder = _TreeHolder()
            if r >= ens.n_nodes:  # a base-score leaf
                lo, hi, depth = r, r + 1, 0
                nodes = np.zeros(1, dtype=NODE_DTYPE)
                nodes["left_child"] = -1
                nodes["right_child"] = -1
                nodes["feature"] = -2
                ids = np.array([new_of_old[r]], dtype=np.float64)
            else:
                tree_index = int(np.searchsorted(ens.roots, r))
                lo, hi = r, int(ends[tree_index])
                depth = int(ens.depth[lo:hi].max())
                nodes = np.zeros(hi - lo, dtype=NODE_DTYPE)
                leaf = ens.feature[lo:hi] < 0
                nodes["left_child"] = np.where(leaf, -1, ens.left[lo:hi] - lo)
                nodes["right_child"] = np.where(leaf, -1, ens.right[lo:hi] - lo)
                nodes["feature"] = np.where(leaf, -2, ens.feature[lo:hi])
                nodes["threshold"] = np.where(leaf, -2.0, thr[lo:hi])
                ids = new_of_old[lo:hi].astype(np.float64)
            tree = Tree(ens.n_features, np.array([1], dtype=np.intp), 1)
            tree.__setstate__({"max_depth": depth,
                               "node_count": hi - lo, "nodes": nodes,
                               "values": ids.reshape(-1, 1, 1)})
            holder.tree_ = tree
            holders.append(holder)
        self._trees = np.empty((1, len(holders)), dtype=object)
        self._trees[0, :] = holders

    def leaf_nodes(self, Xc: np.ndarray) -> np.ndarray:
        """Compiled leaf ids (n_eval_trees, n_rows) of validated rows ``Xc``."""
        if self._binned:
            B = np.zeros(Xc.shape, dtype=np.float32)
            for j, t in self._grid:
                B[:, j] = np.searchsorted(t, Xc[:, j])
            X32 = B
        else:
            X32 = Xc
        out = np.zeros((Xc.shape[0], self._trees.shape[1]))
        self._predict_stages(self._trees, X32, 1.0, out)
        return np.ascontiguousarray(out.T, dtype=np.intp)  # C order: sums run tree by tree


class _TreeHolder:
    """What ``predict_stages`` reads from an estimator: its ``tree_``."""

    __slots__ = ("tree_",)
    tree_: Any


class CompiledEnsemble:
    """A :class:`~cfgen.trees.TreeEnsemble` compiled into flat node arrays.

    Layout: the nodes of all trees are renumbered breadth-first so that the two children of
    every split node are adjacent (``right == left + 1``). Leaves point to themselves with a
    ``+inf`` threshold, so a fixed ``max_depth`` number of steps ``node = left[node] + (x > thr)``
    lands every (row, tree) pair on its leaf regardless of the trees' individual depths. Margin
    ensembles get one single-leaf tree per score column holding the base score, placed first in
    the column's group of trees, so the sum over the group starts from it as the libraries do.

    Exactness: inputs are cast to the library's dtype (float32 for sklearn trees and XGBoost,
    float64 for HGB and LightGBM). float32 thresholds are stored as the largest float32 ``<=`` the
    rule's threshold (:func:`_float32_floor`), so the float32 comparison decides exactly as the
    library. Sums over trees run one tree after another in the library's order: numpy reduces a
    non-innermost axis of >= 2 contiguous rows by adding whole slices in order (a single row is
    padded to two); float32 for XGBoost, float64 otherwise. See the module docstring for links.

    Inputs with NaN, values infinite in the input dtype or a wrong column count raise
    ``ValueError``.
    """

    trees: TreeEnsemble
    classes_: np.ndarray
    n_classes_: int
    n_features_in_: int
    n_trees: int
    max_depth: int

    def __init__(self, model: Any, engine: Literal["auto", "numpy"] = "auto") -> None:
        ens = TreeEnsemble.from_model(model)
        self.trees = ens
        self.classes_ = np.asarray(ens.classes_)
        self.n_classes_ = ens.n_classes
        self.n_features_in_ = ens.n_features
        self.n_trees = ens.n_trees
        self._dtype: type[np.floating] = ens.input_dtype
        self._engine: _NativeEngine | None = None
        self._compile(ens, native=engine == "auto")

    @property
    def engine(self) -> str:
        """``"native"`` (scikit-learn's compiled kernel) or ``"numpy"`` (the fallback)."""
        return "numpy" if self._engine is None else "native"

    # -- compilation ---------------------------------------------------------------------------

    def _groups(self, ens: TreeEnsemble) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Roots in evaluation order plus base-score leaves appended to the node arrays.

        Returns (roots, extra_value (K,), extra_column (K,), group size). Vote ensembles keep
        their order and get no extra trees.
        """
        if ens.kind == "vote":
            return ens.roots, np.zeros(0), np.zeros(0, dtype=np.intp), ens.n_trees
        K = ens.n_columns
        counts = np.bincount(ens.tree_column, minlength=K)
        if not np.all(counts == counts[0]):
            raise ValueError("score columns have different numbers of trees")
        base_ids = ens.n_nodes + np.arange(K)
        order = np.argsort(ens.tree_column, kind="stable").reshape(K, -1)
        roots = np.column_stack([base_ids, ens.roots[order]]).ravel()
        return roots, ens.base_score, np.arange(K), int(counts[0]) + 1

    def _compile(self, ens: TreeEnsemble, native: bool) -> None:
        roots, base_value, base_col, group = self._groups(ens)
        K = base_col.shape[0]
        n_all = ens.n_nodes + K
        left = np.concatenate([ens.left, np.full(K, -1, dtype=np.intp)])
        right = np.concatenate([ens.right, np.full(K, -1, dtype=np.intp)])
        order = _adjacent_order(left, right, roots)  # new id -> old id
        new_of_old = np.empty(n_all, dtype=np.intp)
        new_of_old[order] = np.arange(n_all)
        is_split = left[order] >= 0
        new_left = np.where(is_split, new_of_old[np.maximum(left[order], 0)], np.arange(n_all))
        feature = np.where(is_split, np.concatenate([ens.feature, np.zeros(K, np.intp)])[order], 0)
        thr = np.where(is_split, np.concatenate([ens.threshold, np.zeros(K)])[order], np.inf)
        self._feature = feature.astype(np.intp)
        self._threshold = _float32_floor(thr) if self._dtype is np.float32 else thr
        self._left = new_left.astype(np.intp)
        self._is_leaf = ~is_split
        self._original = order  # new id -> TreeEnsemble global id (>= n_nodes: base leaves)
        self._roots = new_of_old[roots]
        self._n_eval = int(roots.shape[0])
        self._group = group
        self._start_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.max_depth = ens.max_depth
        if ens.kind == "vote":
            self._value_t = np.ascontiguousarray(ens.value[order].T)  # (n_classes, n_nodes)
            self._margin = np.zeros(0)
        else:
            col = np.concatenate([ens.tree_column[ens.tree_of], base_col])[order]
            per_node = np.concatenate([ens.value, np.diag(base_value)])[order]
            margin = per_node[np.arange(n_all), col]
            self._value_t = np.zeros((0, 0))
            self._margin = margin.astype(np.float32 if ens.library == "xgboost" else np.float64)
        if native:
            self._engine = self._try_native(ens, new_of_old, roots)

    def _try_native(self, ens: TreeEnsemble, new_of_old: np.ndarray,
                    roots: np.ndarray) -> _NativeEngine | None:
        """The native engine if it builds and agrees with the numpy walk on probe rows."""
        try:
            engine = _NativeEngine(self, ens, new_of_old, roots)
            probe = self._check(_probe_rows(ens))
            if np.array_equal(engine.leaf_nodes(probe), self._walk(probe)):
                return engine
        except (ImportError, AttributeError, TypeError, ValueError):
            pass
        return None

    @property
    def n_nodes(self) -> int:
        """Total number of nodes over all trees."""
        return self.trees.n_nodes

    # -- evaluation ----------------------------------------------------------------------------

    def _start(self, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
        """Row offsets into the flattened X and root ids for all (tree, row) pairs (cached)."""
        key = (n, d)
        hit = self._start_cache.get(key)
        if hit is None:
            row_full = np.tile(np.arange(0, n * d, d, dtype=np.intp), self._n_eval)
            roots = np.repeat(self._roots, n)
            row_full.flags.writeable = roots.flags.writeable = False
            if len(self._start_cache) >= 16:
                self._start_cache.clear()
            hit = self._start_cache[key] = (row_full, roots)
        return hit

    def _leaf_nodes(self, Xc: np.ndarray) -> np.ndarray:
        """Compiled leaf ids, shape (n_eval_trees, n_rows), by the native engine if any."""
        if self._engine is not None:
            return self._engine.leaf_nodes(Xc)
        return self._walk(Xc)

    def _walk(self, Xc: np.ndarray) -> np.ndarray:
        """Compiled leaf ids, shape (n_eval_trees, n_rows), by the numpy traversal.

        One vectorised step per tree level over all (tree, row) pairs. For larger problems the
        pairs already on a leaf are dropped after a few levels (``_COMPACT_AT``): most paths
        end well before ``max_depth``, so deep forests do much less work.
        """
        n, d = Xc.shape
        xflat = Xc.ravel()
        row_full, node = self._start(n, d)
        row_off = row_full
        feature, thr, left, is_leaf = self._feature, self._threshold, self._left, self._is_leaf
        last = self.max_depth - 1
        compact = self._n_eval * n >= _COMPACT_MIN_PAIRS
        state = node  # current node of every pair; `node` holds the active ones
        active: np.ndarray | None = None  # positions in `state` of the active pairs (None: all)
        for step in range(self.max_depth):
            idx = feature[node]
            idx += row_off
            go_right = xflat[idx] > thr[node]  # not (x <= t); x is never NaN here
            node = left[node]
            node += go_right
            if compact and step < last and step in _COMPACT_AT:
                if active is None:
                    state = node
                    active = np.flatnonzero(~is_leaf[node])
                else:
                    state[active] = node
                    active = active[~is_leaf[node]]
                node = state[active]
                row_off = row_full[active]
        if active is None:
            state = node
        else:
            state[active] = node
        return state.reshape(self._n_eval, n)

    def _check(self, X: Any) -> np.ndarray:
        Xc = _as_2d(X, self.n_features_in_, self._dtype)
        zero = self.trees.zero_below
        if zero > 0:  # LightGBM reads |x| <= 1e-35f as 0
            tiny = np.abs(Xc) <= zero
            if tiny.any():
                Xc = np.where(tiny, 0.0, Xc)
        return Xc

    def scores(self, X: np.ndarray) -> np.ndarray:
        """Raw scores (n, K) before the link (vote: summed class fractions)."""
        return self._scores(self._check(X))

    def _scores(self, Xc: np.ndarray) -> np.ndarray:
        node = self._leaf_nodes(Xc)
        n = Xc.shape[0]
        if n == 1:  # keep a contiguous non-reduced axis of length >= 2 (see class docstring)
            node = np.repeat(node, 2, axis=1)
        if self.trees.kind == "vote":
            # (n_classes, n_trees, n_rows) summed over the trees in estimators_ order: sklearn's
            # `out += tree_proba` loop, bit for bit (checked in the tests)
            per_tree = np.take(self._value_t, node, axis=1)
            return per_tree.sum(axis=1).T[:n]
        per_tree = self._margin[node].reshape(-1, self._group, node.shape[1])
        return per_tree.sum(axis=1).T[:n]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes), float64 (see the module docstring for how exact)."""
        return self._proba(self._scores(self._check(X)))

    def _proba(self, s: np.ndarray) -> np.ndarray:
        ens = self.trees
        if ens.kind == "vote":
            proba = s.copy()
            if self.n_trees > 1:
                proba /= self.n_trees
            return proba
        if ens.library == "xgboost":
            p = _xgb_sigmoid(s[:, 0]) if ens.link == "sigmoid" else None
            if p is not None:
                return np.column_stack([np.float32(1.0) - p, p]).astype(np.float64)
            return _xgb_softmax(s).astype(np.float64)
        if ens.link == "softmax":
            return _softmax(s, ens.library)
        raw = 2.0 * s[:, 0] if ens.link == "sigmoid2" else s[:, 0]
        if ens.library == "lightgbm":
            p1 = 1.0 / (1.0 + np.exp(-raw))
        else:
            from scipy.special import expit

            p1 = expit(raw)
        proba = np.empty((s.shape[0], 2))
        proba[:, 1] = p1
        proba[:, 0] = 1 - p1
        return proba

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class labels by the library's own rule (equal to the model's ``predict``)."""
        s = self._scores(self._check(X))
        ens = self.trees
        if ens.kind == "margin" and ens.library == "sklearn":
            if s.shape[1] == 1:  # GB: raw >= 0 (sklearn's GB), HGB: raw > 0
                gb = ens.model_type == "GradientBoostingClassifier"
                index = (s[:, 0] >= 0) if gb else (s[:, 0] > 0)
                return self.classes_.take(index.astype(np.intp), axis=0)
            return self.classes_.take(np.argmax(s, axis=1), axis=0)
        proba = self._proba(s)
        if ens.library == "xgboost" and ens.n_columns == 1:  # XGBClassifier: p > 0.5
            return self.classes_.take((proba[:, 1] > 0.5).astype(np.intp), axis=0)
        return self.classes_.take(np.argmax(proba, axis=1), axis=0)

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Leaf reached in each tree, (n, n_trees), as node ids local to each tree.

        For sklearn models these are sklearn's node ids (like ``apply``), for XGBoost its node
        ids (like ``pred_leaf``); trees in the TreeEnsemble's order.
        """
        Xc = self._check(X)
        return (self.leaf_nodes(Xc) - self.trees.roots[None, :]).copy()

    def leaf_nodes(self, X: np.ndarray) -> np.ndarray:
        """Leaf reached in each tree, (n, n_trees), as TreeEnsemble global node ids."""
        Xc = self._check(X)
        glob = self._original[self._leaf_nodes(Xc)]  # (n_eval, n)
        keep = glob < self.trees.n_nodes  # drop the base-score leaves
        n = Xc.shape[0]
        glob = glob[keep].reshape(-1, n) if not keep.all() else glob
        tree = self.trees.tree_of[glob[:, 0]] if n else np.zeros(0, dtype=np.intp)
        out = np.empty((n, self.n_trees), dtype=np.intp)
        out[:, tree] = glob.T
        return out

    def __repr__(self) -> str:
        return (
            f"CompiledEnsemble({self.trees.model_type}, n_trees={self.n_trees}, "
            f"n_nodes={self.n_nodes}, max_depth={self.max_depth}, n_classes={self.n_classes_})"
        )


def _probe_rows(ens: TreeEnsemble, n: int = 64) -> np.ndarray:
    """Rows on, just below and just above the ensemble's thresholds (deterministic)."""
    rng = np.random.default_rng(0)
    X = np.zeros((n, ens.n_features))
    for j, t in enumerate(ens.feature_thresholds()):
        if t.size:
            t32 = t.astype(ens.input_dtype)
            vals = np.concatenate([t, np.nextafter(t32, -np.inf), np.nextafter(t32, np.inf),
                                   np.nextafter(t, np.inf)]).astype(np.float64)
            X[:, j] = vals[rng.integers(0, vals.size, size=n)]
    return X


CompiledForest = CompiledEnsemble  # the name genetic search and older code use


def _softmax(s: np.ndarray, library: str) -> np.ndarray:
    if library == "lightgbm":  # LightGBM's Common::Softmax: exp(x - max) / sum, in order
        e = np.exp(s - s.max(axis=1, keepdims=True))
        total = e[:, 0].copy()
        for k in range(1, e.shape[1]):
            total += e[:, k]
        return e / total[:, None]
    from sklearn.utils.extmath import softmax

    return softmax(s.copy())


# --------------------------------------------------------------------------- fallback


class BatchedPredictor:
    """Any fitted classifier with ``predict_proba`` behind the :class:`Predictor` interface.

    ``batch_size`` splits large inputs into chunks (``None``: one call). Inputs are checked like
    :class:`CompiledEnsemble` (2-D, column count when the estimator records ``n_features_in_``,
    no NaN). ``predict`` is the argmax of ``predict_proba``, which for a few estimators (e.g.
    ``SVC(probability=True)``) can differ from the estimator's own ``predict``.
    """

    estimator: Any
    batch_size: int | None
    classes_: np.ndarray
    n_features_in_: int | None

    def __init__(self, estimator: Any, batch_size: int | None = None) -> None:
        if not hasattr(estimator, "predict_proba"):
            raise TypeError(f"{type(estimator).__name__} has no predict_proba")
        if not hasattr(estimator, "classes_"):
            raise ValueError(f"{type(estimator).__name__} is not fitted")
        if batch_size is not None and batch_size < 1:
            raise ValueError("batch_size must be a positive integer or None")
        self.estimator = estimator
        self.batch_size = batch_size
        self.classes_ = np.asarray(estimator.classes_)
        n_in = getattr(estimator, "n_features_in_", None)
        self.n_features_in_ = None if n_in is None else int(n_in)

    def _check(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D array (n_rows, n_features), got shape {X.shape}")
        if self.n_features_in_ is not None and X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but the model expects {self.n_features_in_} features"
            )
        if np.isnan(X).any():
            _raise_non_finite(X)
        return X

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The estimator's ``predict_proba``, evaluated ``batch_size`` rows at a time."""
        X = self._check(X)
        bs = self.batch_size
        if bs is None or len(X) <= bs:
            return np.asarray(self.estimator.predict_proba(X))
        parts = [self.estimator.predict_proba(X[i : i + bs]) for i in range(0, len(X), bs)]
        return np.concatenate(parts, axis=0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``classes_[argmax(predict_proba(X), axis=1)]``."""
        return self.classes_.take(np.argmax(self.predict_proba(X), axis=1), axis=0)

    def __repr__(self) -> str:
        return f"BatchedPredictor({type(self.estimator).__name__}, batch_size={self.batch_size})"


def compile_predictor(model: Any, batch_size: int | None = None) -> Predictor:
    """:class:`CompiledEnsemble` for supported tree models, else :class:`BatchedPredictor`.

    Supported: see :data:`cfgen.trees.SUPPORTED_MODELS` (a :class:`TreeEnsemble` is accepted
    too). Anything else with ``predict_proba`` (pipelines, linear models, tree models the view
    refuses, ...) is wrapped in a :class:`BatchedPredictor` with ``batch_size``; a
    ``CompiledEnsemble`` / ``BatchedPredictor`` is returned unchanged.
    """
    if isinstance(model, (CompiledEnsemble, BatchedPredictor)):
        return model
    try:
        return CompiledEnsemble(model)
    except UnsupportedModel:
        return BatchedPredictor(model, batch_size=batch_size)
