"""TreeEnsemble: one view of every supported fitted tree ensemble, checked against the libraries."""

from __future__ import annotations

import warnings

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from sklearn.datasets import make_classification
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier
from threadpoolctl import threadpool_limits

from cfgen.errors import ConfigError
from cfgen.trees import SUPPORTED_MODELS, TreeEnsemble, UnsupportedModel


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """OpenMP libraries (HistGB) on one thread: the tests share a busy machine."""
    with threadpool_limits(1):
        yield

MAKERS = {
    "rf": lambda: RandomForestClassifier(n_estimators=12, max_depth=6, random_state=0),
    "et": lambda: ExtraTreesClassifier(n_estimators=12, max_depth=6, random_state=0),
    "dt": lambda: DecisionTreeClassifier(max_depth=7, random_state=0),
    "xt": lambda: ExtraTreeClassifier(max_depth=7, random_state=0),
    "gb": lambda: GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=0),
    "gb_exp": lambda: GradientBoostingClassifier(
        n_estimators=15, loss="exponential", random_state=0),
    "hgb": lambda: HistGradientBoostingClassifier(max_iter=15, random_state=0),
    "xgb": lambda: xgb.XGBClassifier(n_estimators=15, max_depth=4, n_jobs=1, random_state=0),
    "lgbm": lambda: lgb.LGBMClassifier(n_estimators=15, num_leaves=15, verbose=-1, n_jobs=1,
                                       random_state=0),
}


