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
  softmax with the C library's ``expf`` (which XGBoost calls; without a C compiler an exact
  numpy emulation of glibc's): probabilities bit-for-bit equal; classes ``p > 0.5`` (binary)
  or argmax.

Engines (:attr:`CompiledEnsemble.engine`, in :mod:`cfgen.tree_kernels`), all giving the same
bits: ``"c"``, a small C kernel compiled once per machine with the system compiler and cached
(the fastest); else scikit-learn's compiled gradient-boosting kernels fed with the compiled
trees (``"dense"`` / ``"sparse"``) or the vectorised numpy walk, whichever is
fastest on a probe. Every engine is checked against the numpy walk when a model is compiled.

:class:`BatchedPredictor` wraps any other classifier's ``predict_proba`` behind the same interface;
:func:`compile_predictor` picks the right one.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from cfgen.tree_kernels import CEngine, NativeEngine, c_kernel, expf, xgb_proba
from cfgen.trees import TreeEnsemble, UnsupportedModel

__all__ = [
    "BatchedPredictor",
    "CompiledEnsemble",
    "CompiledForest",
    "Predictor",
    "c_kernel",
    "compile_predictor",
    "expf",
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

    def __init__(
        self, model: Any, engine: Literal["auto", "numpy", "c", "dense", "sparse"] = "auto"
    ) -> None:
        ens = TreeEnsemble.from_model(model)
        self.trees = ens
        self.classes_ = np.asarray(ens.classes_)
        self.n_classes_ = ens.n_classes
        self.n_features_in_ = ens.n_features
        self.n_trees = ens.n_trees
        self._dtype: type[np.floating] = ens.input_dtype
        self._engine: NativeEngine | CEngine | None = None
        self._engine_request = engine
        self._compile(ens, engine)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled as the tree view: a native engine (ctypes, compiled kernels) is rebuilt in
        the process that unpickles it (each worker compiles once)."""
        return {"trees": self.trees, "engine": self._engine_request}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["trees"], engine=state["engine"])  # type: ignore[misc]

    @property
    def engine(self) -> str:
        """``"c"`` (cfgen's C kernel), ``"dense"`` / ``"sparse"`` (scikit-learn's compiled
        kernels; both in :mod:`cfgen.tree_kernels`) or ``"numpy"`` (the
        vectorised walk)."""
        return "numpy" if self._engine is None else self._engine.kernel

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

    def _compile(self, ens: TreeEnsemble, engine: str) -> None:
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
        tree_depth = np.zeros(roots.shape[0], dtype=np.intp)  # base-score leaves: 0
        real = roots < ens.n_nodes
        per_tree = np.zeros(ens.n_trees, dtype=np.intp)
        np.maximum.at(per_tree, ens.tree_of, ens.depth)
        tree_depth[real] = per_tree[np.searchsorted(ens.roots, roots[real])]
        self._tree_depth = tree_depth
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
        if engine != "numpy":
            kernels = ("c", "dense", "sparse") if engine == "auto" else (engine,)
            self._engine = self._pick_engine(ens, new_of_old, roots, kernels)

    def _pick_engine(self, ens: TreeEnsemble, new_of_old: np.ndarray, roots: np.ndarray,
                     kernels: tuple[str, ...]) -> NativeEngine | CEngine | None:
        """The C kernel if available, else the fastest of scikit-learn's kernels and the numpy
        walk on a 50-row probe.

        Every kernel must agree exactly with the numpy walk on rows at and around the
        thresholds, or it is not used. Candidates are timed in alternating rounds (the best of
        each); the choice affects speed only, never results.
        """
        probe = self._check(_probe_rows(ens))
        want = self._scores_from(self._walk(probe), probe.shape[0])
        engines: list[NativeEngine | CEngine | None] = []
        for kernel in kernels:
            try:
                engine: NativeEngine | CEngine
                if kernel == "c":
                    lib = c_kernel()
                    if lib is None:
                        continue
                    engine = CEngine(self, lib)
                else:
                    engine = NativeEngine(ens, new_of_old, roots, kernel)
                if not np.array_equal(self._engine_scores(engine, probe), want):
                    continue
            except (ImportError, AttributeError, TypeError, ValueError):
                continue
            if kernel == "c" or len(kernels) == 1:
                return engine  # the C kernel: the fastest wherever measured
            engines.append(engine)
        if not engines:
            return None
        engines.append(None)  # the numpy walk
        best = [np.inf] * len(engines)
        for _ in range(3):
            for i, e in enumerate(engines):
                best[i] = min(best[i], _time(lambda e=e: self._probe_scores(e, probe)))
        return engines[int(np.argmin(best))]

    def _probe_scores(self, engine: NativeEngine | CEngine | None,
                      Xc: np.ndarray) -> np.ndarray:
        if engine is None:
            return self._scores_from(self._walk(Xc), Xc.shape[0])
        return self._engine_scores(engine, Xc)

    def _engine_scores(self, engine: NativeEngine | CEngine, Xc: np.ndarray) -> np.ndarray:
        out = engine.run(Xc)
        return out if engine.mode == "scores" else self._scores_from(out, Xc.shape[0])

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
        """Compiled leaf ids, shape (n_eval_trees, n_rows), by the ids engine if any."""
        if self._engine is not None and self._engine.mode == "ids":
            return self._engine.run(Xc)
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
        return self._scores_raw(X)

    def _scores_raw(self, X: Any) -> np.ndarray:
        """Scores of unchecked rows: straight into the C kernel when it can take them (it
        validates and casts itself), else the generic checks and engines."""
        if isinstance(self._engine, CEngine):
            s = self._engine.scores_of(X)
            if s is not None:
                return s
        return self._scores(self._check(X))

    def _scores(self, Xc: np.ndarray) -> np.ndarray:
        if self._engine is not None and self._engine.mode == "scores":
            return self._engine.run(Xc)
        return self._scores_from(self._leaf_nodes(Xc), Xc.shape[0])

    def _scores_from(self, node: np.ndarray, n: int) -> np.ndarray:
        """Scores (n, K) from compiled leaf ids (n_eval_trees, n)."""
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
        return self._proba(self._scores_raw(X))

    def _proba(self, s: np.ndarray) -> np.ndarray:
        ens = self.trees
        if ens.kind == "vote":
            proba = s.copy()
            if self.n_trees > 1:
                proba /= self.n_trees
            return proba
        if ens.library == "xgboost":
            return xgb_proba(s, ens.link == "sigmoid")
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
        s = self._scores_raw(X)
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


def _time(fn: Any, reps: int = 5) -> float:
    """Smallest of a few timings of ``fn()`` (seconds)."""
    import time

    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return float(best)


def _probe_rows(ens: TreeEnsemble, n: int = 50) -> np.ndarray:
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
