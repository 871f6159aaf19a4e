"""Fast class-probability predictors for the genetic search's hot path.

:class:`CompiledForest` flattens a fitted sklearn tree classifier (RandomForest, ExtraTrees,
DecisionTree, ExtraTree) into a handful of numpy arrays and evaluates a whole population with a
vectorised traversal (a Python loop over depth only). Results are bit-for-bit equal to the
estimator's ``predict_proba`` / ``predict`` (see :class:`CompiledForest` for how).

:class:`BatchedPredictor` wraps any other classifier's ``predict_proba`` behind the same interface;
:func:`compile_predictor` picks the right one.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "BatchedPredictor",
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
        """``classes_[argmax(predict_proba(X), axis=1)]``."""
        ...


def _tree_classifier_types() -> tuple[type, ...]:
    from sklearn.tree import DecisionTreeClassifier

    return (DecisionTreeClassifier,)  # ExtraTreeClassifier subclasses it


def _forest_classifier_types() -> tuple[type, ...]:
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    return (RandomForestClassifier, ExtraTreesClassifier)


def _leaf_values_are_fractions() -> bool:
    """Whether ``tree_.value`` holds class fractions (sklearn >= 1.4) rather than counts."""
    import sklearn

    major, minor = (
        int("".join(c for c in p if c.isdigit()) or 0) for p in sklearn.__version__.split(".")[:2]
    )
    return (major, minor) >= (1, 4)


def _check_fitted_single_output(model: Any) -> None:
    if not hasattr(model, "classes_"):
        raise ValueError(f"{type(model).__name__} is not fitted")
    if getattr(model, "n_outputs_", 1) != 1:
        raise ValueError("multi-output tree models are not supported")


def is_compilable(model: Any) -> bool:
    """Whether :class:`CompiledForest` supports ``model`` (a fitted single-output tree model)."""
    if not isinstance(model, _tree_classifier_types() + _forest_classifier_types()):
        return False
    try:
        _check_fitted_single_output(model)
    except ValueError:
        return False
    return True


def _as_2d_float32(X: Any, n_features: int) -> np.ndarray:
    """``X`` as a C-contiguous float32 (n, d) array, exactly as sklearn trees see it.

    Raises ``ValueError`` for NaN, for values that are infinite in float32 (sklearn rejects them
    too) and for a wrong shape / column count.
    """
    with np.errstate(over="ignore"):  # float64 beyond float32 range -> inf, reported below
        X32 = np.ascontiguousarray(X, dtype=np.float32)
    if X32.ndim != 2:
        raise ValueError(f"expected a 2-D array (n_rows, {n_features}), got shape {X32.shape}")
    if X32.shape[1] != n_features:
        raise ValueError(
            f"X has {X32.shape[1]} features, but the model expects {n_features} features"
        )
    if not np.isfinite(X32).all():
        _raise_non_finite(X32)
    return X32


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
    test on float32 input can be done in float32 with the same outcome as sklearn's
    float32-X-vs-float64-threshold comparison.
    """
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(over="ignore"):
        t32 = t.astype(np.float32)
    too_big = t32.astype(np.float64) > t
    t32[too_big] = np.nextafter(t32[too_big], np.float32(-np.inf))
    return t32


# steps (0-based) after which (tree, row) pairs already on a leaf are dropped, and the problem
# size (n_trees * n_rows) from which that pays off; measured on 100-tree forests: ~15% faster
# at depth 10 and ~45% with unlimited depth, no gain on small forests
_COMPACT_AT = frozenset({5, 8, 12, 17, 23, 30, 38, 47, 57, 68, 80, 93, 107, 122, 138, 155})
_COMPACT_MIN_PAIRS = 1024