def _data(n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    return make_classification(600, 7, n_informative=5, n_classes=n_classes,
                               n_clusters_per_class=1, random_state=n_classes)


CASES = [(name, k) for name in MAKERS for k in (2, 3) if not (name == "gb_exp" and k == 3)]


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}-{k}" for n, k in CASES])
def fitted(request):
    name, k = request.param
    X, y = _data(k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MAKERS[name]().fit(X, y)
    return model, X, TreeEnsemble.from_model(model)


def _library_scores(model, X: np.ndarray, ens: TreeEnsemble) -> np.ndarray:
    if ens.kind == "vote":
        return model.predict_proba(X) * ens.n_trees
    if isinstance(model, xgb.XGBClassifier):
        raw = model.predict(X, output_margin=True)
    elif isinstance(model, lgb.LGBMClassifier):
        raw = model.predict(X, raw_score=True)
    else:
        raw = model.decision_function(X)
    return np.asarray(raw, dtype=np.float64).reshape(len(X), ens.n_columns)


def test_scores_match_the_library(fitted):
    model, X, ens = fitted
    tol = 1e-5 if ens.library == "xgboost" else 1e-12  # float32 sums there; float64 here
    np.testing.assert_allclose(ens.scores(X), _library_scores(model, X, ens), rtol=0, atol=tol)


def test_shape_and_metadata(fitted):
    model, _, ens = fitted
    assert ens.model_type == type(model).__name__
    assert np.array_equal(ens.classes_, model.classes_)
    margin = ens.kind == "margin"
    assert ens.n_columns == (1 if margin and ens.n_classes == 2 else ens.n_classes)
    leaf = ens.is_leaf
    assert np.all(ens.left[leaf] == -1) and np.all(ens.right[leaf] == -1)
    assert np.all(ens.left[~leaf] >= 0) and np.all(np.isfinite(ens.threshold[~leaf]))
    assert np.all(ens.value[~leaf] == 0)
    assert np.array_equal(ens.parent[ens.roots], np.full(ens.n_trees, -1))
    assert ens.max_depth == int(ens.depth.max())
    if margin:
        assert np.all((ens.tree_column >= 0) & (ens.tree_column < ens.n_columns))
        # a margin tree's leaves write only into its own column
        col = ens.tree_column[ens.tree_of]
        other = np.ones_like(ens.value, dtype=bool)
        other[np.arange(ens.n_nodes), col] = False
        assert np.all(ens.value[other] == 0)
    else:
        assert np.all(ens.tree_column == -1)
        np.testing.assert_allclose(ens.value[leaf].sum(axis=1), 1.0)


def test_leaf_boxes_hold_exactly_the_rows_reaching_the_leaf(fitted):
    _, X, ens = fitted
    rng = np.random.default_rng(0)
    Q = np.vstack([X[:150], X[:150] + rng.normal(0, 0.5, size=(150, X.shape[1]))])
    boxes = ens.leaf_boxes()
    assert np.all(np.diff(boxes.tree) >= 0)
    V = ens.cast(Q)
    inside = np.all((V[:, None, :] > boxes.low[None]) & (V[:, None, :] <= boxes.high[None]), axis=2)
    # every row is in exactly one leaf box per tree, and it is the leaf it reaches
    reached = ens.apply(Q)
    expected = np.zeros_like(inside)
    pos = np.searchsorted(boxes.node, reached)
    expected[np.arange(len(Q))[:, None], pos] = True
    assert np.array_equal(inside, expected)
    np.testing.assert_array_equal(boxes.value, ens.value[boxes.node])


def test_scores_from_leaf_boxes_reproduce_the_library(fitted):
    # the exact-method recipe of the module docstring: one leaf per tree, base + sum of values,
    # the library's decision rule
    model, X, ens = fitted
    boxes = ens.leaf_boxes()
    z = boxes.holding(ens.cast(X[:100]))
    sl = boxes.tree_slices
    assert sl.shape == (ens.n_trees + 1,) and sl[-1] == len(boxes.node)
    per_tree = np.add.reduceat(z.astype(int), sl[:-1], axis=1)
    assert np.all(per_tree == 1)
    score = ens.base_score + z @ boxes.value
    tol = 1e-5 if ens.library == "xgboost" else 1e-9
    np.testing.assert_allclose(score, _library_scores(model, X[:100], ens), rtol=0, atol=tol)
    if ens.kind == "margin" and ens.n_columns == 1:
        label = (score[:, 0] > 0).astype(int)
    else:
        label = np.argmax(score, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.array_equal(ens.classes_[label], model.predict(X[:100]))


def test_feature_thresholds_sorted_distinct(fitted):
    _, _, ens = fitted
    grid = ens.feature_thresholds()
    assert len(grid) == ens.n_features
    split = ~ens.is_leaf & np.isfinite(ens.threshold)
    for j, t in enumerate(grid):
        assert np.all(np.diff(t) > 0)
        assert set(t.tolist()) == set(ens.threshold[split & (ens.feature == j)].tolist())


def test_xgboost_threshold_is_largest_float32_below_split():
    X, y = _data(2)
    model = MAKERS["xgb"]().fit(X, y)
    ens = TreeEnsemble.from_model(model)
    split = ~ens.is_leaf
    raw32 = ens.raw_threshold[split].astype(np.float32)
    assert np.array_equal(raw32.astype(np.float64), ens.raw_threshold[split])
    below = ens.threshold[split].astype(np.float32)
    assert np.all(below < raw32)
    assert np.array_equal(np.nextafter(below, np.float32(np.inf)), raw32)


# --------------------------------------------------------------------------- refusals


def _fitted_unsupported():
    X, y = _data(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield LogisticRegression(max_iter=300).fit(X, y)
        yield RandomForestRegressor(n_estimators=2, random_state=0).fit(X, y)
        yield GradientBoostingRegressor(n_estimators=2, random_state=0).fit(X, y)
        yield make_pipeline(RandomForestClassifier(n_estimators=2, random_state=0)).fit(X, y)
        yield RandomForestClassifier(n_estimators=2)  # not fitted
        yield xgb.XGBClassifier(n_estimators=2)  # not fitted
        yield lgb.LGBMClassifier(n_estimators=2)  # not fitted
        yield RandomForestClassifier(n_estimators=2, random_state=0).fit(X, np.c_[y, y])
        yield xgb.XGBClassifier(n_estimators=2, booster="dart").fit(X, y)
        yield xgb.XGBClassifier(n_estimators=2, booster="gblinear").fit(X, y)
        yield xgb.XGBClassifier(n_estimators=2, missing=0.0).fit(X, y)
        cat = np.c_[X[:, :3], (X[:, 3] > 0).astype(int) + (X[:, 4] > 0)]
        yield lgb.LGBMClassifier(n_estimators=3, verbose=-1, min_data_per_group=5,
                                 cat_smooth=1).fit(cat, y, categorical_feature=[3])
        yield HistGradientBoostingClassifier(max_iter=3, categorical_features=[3]).fit(cat, y)
        yield lgb.LGBMClassifier(n_estimators=3, verbose=-1, linear_tree=True).fit(X, y)
        yield lgb.LGBMClassifier(n_estimators=3, verbose=-1, zero_as_missing=True).fit(
            np.where(X > 0.5, 0.0, X), y)
        yield object()


def test_unsupported_models_raise_one_line():
    for model in _fitted_unsupported():
        with pytest.raises(UnsupportedModel) as info:
            TreeEnsemble.from_model(model)
        msg = str(info.value)
        assert isinstance(info.value, ConfigError)
        assert "\n" not in msg
        assert msg.startswith(f"model: {type(model).__name__} ")
        assert "supported: fitted single-output " + ", ".join(SUPPORTED_MODELS) in msg


# --------------------------------------------------------------------------- the split grid


@pytest.mark.parametrize("name,k", [(n, k) for n, k in CASES if n in ("rf", "gb", "hgb", "xgb",
                                                                        "lgbm")])
def test_split_edges_keep_the_library_prediction(name, k):
    # moving a feature anywhere between the right edge of one threshold and the left edge of the
    # next (on the data's decimal grid) never changes the library's own prediction
    from cfgen.schema import Feature, FeatureSchema, Kind
    from cfgen.search.thresholds import SplitEdges

    X, y = _data(k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MAKERS[name]().fit(X, y)
    decimals = 3
    schema = FeatureSchema(tuple(
        Feature(f"f{j}", Kind.CONTINUOUS, float(X[:, j].min()), float(X[:, j].max()),
                decimals=decimals) for j in range(X.shape[1])))
    edges = SplitEdges.from_ensemble(model, schema)
    ens = TreeEnsemble.from_model(model)
    grid = ens.feature_thresholds()
    rng = np.random.default_rng(3)
    base = X[rng.integers(0, len(X), size=6)]
    rows, same = [], []
    for j in range(X.shape[1]):
        t, left, right = grid[j], edges.left[j], edges.right[j]
        assert np.all(ens.cast(right) > t) and np.all(ens.cast(left) <= t)
        assert np.allclose(right - left, 10.0 ** -decimals)  # adjacent grid values
        for i in range(len(t) - 1):
            if right[i] <= left[i + 1]:  # a segment holding at least one grid value
                for r in base[:2]:
                    a, b = r.copy(), r.copy()
                    a[j], b[j] = right[i], left[i + 1]
                    rows += [a, b]
                    same.append(len(rows) - 2)
    Q = np.asarray(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        P = np.asarray(model.predict_proba(Q))
    idx = np.asarray(same)
    assert len(idx) > 20
    assert np.array_equal(P[idx], P[idx + 1])


def test_split_edges_refuse_unsupported_models_with_the_shared_line():
    from cfgen.schema import Feature, FeatureSchema, Kind
    from cfgen.search.thresholds import SplitEdges

    X, y = _data(2)
    lr = LogisticRegression(max_iter=300).fit(X, y)
    schema = FeatureSchema(tuple(Feature(f"f{j}", Kind.CONTINUOUS, -5.0, 5.0)
                                 for j in range(X.shape[1])))
    with pytest.raises(UnsupportedModel) as want:
        TreeEnsemble.from_model(lr)
    with pytest.raises(UnsupportedModel) as got:
        SplitEdges.from_ensemble(lr, schema)
    assert str(got.value) == str(want.value)
    assert SplitEdges.from_estimator(lr, schema) is None
