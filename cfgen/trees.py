"""One flat node-array view of a fitted tree ensemble, whatever library fitted it.

:meth:`TreeEnsemble.from_model` reads the library's own structures and concatenates every tree's
nodes with global ids. The compiled predictor (:mod:`cfgen.predictor`), the class-bound miners
(:mod:`cfgen.constraints`), the split grid (:mod:`cfgen.search.thresholds`) and the exact MILP
method read this one view, so they agree on what a model is and refuse the same models with the
same :class:`UnsupportedModel` line.

Two kinds of ensembles:

``vote`` (sklearn ``RandomForestClassifier``, ``ExtraTreesClassifier``,
``DecisionTreeClassifier``, ``ExtraTreeClassifier``)
    Every leaf holds class fractions (``value[leaf]``, one column per class); the probability is
    their mean over the trees (``link="mean"``).
``margin`` (sklearn ``GradientBoostingClassifier``, ``HistGradientBoostingClassifier``,
``xgboost.XGBClassifier``, ``lightgbm.LGBMClassifier``)
    Every tree adds its leaf's margin to one score column (``tree_column``): one column for a
    binary model, one per class otherwise. Scores start at ``base_score`` (the library's
    init / intercept); ``link`` turns them into probabilities (``sigmoid``, ``sigmoid2`` for
    GradientBoosting's exponential loss = ``expit(2 s)``, or ``softmax``).

Split comparison, per library (``split_rule``):

=================  ============================================  =================================
library            the library's own test (go left iff ...)      here: ``cast(x) <= threshold``
=================  ============================================  =================================
sklearn trees, GB  ``float64(float32(x)) <= thr`` (thr float64)  cast float32, threshold = thr
XGBoost            ``float32(x) < split`` (split float32)        cast float32, threshold = largest
                                                                 float32 below split
LightGBM           ``x <= threshold`` in double, after reading   cast float64 with the same
                   ``|x| <= 1e-35f`` as 0 (its sparse rows)      zeroing, threshold as is
HistGB             ``x <= num_threshold`` in double              cast float64, threshold as is
=================  ============================================  =================================

So every consumer can use one rule: with ``v = cast(x)`` (``float64(x.astype(input_dtype))``,
and for LightGBM ``0`` where ``|x| <= zero_below``), a split sends ``v`` left iff
``v <= threshold``; a leaf's box is ``low < v <= high`` per feature
(:meth:`TreeEnsemble.leaf_boxes`). ``raw_threshold`` keeps the library's own number.

For an exact method (e.g. a MILP over leaf indicators): ``boxes = ens.leaf_boxes()`` lists every
leaf once with its box and its contribution, tree by tree (``boxes.tree_slices``). Exactly one
leaf per tree holds a row ``x``; with ``z[i] = 1`` for those leaves::

    score = ens.base_score + z @ boxes.value          # (K,), before the link
    # vote: argmax(score) (= argmax of the mean); margin, K == 1: class 1 iff score > 0
    # (GB: >= 0; XGBoost: float32 sigmoid > 0.5); margin, K > 1: argmax(score)

and ``z[i] = 1`` iff ``boxes.low[i] < cast(x) <= boxes.high[i]`` on every feature. Rows on the
decision boundary (a score exactly 0 or tied) should be re-checked with the model's own
``predict`` (or :class:`cfgen.predictor.CompiledEnsemble`, which reproduces it).

Missing values: the compiled predictor rejects NaN inputs, so default directions never apply;
models that treat a *non-NaN* value as missing (XGBoost ``missing != nan``, LightGBM
``zero_as_missing`` / ``missing_type=Zero``) are refused. Categorical splits (LightGBM, HistGB,
XGBoost) are refused.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from cfgen.errors import ConfigError

__all__ = [
    "SUPPORTED_MODELS",
    "LeafBoxes",
    "TreeEnsemble",
    "UnsupportedModel",
    "float32_below",
]

SUPPORTED_MODELS: tuple[str, ...] = (
    "RandomForestClassifier",
    "ExtraTreesClassifier",
    "DecisionTreeClassifier",
    "ExtraTreeClassifier",
    "GradientBoostingClassifier",
    "HistGradientBoostingClassifier",
    "XGBClassifier",
    "LGBMClassifier",
)

Kind = Literal["vote", "margin"]
Link = Literal["mean", "sigmoid", "sigmoid2", "softmax"]


class UnsupportedModel(ConfigError):
    """The model is not a fitted tree ensemble :class:`TreeEnsemble` can read."""


def unsupported(model: Any, reason: str) -> UnsupportedModel:
    """The one-line error for ``model``: its type, why, and what is supported."""
    return UnsupportedModel(
        f"model: {type(model).__name__} {reason}; supported: fitted single-output "
        f"{', '.join(SUPPORTED_MODELS)} with numeric splits"
    )


def float32_below(t: np.ndarray) -> np.ndarray:
    """Largest float32 strictly below each float32 ``t`` (as float64).

    For float32 ``v``: ``v < t``  <=>  ``v <= float32_below(t)`` (XGBoost's ``<`` as ``<=``).
    """
    t32 = np.asarray(t, dtype=np.float32)
    return np.nextafter(t32, np.float32(-np.inf)).astype(np.float64)


# --------------------------------------------------------------------------- the view


@dataclass(frozen=True)
class LeafBoxes:
    """Every leaf of the ensemble with its axis-aligned box and its contribution.

    Row ``i`` is leaf ``node[i]`` of tree ``tree[i]``; the rows reaching it are exactly those with
    ``low[i, j] < v_j <= high[i, j]`` for every feature ``j`` (``v = float64(x.astype(
    input_dtype))``, open sides ±inf). ``value[i]`` is what the leaf adds to the score columns
    (``TreeEnsemble.value`` at the leaf). Leaves of one tree are contiguous, in node-id order.
    """

    node: np.ndarray  # (L,) global node id
    tree: np.ndarray  # (L,) tree index
    low: np.ndarray  # (L, d)
    high: np.ndarray  # (L, d)
    value: np.ndarray  # (L, K)

    @property
    def tree_slices(self) -> np.ndarray:
        """(T + 1,) offsets: tree ``t``'s leaves are rows ``tree_slices[t]:tree_slices[t + 1]``."""
        T = int(self.tree[-1]) + 1 if self.tree.size else 0
        return np.searchsorted(self.tree, np.arange(T + 1)).astype(np.intp)

    def holding(self, V: np.ndarray) -> np.ndarray:
        """(n, L) bool: which leaf boxes hold each row of already-cast values ``V``."""
        V = np.atleast_2d(V)
        return np.all((V[:, None, :] > self.low[None]) & (V[:, None, :] <= self.high[None]),
                      axis=2)


@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """All trees' nodes concatenated (global ids; ``-1`` = none). Build with :meth:`from_model`.

    Scores: ``score[:, k] = base_score[k] + sum over trees t of value[leaf_t(x), k]`` (a vote tree
    adds to every column, a margin tree only to ``tree_column[t]``); probabilities
    ``= link(score)`` (``mean``: divide by ``n_trees``). See the module docstring for the split
    rule.
    """

    library: str  # "sklearn", "xgboost", "lightgbm"
    model_type: str  # the estimator's class name
    kind: Kind
    link: Link
    classes_: np.ndarray
    n_features: int
    input_dtype: type[np.floating]  # np.float32 or np.float64: what the library compares
    split_rule: str  # the library's own comparison, for humans
    feature: np.ndarray  # (N,) split feature, -1 at leaves
    threshold: np.ndarray  # (N,) go left iff cast(x) <= threshold; nan at leaves
    raw_threshold: np.ndarray  # (N,) the library's number; nan at leaves
    left: np.ndarray  # (N,) -1 at leaves
    right: np.ndarray  # (N,) -1 at leaves
    value: np.ndarray  # (N, K) leaf contribution to the score columns; 0 at internal nodes
    roots: np.ndarray  # (T,)
    tree_column: np.ndarray  # (T,) score column a margin tree adds to; -1 for vote trees
    base_score: np.ndarray  # (K,) initial score (zeros for vote)
    zero_below: float = 0.0  # |x| <= zero_below is read as 0 (LightGBM: float32 1e-35)
    parent: np.ndarray = field(init=False)  # (N,) -1 at roots
    depth: np.ndarray = field(init=False)  # (N,) root = 0

    def __post_init__(self) -> None:
        n = self.feature.shape[0]
        parent = np.full(n, -1, dtype=np.intp)
        split = np.flatnonzero(self.feature >= 0)
        parent[self.left[split]] = split
        parent[self.right[split]] = split
        depth = np.zeros(n, dtype=np.intp)
        level = self.roots
        d = 0
        while level.size:
            depth[level] = d
            inner = level[self.feature[level] >= 0]
            level = np.concatenate([self.left[inner], self.right[inner]])
            d += 1
        object.__setattr__(self, "parent", parent)
        object.__setattr__(self, "depth", depth)
        for a in (self.feature, self.threshold, self.raw_threshold, self.left, self.right,
                  self.value, self.roots, self.tree_column, self.base_score, parent, depth):
            a.flags.writeable = False

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_model(cls, model: Any) -> TreeEnsemble:
        """The view of a fitted supported classifier; :class:`UnsupportedModel` otherwise."""
        if isinstance(model, TreeEnsemble):
            return model
        return _read(model)

    @classmethod
    def assemble(
        cls,
        trees: list[RawTree],
        *,
        library: str,
        model_type: str,
        kind: Kind,
        link: Link,
        classes: np.ndarray,
        n_features: int,
        input_dtype: type[np.floating],
        split_rule: str,
        base_score: np.ndarray,
        strict_less: bool = False,
        zero_below: float = 0.0,
    ) -> TreeEnsemble:
        """Concatenate per-tree arrays (local ids) into one ensemble (global ids)."""
        K = int(base_score.shape[0])
        sizes = [t.feature.shape[0] for t in trees]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
        feature = np.concatenate([t.feature for t in trees]).astype(np.intp)
        raw = np.concatenate([t.threshold for t in trees]).astype(np.float64)
        left = np.concatenate([np.where(t.left >= 0, t.left + o, -1)
                               for t, o in zip(trees, offsets, strict=False)]).astype(np.intp)
        right = np.concatenate([np.where(t.right >= 0, t.right + o, -1)
                                for t, o in zip(trees, offsets, strict=False)]).astype(np.intp)
        value = np.zeros((int(offsets[-1]), K), dtype=np.float64)
        column = np.array([t.column for t in trees], dtype=np.intp)
        for t, o, c in zip(trees, offsets, column, strict=False):
            leaf = t.feature < 0
            if c < 0:
                value[o:o + t.feature.shape[0]][leaf] = t.value[leaf]
            else:
                value[o:o + t.feature.shape[0], c][leaf] = t.value[leaf, 0]
        leaf = feature < 0
        feature[leaf] = -1
        left[leaf] = -1
        right[leaf] = -1
        raw[leaf] = np.nan
        thr = raw.copy()
        if strict_less:
            thr[~leaf] = float32_below(raw[~leaf])
        return cls(
            library=library, model_type=model_type, kind=kind, link=link,
            classes_=np.asarray(classes), n_features=int(n_features), input_dtype=input_dtype,
            split_rule=split_rule, feature=feature, threshold=thr, raw_threshold=raw,
            left=left, right=right, value=value, roots=offsets[:-1].copy(),
            tree_column=column, base_score=np.asarray(base_score, dtype=np.float64),
            zero_below=zero_below,
        )

    # -- shape --------------------------------------------------------------------------------

    @property
    def n_nodes(self) -> int:
        return int(self.feature.shape[0])

    @property
    def n_trees(self) -> int:
        return int(self.roots.shape[0])

    @property
    def n_classes(self) -> int:
        return int(len(self.classes_))

    @property
    def n_columns(self) -> int:
        """Number of score columns K (classes; 1 for a binary margin model)."""
        return int(self.base_score.shape[0])

    @property
    def is_leaf(self) -> np.ndarray:
        return self.feature < 0

    @property
    def leaves(self) -> np.ndarray:
        """Global ids of all leaves, tree by tree."""
        return np.flatnonzero(self.feature < 0)

    @property
    def max_depth(self) -> int:
        return int(self.depth.max()) if self.n_nodes else 0

    @property
    def tree_of(self) -> np.ndarray:
        """(N,) tree index of every node."""
        return np.searchsorted(self.roots, np.arange(self.n_nodes), side="right") - 1

    def cast(self, X: np.ndarray) -> np.ndarray:
        """``X`` as the library compares it: float64 values of ``X.astype(input_dtype)``
        (LightGBM: values with ``|x| <= zero_below`` become 0, as its row reader skips them)."""
        with np.errstate(over="ignore"):
            V = np.asarray(X).astype(self.input_dtype).astype(np.float64)
        if self.zero_below > 0:
            V[np.abs(V) <= self.zero_below] = 0.0
        return V

    # -- what consumers need ------------------------------------------------------------------

    def leaf_class_votes(self) -> np.ndarray:
        """(N, n_classes) bool: the classes each leaf "votes" for (False at internal nodes).

        Vote trees: the leaf's majority class (ties: lowest class, as ``argmax``). Margin trees:
        the classes whose score the leaf raises: a binary model's leaf votes class 1 when its
        margin is > 0 and class 0 when < 0; a multi-class tree's leaf votes its column's class
        when its margin is > 0 (and nothing otherwise).
        """
        votes = np.zeros((self.n_nodes, self.n_classes), dtype=bool)
        leaf = self.leaves
        if self.kind == "vote":
            votes[leaf, np.argmax(self.value[leaf], axis=1)] = True
        elif self.n_columns == 1:
            v = self.value[leaf, 0]
            votes[leaf[v > 0], 1] = True
            votes[leaf[v < 0], 0] = True
        else:
            col = self.tree_column[self.tree_of[leaf]]
            v = self.value[leaf, col]
            votes[leaf[v > 0], col[v > 0]] = True
        return votes

    def feature_thresholds(self) -> list[np.ndarray]:
        """Per feature, the sorted distinct finite ``threshold`` values of its splits (the split
        grid). HistGB trained with NaN has ``+inf`` splits (NaN one way, every number the
        other): they do not split finite values and are left out."""
        split = (self.feature >= 0) & np.isfinite(self.threshold)
        f, t = self.feature[split], self.threshold[split]
        return [np.unique(t[f == j]) for j in range(self.n_features)]

    def leaf_boxes(self) -> LeafBoxes:
        """Every leaf's box ``low < cast(x) <= high`` and value (see :class:`LeafBoxes`)."""
        leaf = self.leaves
        L, d = leaf.shape[0], self.n_features
        low = np.full((L, d), -np.inf)
        high = np.full((L, d), np.inf)
        rows = np.arange(L)
        cur = leaf.copy()
        live = self.parent[cur] >= 0
        while live.any():
            r, c = rows[live], cur[live]
            p = self.parent[c]
            f, t = self.feature[p], self.threshold[p]
            went_left = self.left[p] == c
            np.minimum.at(high, (r[went_left], f[went_left]), t[went_left])
            np.maximum.at(low, (r[~went_left], f[~went_left]), t[~went_left])
            cur[live] = p
            live = self.parent[cur] >= 0
        return LeafBoxes(node=leaf, tree=self.tree_of[leaf], low=low, high=high,
                         value=self.value[leaf].copy())

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Leaf reached in every tree, (n, T) global node ids (reference traversal).

        Follows ``cast(x) <= threshold`` from the roots; slower than the compiled predictor but
        independent of it (the tests compare the two).
        """
        V = self.cast(np.atleast_2d(X))
        n, T = V.shape[0], self.n_trees
        cur = np.tile(self.roots, n)
        rows = np.repeat(np.arange(n), T)
        active = np.flatnonzero(self.feature[cur] >= 0)
        while active.size:
            nodes = cur[active]
            go_left = V[rows[active], self.feature[nodes]] <= self.threshold[nodes]
            nxt = np.where(go_left, self.left[nodes], self.right[nodes])
            cur[active] = nxt
            active = active[self.feature[nxt] >= 0]
        return cur.reshape(n, T)

    def scores(self, X: np.ndarray) -> np.ndarray:
        """(n, K) scores before the link, summed in float64 (reference, not bit-exact)."""
        leaves = self.apply(X)
        return self.base_score + self.value[leaves].sum(axis=1)

    def __repr__(self) -> str:
        return (
            f"TreeEnsemble({self.model_type}, kind={self.kind}, link={self.link}, "
            f"n_trees={self.n_trees}, n_nodes={self.n_nodes}, max_depth={self.max_depth}, "
            f"n_classes={self.n_classes})"
        )


@dataclass
class RawTree:
    """One tree in local ids as a reader produces it: leaves have ``feature < 0``.

    ``value`` is (n, K) for a vote tree (``column == -1``) and (n, 1) for a margin tree adding
    to score column ``column``; only leaf rows are read.
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    column: int = -1


def parse_float_list(text: str) -> np.ndarray:
    """XGBoost's ``"[5E-1,2E-1]"`` / ``"5E-1"`` base_score strings as a float array."""
    text = text.strip()
    if not text.startswith("["):
        return np.array([float(text)])
    return np.array(json.loads(text), dtype=np.float64).ravel()


def logit32(p: float) -> float:
    """XGBoost's ``ProbToMargin`` for logistic: ``-log(1/p - 1)`` evaluated in float32."""
    q = np.float32(np.float32(1.0) / np.float32(p) - np.float32(1.0))
    return float(-np.float32(math.log(float(q))))


# --------------------------------------------------------------------------- readers


def _read(model: Any) -> TreeEnsemble:
    """Dispatch on the model's type (lazy imports: xgboost / lightgbm only when given)."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.tree import DecisionTreeClassifier

    module = type(model).__module__.split(".")[0]
    if isinstance(model, (RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier)):
        return _read_sklearn_vote(model)
    if isinstance(model, GradientBoostingClassifier):
        return _read_sklearn_gb(model)
    if isinstance(model, HistGradientBoostingClassifier):
        return _read_sklearn_hgb(model)
    if module == "xgboost":
        from xgboost import XGBClassifier

        if isinstance(model, XGBClassifier):
            return _read_xgboost(model)
    if module == "lightgbm":
        from lightgbm import LGBMClassifier

        if isinstance(model, LGBMClassifier):
            return _read_lightgbm(model)
    raise unsupported(model, "is not a supported tree ensemble")


def _check_sklearn_fitted(model: Any, attr: str) -> None:
    if not hasattr(model, attr) or not hasattr(model, "classes_"):
        raise unsupported(model, "is not fitted")
    n_out = getattr(model, "n_outputs_", 1)
    if n_out != 1:
        raise unsupported(model, f"has {n_out} outputs")


_SKLEARN_RULE = "float64(float32(x)) <= threshold (threshold float64)"


def _read_sklearn_vote(model: Any) -> TreeEnsemble:
    from sklearn.tree import DecisionTreeClassifier

    if isinstance(model, DecisionTreeClassifier):
        _check_sklearn_fitted(model, "tree_")
        estimators = [model]
    else:
        _check_sklearn_fitted(model, "estimators_")
        estimators = list(model.estimators_)
    classes = np.asarray(model.classes_)
    trees = []
    for est in estimators:
        t = est.tree_
        value = t.value[:, 0, :]  # class fractions (sklearn >= 1.4)
        if value.shape[1] != len(classes):
            raise unsupported(model, "has trees whose classes differ from the model's")
        leaf = t.children_left == -1
        trees.append(RawTree(np.where(leaf, -1, t.feature), t.threshold, t.children_left,
                             t.children_right, value))
    return TreeEnsemble.assemble(
        trees, library="sklearn", model_type=type(model).__name__, kind="vote", link="mean",
        classes=classes, n_features=int(model.n_features_in_), input_dtype=np.float32,
        split_rule=_SKLEARN_RULE, base_score=np.zeros(len(classes)),
    )


def _read_sklearn_gb(model: Any) -> TreeEnsemble:
    from sklearn.dummy import DummyClassifier

    _check_sklearn_fitted(model, "estimators_")
    init = model.init_
    if not (isinstance(init, str) and init == "zero") and not isinstance(init, DummyClassifier):
        raise unsupported(model, f"has init={type(init).__name__} (only the default or 'zero')")
    loss = type(model._loss).__name__
    links: dict[str, Link] = {"HalfBinomialLoss": "sigmoid", "ExponentialLoss": "sigmoid2",
                              "HalfMultinomialLoss": "softmax"}
    if loss not in links:
        raise unsupported(model, f"has loss {loss}")
    d = int(model.n_features_in_)
    # a constant prior (or zeros): the same raw start for every row
    base = np.asarray(model._raw_predict_init(np.zeros((1, d), dtype=np.float32)))[0]
    lr = float(model.learning_rate)
    trees = []
    for stage in model.estimators_:
        for k, est in enumerate(stage):
            t = est.tree_
            leaf = t.children_left == -1
            value = lr * t.value[:, 0, :1]  # sklearn adds ``learning_rate * value``
            trees.append(RawTree(np.where(leaf, -1, t.feature), t.threshold, t.children_left,
                                 t.children_right, value, column=k))
    return TreeEnsemble.assemble(
        trees, library="sklearn", model_type=type(model).__name__, kind="margin",
        link=links[loss], classes=np.asarray(model.classes_), n_features=d,
        input_dtype=np.float32, split_rule=_SKLEARN_RULE, base_score=base,
    )


def _read_sklearn_hgb(model: Any) -> TreeEnsemble:
    _check_sklearn_fitted(model, "_predictors")
    loss = type(model._loss).__name__
    links: dict[str, Link] = {"HalfBinomialLoss": "sigmoid", "HalfMultinomialLoss": "softmax"}
    if loss not in links:
        raise unsupported(model, f"has loss {loss}")
    trees = []
    for iteration in model._predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(bool)
            if nodes["is_categorical"][~leaf].any():
                raise unsupported(model, "has categorical splits")
            trees.append(RawTree(
                np.where(leaf, -1, nodes["feature_idx"]), nodes["num_threshold"],
                np.where(leaf, -1, nodes["left"].astype(np.intp)),
                np.where(leaf, -1, nodes["right"].astype(np.intp)),
                nodes["value"][:, None].astype(np.float64), column=k,
            ))
    return TreeEnsemble.assemble(
        trees, library="sklearn", model_type=type(model).__name__, kind="margin",
        link=links[loss], classes=np.asarray(model.classes_),
        n_features=int(model.n_features_in_), input_dtype=np.float64,
        split_rule="x <= num_threshold (float64)",
        base_score=np.asarray(model._baseline_prediction, dtype=np.float64).ravel(),
    )


def _read_xgboost(model: Any) -> TreeEnsemble:
    try:
        booster = model.get_booster()
    except Exception:  # sklearn's NotFittedError
        raise unsupported(model, "is not fitted") from None
    missing = model.get_params().get("missing", np.nan)
    if missing is not None and not (isinstance(missing, float) and math.isnan(missing)):
        raise unsupported(model, f"has missing={missing!r} (only NaN may mean missing)")
    learner = json.loads(booster.save_raw(raw_format="json"))["learner"]
    gbm = learner["gradient_booster"]
    if gbm["name"] != "gbtree":
        raise unsupported(model, f"uses booster={gbm['name']!r} (only 'gbtree')")
    objective = learner["objective"]["name"]
    param = learner["learner_model_param"]
    base = parse_float_list(param["base_score"]).astype(np.float32).astype(np.float64)
    link: Link
    if objective == "binary:logistic":
        link, base = "sigmoid", np.array([logit32(float(base[0]))])
    elif objective in ("multi:softprob", "multi:softmax"):
        link = "softmax"
        K = int(param["num_class"])
        base = np.broadcast_to(base, (K,)).copy()
    else:
        raise unsupported(model, f"has objective {objective!r}")
    if int(param.get("num_target", 1)) != 1:
        raise unsupported(model, f"has {param['num_target']} targets")
    tree_model = gbm["model"]
    raw_trees, info = tree_model["trees"], list(tree_model["tree_info"])
    lo, hi = _xgb_iteration_range(model)
    if hi > 0:
        indptr = tree_model["iteration_indptr"]
        raw_trees, info = raw_trees[indptr[lo]:indptr[hi]], info[indptr[lo]:indptr[hi]]
    trees = [_xgb_tree(model, t, int(c)) for t, c in zip(raw_trees, info, strict=True)]
    return TreeEnsemble.assemble(
        trees, library="xgboost", model_type=type(model).__name__, kind="margin", link=link,
        classes=np.asarray(model.classes_), n_features=int(model.n_features_in_),
        input_dtype=np.float32, split_rule="float32(x) < split (split float32)",
        base_score=base, strict_less=True,
    )


def _xgb_iteration_range(model: Any) -> tuple[int, int]:
    """The trees ``predict`` uses (early stopping keeps up to the best iteration)."""
    try:
        lo, hi = model._get_iteration_range(None)
    except (AttributeError, TypeError):
        return 0, 0
    return int(lo), int(hi)


def _xgb_tree(model: Any, t: dict, column: int) -> RawTree:
    if int(t["tree_param"].get("size_leaf_vector", 1)) > 1:
        raise unsupported(model, "has vector-leaf (multi-output) trees")
    if any(int(s) != 0 for s in t["split_type"]):
        raise unsupported(model, "has categorical splits")
    left = np.asarray(t["left_children"], dtype=np.intp)
    right = np.asarray(t["right_children"], dtype=np.intp)
    leaf = left == -1
    # JSON holds float32 values in shortest round-trip form: back through float32 = exact
    cond = np.asarray(t["split_conditions"], dtype=np.float32).astype(np.float64)
    feature = np.where(leaf, -1, np.asarray(t["split_indices"], dtype=np.intp))
    return RawTree(feature, cond, left, right, cond[:, None].copy(), column=column)


def _read_lightgbm(model: Any) -> TreeEnsemble:
    try:
        booster = model.booster_
    except Exception:  # LGBMNotFittedError
        raise unsupported(model, "is not fitted") from None
    dump = booster.dump_model()
    objective = str(dump.get("objective", "")).split()
    name = objective[0] if objective else "custom"
    link: Link
    if name == "binary":
        link, K = "sigmoid", 1
        sigmoid = [o for o in objective if o.startswith("sigmoid:")]
        if sigmoid and float(sigmoid[0].split(":")[1]) != 1.0:
            raise unsupported(model, f"has {sigmoid[0]} (only sigmoid:1)")
    elif name == "multiclass":
        link, K = "softmax", int(dump["num_class"])
    else:
        raise unsupported(model, f"has objective {name!r} (only binary, multiclass)")
    if dump.get("average_output"):
        raise unsupported(model, "averages its trees (boosting_type='rf')")
    per_iter = int(dump.get("num_tree_per_iteration", K))
    trees = [_lgb_tree(model, info["tree_structure"], i % per_iter)
             for i, info in enumerate(dump["tree_info"])]
    return TreeEnsemble.assemble(
        trees, library="lightgbm", model_type=type(model).__name__, kind="margin", link=link,
        classes=np.asarray(model.classes_), n_features=int(model.n_features_in_),
        input_dtype=np.float64,
        split_rule="x <= threshold (float64; |x| <= 1e-35f read as 0)",
        base_score=np.zeros(K), zero_below=_LGBM_ZERO,
    )


_LGBM_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float constant)


def _lgb_tree(model: Any, root: dict, column: int) -> RawTree:
    """Flatten LightGBM's nested dump (depth-first ids, root = 0)."""
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    value: list[float] = []
    stack: list[tuple[dict, int, bool]] = [(root, -1, False)]
    while stack:
        node, parent, is_right = stack.pop()
        i = len(feature)
        if parent >= 0:
            (right if is_right else left)[parent] = i
        if "split_feature" not in node:
            if "leaf_coeff" in node:
                raise unsupported(model, "has linear trees (linear_tree=True)")
            feature.append(-1)
            threshold.append(np.nan)
            value.append(float(node["leaf_value"]))
            left.append(-1)
            right.append(-1)
            continue
        if node.get("decision_type", "<=") != "<=":
            raise unsupported(model, "has categorical splits")
        if node.get("missing_type") == "Zero":
            raise unsupported(model, "treats zero as missing (zero_as_missing)")
        feature.append(int(node["split_feature"]))
        threshold.append(float(node["threshold"]))
        value.append(0.0)
        left.append(-1)
        right.append(-1)
        stack.append((node["right_child"], i, True))
        stack.append((node["left_child"], i, False))
    return RawTree(np.asarray(feature, dtype=np.intp), np.asarray(threshold),
                   np.asarray(left, dtype=np.intp), np.asarray(right, dtype=np.intp),
                   np.asarray(value)[:, None], column=column)