class CompiledForest:
    """A fitted sklearn tree classifier / forest compiled into flat node arrays.

    Layout: the nodes of all trees are concatenated and renumbered so that the two children of
    every split node are adjacent (``right == left + 1``). Leaves point to themselves with a
    ``+inf`` threshold, so a fixed ``max_depth`` number of steps ``node = left[node] + (x > thr)``
    lands every (row, tree) pair on its leaf regardless of the trees' individual depths.

    Exactness vs sklearn:

    * sklearn casts X to float32 and tests ``float64(x32) <= threshold``; thresholds are stored
      here as the largest float32 ``<=`` the float64 threshold, which gives the same outcome for
      every float32 ``x`` (the float32 comparison is then exact).
    * ``tree_.value`` holds per-leaf class fractions (sklearn >= 1.4; older versions stored
      counts and normalised them at predict time, which is mirrored) that a tree returns as
      is; a forest sums the trees' arrays one after the other starting from zeros, in
      ``estimators_`` order, then divides by ``n_estimators``. The same order is used here
      (see :meth:`predict_proba`), so ``predict_proba`` is bit-for-bit equal.
      (A forest with ``n_jobs > 1`` adds trees from threads in nondeterministic order, so
      sklearn itself may then differ by an ulp between calls.)

    Inputs with NaN, values infinite in float32 or a wrong column count raise ``ValueError``.
    """

    classes_: np.ndarray
    n_features_in_: int
    n_trees: int
    max_depth: int

    def __init__(self, estimator: Any) -> None:
        if isinstance(estimator, _forest_classifier_types()):
            _check_fitted_single_output(estimator)
            trees = [e.tree_ for e in estimator.estimators_]
            self._is_forest = True
        elif isinstance(estimator, _tree_classifier_types()):
            _check_fitted_single_output(estimator)
            trees = [estimator.tree_]
            self._is_forest = False
        else:
            raise TypeError(
                f"CompiledForest supports fitted RandomForest/ExtraTrees/DecisionTree/ExtraTree "
                f"classifiers, got {type(estimator).__name__}; use compile_predictor()"
            )
        self.classes_ = np.asarray(estimator.classes_)
        self.n_classes_ = len(self.classes_)
        self.n_features_in_ = int(estimator.n_features_in_)
        self.n_trees = len(trees)
        self._compile(trees)

    # -- compilation ---------------------------------------------------------------------------

    def _compile(self, trees: list[Any]) -> None:
        sizes = [int(t.node_count) for t in trees]
        total = int(sum(sizes))
        feature = np.zeros(total, dtype=np.intp)
        threshold = np.full(total, np.inf, dtype=np.float64)
        left = np.empty(total, dtype=np.intp)
        value = np.empty((total, self.n_classes_), dtype=np.float64)
        original = np.empty(total, dtype=np.intp)  # new global id -> sklearn node id in its tree
        roots = np.empty(len(trees), dtype=np.intp)
        max_depth = 0
        offset = 0
        for k, tree in enumerate(trees):
            t_left, t_right = tree.children_left, tree.children_right
            t_feat, t_thr = tree.feature, tree.threshold
            t_val = tree.value[:, 0, :]
            if t_val.shape[1] != self.n_classes_:
                raise ValueError("tree value width does not match the number of classes")
            order = _adjacent_children_order(t_left, t_right)  # new local id -> old id
            new_of_old = np.empty_like(order)
            new_of_old[order] = np.arange(len(order))
            ids = offset + np.arange(len(order))
            is_split = t_left[order] != -1
            feature[ids[is_split]] = t_feat[order][is_split]
            threshold[ids[is_split]] = t_thr[order][is_split]
            left[ids] = np.where(is_split, offset + new_of_old[np.maximum(t_left[order], 0)], ids)
            value[ids] = t_val[order]
            original[ids] = order
            roots[k] = offset
            max_depth = max(max_depth, int(tree.max_depth))
            offset += len(order)
        self._feature = feature
        self._threshold32 = _float32_floor(threshold)
        self._left = left
        self._is_leaf = left == np.arange(total)
        if not _leaf_values_are_fractions():
            # sklearn < 1.4 stored weighted class counts and normalised them in predict_proba
            # (untested here: the project's environment has sklearn >= 1.4)
            normalizer = value.sum(axis=1)[:, np.newaxis]
            normalizer[normalizer == 0.0] = 1.0
            value = value / normalizer
        self._value = value
        self._value_t = np.ascontiguousarray(value.T)  # (n_classes, n_nodes)
        self._original = original
        self._roots = roots
        self._start_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.max_depth = max_depth

    @property
    def n_nodes(self) -> int:
        """Total number of nodes over all trees."""
        return int(len(self._left))

    # -- evaluation ----------------------------------------------------------------------------

    def _start(self, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
        """Row offsets into the flattened X and root ids for all (tree, row) pairs (cached)."""
        key = (n, d)
        hit = self._start_cache.get(key)
        if hit is None:
            row_full = np.tile(np.arange(0, n * d, d, dtype=np.intp), self.n_trees)
            roots = np.repeat(self._roots, n)
            row_full.flags.writeable = roots.flags.writeable = False
            if len(self._start_cache) >= 16:
                self._start_cache.clear()
            hit = self._start_cache[key] = (row_full, roots)
        return hit

    def _leaf_nodes(self, X32: np.ndarray) -> np.ndarray:
        """Global leaf ids, shape (n_trees, n_rows).

        One vectorised step per tree level over all (tree, row) pairs. For larger problems the
        pairs already on a leaf are dropped after a few levels (``_COMPACT_AT``): most paths
        end well before ``max_depth``, so deep forests do much less work.
        """
        n, d = X32.shape
        xflat = X32.ravel()
        row_full, node = self._start(n, d)
        row_off = row_full
        feature, thr, left, is_leaf = self._feature, self._threshold32, self._left, self._is_leaf
        last = self.max_depth - 1
        compact = self.n_trees * n >= _COMPACT_MIN_PAIRS
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
        return state.reshape(self.n_trees, n)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes), equal to the estimator's ``predict_proba``."""
        X32 = _as_2d_float32(X, self.n_features_in_)
        node = self._leaf_nodes(X32)
        if not self._is_forest:
            return self._value[node[0]]
        n = X32.shape[0]
        if n == 1:  # see below: keep a contiguous non-reduced axis of length >= 2
            node = np.repeat(node, 2, axis=1)
        # Leaf values as (n_classes, n_trees, n_rows), summed over the middle (tree) axis. With
        # >= 2 contiguous rows numpy reduces a non-innermost axis by adding whole (n_rows,)
        # slices one tree after another: the order of sklearn's `out += tree_proba` loop (no
        # pairwise summation, which numpy applies only along the innermost axis, hence the
        # padding of a single row). Checked bitwise in tests; ~10x faster than np.add.accumulate.
        per_tree = np.take(self._value_t, node, axis=1)
        proba = per_tree.sum(axis=1).T[:n].copy()
        proba /= self.n_trees
        return proba

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class labels, equal to the estimator's ``predict``."""
        return self.classes_.take(np.argmax(self.predict_proba(X), axis=1), axis=0)

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Leaf reached in each tree, (n, n_trees), as sklearn node ids (like ``apply``)."""
        X32 = _as_2d_float32(X, self.n_features_in_)
        return self._original[self._leaf_nodes(X32)].T.copy()

    def __repr__(self) -> str:
        return (
            f"CompiledForest(n_trees={self.n_trees}, n_nodes={self.n_nodes}, "
            f"max_depth={self.max_depth}, n_classes={self.n_classes_})"
        )


def _adjacent_children_order(children_left: np.ndarray, children_right: np.ndarray) -> np.ndarray:
    """Breadth-first node order (old ids) in which every split node's children are adjacent."""
    order = [0]
    queue = deque([0])
    while queue:
        node = queue.popleft()
        lc = int(children_left[node])
        if lc != -1:
            rc = int(children_right[node])
            order.extend((lc, rc))
            queue.extend((lc, rc))
    return np.asarray(order, dtype=np.intp)


class BatchedPredictor:
    """Any fitted classifier with ``predict_proba`` behind the :class:`Predictor` interface.

    ``batch_size`` splits large inputs into chunks (``None``: one call). Inputs are checked like
    :class:`CompiledForest` (2-D, column count when the estimator records ``n_features_in_``,
    no NaN). ``predict`` is the argmax of ``predict_proba``, which for a few estimators (e.g.
    ``SVC(probability=True)``) can differ from the estimator's own ``predict``.
    """

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
        self.n_features_in_: int | None = None if n_in is None else int(n_in)

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
    """:class:`CompiledForest` for supported tree models, else :class:`BatchedPredictor`.

    Supported: fitted single-output ``RandomForestClassifier``, ``ExtraTreesClassifier``,
    ``DecisionTreeClassifier``, ``ExtraTreeClassifier``. Anything else with ``predict_proba``
    (pipelines, boosting, linear models, ...) is wrapped in a :class:`BatchedPredictor` with
    ``batch_size``; a ``CompiledForest`` / ``BatchedPredictor`` is returned unchanged.
    """
    if isinstance(model, (CompiledForest, BatchedPredictor)):
        return model
    if is_compilable(model):
        return CompiledForest(model)
    return BatchedPredictor(model, batch_size=batch_size)
