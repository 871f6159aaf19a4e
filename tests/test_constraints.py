"""Class-bound miners: hand-built trees, schema semantics, and ``dpg`` vs the real dpg package."""

from __future__ import annotations

import contextlib
import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from cfgen.constraints import ClassBounds, finalize, mine_class_bounds, parse_bound_strings
from cfgen.data import data_dir
from cfgen.errors import ConfigError
from cfgen.schema import Feature, FeatureSchema, Kind
from cfgen.trees import TreeEnsemble, UnsupportedModel


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """OpenMP libraries (HistGB) on one thread: the tests share a busy machine."""
    with threadpool_limits(1):
        yield

INF = np.inf


def schema_of(X: np.ndarray, names, kinds=None, categories=None) -> FeatureSchema:
    kinds = kinds or [Kind.CONTINUOUS] * X.shape[1]
    categories = categories or {}
    return FeatureSchema(tuple(
        Feature(str(n), k, float(X[:, j].min()), float(X[:, j].max()),
                categories=tuple(categories.get(str(n), ())))
        for j, (n, k) in enumerate(zip(names, kinds, strict=True))
    ))


# --------------------------------------------------------------------------- hand-built trees


def test_single_tree_by_hand():
    # x0 in {0,1,2,3}, x1 in {0,1}; class 0 if x0 <= 1, else class 1 if x1 == 0, else class 2.
    # Root split: x0 <= 1.5 (gini gain 0.375 beats x1's 0.125), then x1 <= 0.5 on the right:
    #   [x0 <= 1.5] -> Class 0
    #   [x0 > 1.5, x1 <= 0.5] -> Class 1
    #   [x0 > 1.5, x1 > 0.5] -> Class 2
    # One tree: dpg ancestors == path predicates, so both modes give
    #   class 0: x0 <= 1.5, x1 open; class 1: x0 > 1.5, x1 <= 0.5; class 2: x0 > 1.5, x1 > 0.5
    X = np.array([[a, b] for a in range(4) for b in range(2)], dtype=float)
    y = np.where(X[:, 0] <= 1, 0, np.where(X[:, 1] == 0, 1, 2))
    tree = DecisionTreeClassifier(random_state=0).fit(X, y)
    np.testing.assert_array_equal(tree.tree_.feature[:2], [0, -2])
    np.testing.assert_allclose(tree.tree_.threshold[0], 1.5)
    schema = schema_of(X, ["x0", "x1"])
    want_low = [[-INF, -INF], [1.5, -INF], [1.5, 0.5]]
    want_high = [[1.5, INF], [INF, 0.5], [INF, INF]]
    for mode in ("dpg", "paths"):
        b = mine_class_bounds(tree, schema, mode, X_train=X)
        np.testing.assert_array_equal(b.low, want_low, err_msg=mode)
        np.testing.assert_array_equal(b.high, want_high, err_msg=mode)
        assert not b.empty.any()
        # every training row lies inside its own class's box
        for c in range(3):
            assert b.contains(X[y == c], c).all()
    # mass=1: each class's rows span [0,1] x [0,1] (class 0), [2,3] x {0}, [2,3] x {1}; widened
    # to the cuts x0: {1.5}, x1: {0.5} this is again the dpg box
    b = mine_class_bounds(tree, schema, "mass", X_train=X, mass=1.0)
    np.testing.assert_array_equal(b.low, want_low)
    np.testing.assert_array_equal(b.high, want_high)
    # without training rows ``paths`` reads the tree's structure: same answer here
    b = mine_class_bounds(tree, schema, "paths")
    np.testing.assert_array_equal(b.low, want_low)
    np.testing.assert_array_equal(b.high, want_high)


def _two_tree_forest():
    # Tree A (depth 2):        Tree B (a stump):
    #   x0 <= 2.5 -> Class 0                       x1 <= 0.5 -> Class 2
    #   x0 > 2.5, x1 <= 0.5 -> Class 1             x1 > 0.5  -> Class 0
    #   x0 > 2.5, x1 > 0.5  -> Class 0
    # Both trees see all three classes (so their leaves vote over 0..2, as in a real forest);
    # the extra class weighs 1e-6 and min_impurity_decrease stops it from causing splits.
    Xa = np.array([[2, 0], [2, 0], [2, 1], [3, 0], [3, 1], [3, 0]], dtype=float)
    ya = np.array([0, 0, 0, 1, 0, 2])
    wa = np.array([1, 1, 1, 1, 1, 1e-6])
    Xb = np.array([[2, 0], [3, 0], [2, 1], [3, 1], [3, 0]], dtype=float)
    yb = np.array([2, 2, 0, 0, 1])
    wb = np.array([1, 1, 1, 1, 1e-6])
    kw = dict(random_state=0, min_impurity_decrease=1e-3)
    A = DecisionTreeClassifier(max_depth=2, **kw).fit(Xa, ya, sample_weight=wa)
    B = DecisionTreeClassifier(max_depth=1, **kw).fit(Xb, yb, sample_weight=wb)
    assert A.tree_.node_count == 5 and B.tree_.node_count == 3
    assert A.tree_.feature[0] == 0 and A.tree_.threshold[0] == 2.5
    assert B.tree_.feature[0] == 1 and B.tree_.threshold[0] == 0.5
    rf = RandomForestClassifier(n_estimators=2)
    rf.estimators_ = [A, B]
    rf.classes_ = np.arange(3)
    rf.n_classes_ = 3
    rf.n_outputs_ = 1
    rf.n_features_in_ = 2
    X = np.array([[2, 0], [2, 1], [3, 0], [3, 1]], dtype=float)  # reaches every leaf
    return rf, X


def test_two_trees_dpg_reachability_vs_paths():
    # DPG edges: A: x0<=2.5 -> C0; x0>2.5 -> x1<=0.5 -> C1; x0>2.5 -> x1>0.5 -> C0
    #            B: x1<=0.5 -> C2; x1>0.5 -> C0
    # dpg ancestors:
    #   C0: {x0<=2.5, x0>2.5, x1>0.5} -> x0: low 2.5 = high 2.5 (empty, opened); x1 > 0.5
    #   C1: {x0>2.5, x1<=0.5}         -> x0 > 2.5, x1 <= 0.5
    #   C2: {x1<=0.5} and, through it, {x0>2.5} (from tree A) -> x0 > 2.5, x1 <= 0.5
    # paths (each trace's own predicates):
    #   C0 and C1 as dpg; C2: only B's path [x1<=0.5] -> x0 open, x1 <= 0.5
    rf, X = _two_tree_forest()
    schema = schema_of(X, ["x0", "x1"])
    dpg = mine_class_bounds(rf, schema, "dpg", X_train=X)
    np.testing.assert_array_equal(dpg.raw_low, [[2.5, 0.5], [2.5, -INF], [2.5, -INF]])
    np.testing.assert_array_equal(dpg.raw_high, [[2.5, INF], [INF, 0.5], [INF, 0.5]])
    assert dpg.empty.tolist() == [[True, False], [False, False], [False, False]]
    np.testing.assert_array_equal(dpg.low, [[-INF, 0.5], [2.5, -INF], [2.5, -INF]])
    np.testing.assert_array_equal(dpg.high, [[INF, INF], [INF, 0.5], [INF, 0.5]])

    paths = mine_class_bounds(rf, schema, "paths", X_train=X)
    np.testing.assert_array_equal(paths.raw_low, [[2.5, 0.5], [2.5, -INF], [-INF, -INF]])
    np.testing.assert_array_equal(paths.raw_high, [[2.5, INF], [INF, 0.5], [INF, 0.5]])



def test_mass_ignores_a_rare_region():
    # x = 0..99, class 1 iff x <= 1 or x >= 50. The tree:
    #   [x <= 49.5, x <= 1.5] -> Class 1;  [x <= 49.5, x > 1.5] -> Class 0;  [x > 49.5] -> Class 1
    # dpg/paths, class 1: '>' thresholds {49.5}, '<=' thresholds {49.5, 1.5}
    #   -> low 49.5, high 49.5: empty as mined (the class lives in both tails), opened
    # class 0: (1.5, 49.5] in every mode
    # mass 0.9, class 1: its 52 rows {0, 1, 50..99}; 5% of 52 = 2.6 rows cut from each tail
    #   -> [52, 97]; widened to the tree's cuts {1.5, 49.5}: low 49.5, high open (no cut >= 97)
    x = np.arange(100.0)[:, None]
    y = ((x[:, 0] >= 50) | (x[:, 0] <= 1)).astype(int)
    tree = DecisionTreeClassifier(random_state=0).fit(x, y)
    schema = FeatureSchema((Feature("x", Kind.CONTINUOUS, 0, 99),))
    for mode in ("dpg", "paths"):
        b = mine_class_bounds(tree, schema, mode, X_train=x)
        np.testing.assert_array_equal(b.raw_low[:, 0], [1.5, 49.5])
        np.testing.assert_array_equal(b.raw_high[:, 0], [49.5, 49.5])
        assert b.empty[:, 0].tolist() == [False, True]
        assert (b.low[1, 0], b.high[1, 0]) == (-INF, INF)
    m = mine_class_bounds(tree, schema, "mass", X_train=x, mass=0.9)
    np.testing.assert_array_equal(m.low[:, 0], [1.5, 49.5])
    np.testing.assert_array_equal(m.high[:, 0], [49.5, INF])
    assert not m.empty.any()


def test_paths_subset_of_dpg_and_mass_keeps_its_share():
    X, y = load_iris(return_X_y=True)
    rf = RandomForestClassifier(n_estimators=25, max_depth=5, random_state=0).fit(X, y)
    schema = schema_of(X, load_iris().feature_names)
    dpg = mine_class_bounds(rf, schema, "dpg", X_train=X)
    paths = mine_class_bounds(rf, schema, "paths", X_train=X)
    # paths' predicates are a subset of dpg's: where paths bounds a side, dpg bounds it too and
    # no tighter; paths may leave open a side that dpg closes through reachability
    lo, hi = np.isfinite(paths.raw_low), np.isfinite(paths.raw_high)
    assert np.all(np.isfinite(dpg.raw_low[lo])) and np.all(paths.raw_low[lo] >= dpg.raw_low[lo])
    assert np.all(np.isfinite(dpg.raw_high[hi])) and np.all(paths.raw_high[hi] <= dpg.raw_high[hi])
    assert (~lo & np.isfinite(dpg.raw_low)).any()  # happens on this forest
    mass = mine_class_bounds(rf, schema, "mass", X_train=X, mass=0.9)
    pred = rf.predict(X)
    for c in range(3):
        inside = mass.contains(X[pred == c], c)
        assert inside.mean(axis=0).min() >= 0.85  # per feature (mass is tree-vote weighted)
    wide = mine_class_bounds(rf, schema, "mass", X_train=X, mass=1.0)
    assert np.all(wide.low <= mass.low) and np.all(wide.high >= mass.high)


# --------------------------------------------------------------------------- schema semantics


def test_integer_snapping_and_empty_integer_interval():
    schema = FeatureSchema((
        Feature("n", Kind.INTEGER, 0, 10),
        Feature("m", Kind.INTEGER, 0, 10),
        Feature("z", Kind.CONTINUOUS, 0, 10),
    ))
    low = np.array([[2.5, 2.2, 2.2]])
    high = np.array([[7.5, 2.8, 2.8]])
    b = finalize(low, high, schema, mode="dpg", seconds=0.0)
    # n: x > 2.5 and x <= 7.5 for integer x is 3..7, i.e. 2 < x <= 7
    assert (b.low[0, 0], b.high[0, 0]) == (2.0, 7.0)
    # m: (2.2, 2.8] holds no integer -> empty, opened and flagged; z keeps its interval
    assert (b.low[0, 1], b.high[0, 1]) == (-INF, INF) and b.empty[0, 1]
    assert (b.low[0, 2], b.high[0, 2]) == (2.2, 2.8) and not b.empty[0, 2]
    rows = np.array([[2, 5, 2.5], [3, 5, 2.5], [7, 5, 2.5], [8, 5, 2.5]])
    assert b.contains(rows, 0)[:, 0].tolist() == [False, True, True, False]


def test_integer_feature_from_a_fitted_tree():
    # k in 0..9, class 1 iff k >= 5: split at 4.5 -> class 0: k <= 4, class 1: k > 4 (k >= 5)
    X = np.arange(10, dtype=float)[:, None]
    y = (X[:, 0] >= 5).astype(int)
    tree = DecisionTreeClassifier(random_state=0).fit(X, y)
    schema = FeatureSchema((Feature("k", Kind.INTEGER, 0, 9),))
    b = mine_class_bounds(tree, schema, "dpg", X_train=X)
    np.testing.assert_array_equal(b.raw_low, [[-INF], [4.5]])
    np.testing.assert_array_equal(b.low, [[-INF], [4.0]])
    np.testing.assert_array_equal(b.high, [[4.0], [INF]])


def test_categorical_allowed_sets():
    schema = FeatureSchema((Feature("colour", Kind.CATEGORICAL, 0, 3, categories=tuple("abcd")),))
    low = np.array([[0.5], [-INF], [3.5], [-INF]])
    high = np.array([[2.5], [INF], [INF], [0.5]])
    b = finalize(low, high, schema, mode="paths", seconds=0.0)
    assert b.allowed[0][0].tolist() == [1, 2]
    assert b.allowed[1][0] is None  # every code allowed
    assert b.allowed[2][0] is None and b.empty[2, 0]  # no code in (3, inf): opened, flagged
    assert b.allowed[3][0].tolist() == [0]
    codes = np.arange(4.0)[:, None]
    assert b.contains(codes, 0)[:, 0].tolist() == [False, True, True, False]


def test_categorical_from_forest_and_mass_mode():
    rng = np.random.default_rng(0)
    code = rng.integers(0, 5, size=400).astype(float)
    other = rng.normal(size=400)
    y = np.isin(code, [1, 2]).astype(int)  # class 1 iff code in {1, 2}
    X = np.c_[code, other]
    schema = FeatureSchema((
        Feature("code", Kind.CATEGORICAL, 0, 4, categories=tuple("vwxyz")),
        Feature("other", Kind.CONTINUOUS, float(other.min()), float(other.max())),
    ))
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    for mode in ("dpg", "paths", "mass"):
        b = mine_class_bounds(tree, schema, mode, X_train=X)
        assert b.allowed[1][0].tolist() == [1, 2], mode
        assert b.allowed[1][1] is None


# --------------------------------------------------------------------------- API


def _unsupported_line(model) -> str:
    with pytest.raises(UnsupportedModel) as info:
        TreeEnsemble.from_model(model)
    return str(info.value)


def test_non_tree_estimator_is_a_config_error():
    X, y = load_iris(return_X_y=True)
    lr = LogisticRegression(max_iter=500).fit(X, y)
    schema = schema_of(X, load_iris().feature_names)
    expected = _unsupported_line(lr)
    for mode in ("dpg", "paths", "mass"):
        with pytest.raises(UnsupportedModel) as info:
            mine_class_bounds(lr, schema, mode, X_train=X)
        assert str(info.value) == expected  # the compiler's and the split grid's line
    assert mine_class_bounds(lr, schema, "none") is None
    rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    with pytest.raises(ConfigError, match=r"constraints\.mode='dpg' needs the training rows"):
        mine_class_bounds(rf, schema, "dpg")
    with pytest.raises(ConfigError, match=r"constraints\.mode='box'"):
        mine_class_bounds(rf, schema, "box", X_train=X)
    with pytest.raises(ConfigError, match=r"constraints\.mass"):
        mine_class_bounds(rf, schema, "mass", X_train=X, mass=0.0)
    with pytest.raises(ConfigError, match=r"constraints\.decimal_threshold"):
        mine_class_bounds(rf, schema, "dpg", X_train=X, decimal_threshold=-1)
    with pytest.raises(ConfigError, match=r"constraints\.perc_var"):
        mine_class_bounds(rf, schema, "dpg", X_train=X, perc_var=0.9)


def test_to_dict_from_dict_roundtrip():
    rf, X = _two_tree_forest()
    schema = FeatureSchema((
        Feature("x0", Kind.INTEGER, 2, 3),
        Feature("x1", Kind.CATEGORICAL, 0, 1, categories=("no", "yes")),
    ))
    b = mine_class_bounds(rf, schema, "dpg", X_train=X)
    d = json.loads(json.dumps(b.to_dict(["a", "b", "c"])))
    assert d["mode"] == "dpg" and d["class_names"] == ["a", "b", "c"]
    assert d["params"] == {"decimal_threshold": 3, "perc_var": 1e-7}
    assert d["classes"]["a"]["x0"] == {
        "low": None, "high": None, "empty": True, "mined_low": 2.5, "mined_high": 2.5}
    assert d["classes"]["a"]["x1"]["allowed"] == [1]
    back = ClassBounds.from_dict(d)
    assert back.feature_names == b.feature_names and back.mode == b.mode
    for name in ("low", "high", "raw_low", "raw_high", "empty"):
        np.testing.assert_array_equal(getattr(back, name), getattr(b, name), err_msg=name)
    assert [[None if a is None else a.tolist() for a in row] for row in back.allowed] == \
        [[None if a is None else a.tolist() for a in row] for row in b.allowed]


# --------------------------------------------------------------------------- vs the dpg package


def _package_bounds(model, names, X_train, decimal_threshold=3, perc_var=1e-7):
    """The paper's Class Bounds from dpg 0.3.4 (see docs/constraints.md for why this call).

    ``DecisionPredicateGraph`` with the aggregated-transitions graph and context order 1 (the
    0.3.4 defaults), then ``GraphMetrics.extract_graph_metrics``: per class node, the predicates
    among its ancestors, min of ``>`` / max of ``<=``.
    """
    pytest.importorskip("dpg")
    import joblib
    from dpg import DecisionPredicateGraph
    from metrics.graph import GraphMetrics

    cfg = {"dpg": {
        "default": {"perc_var": perc_var, "decimal_threshold": decimal_threshold, "n_jobs": 1},
        "graph_construction": {"mode": "aggregated_transitions", "context_order": 1},
    }}
    # sequential joblib: the package's bounds step hard-codes a process pool (n_jobs=-1)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings(), joblib.parallel_config(backend="sequential"):
        warnings.simplefilter("ignore")
        builder = DecisionPredicateGraph(model, list(names), dpg_config=cfg)
        graph, nodes = builder.to_networkx(builder.fit(np.asarray(X_train)))
        bounds = GraphMetrics.extract_graph_metrics(graph, nodes, target_names=[])["Class Bounds"]
    return bounds


def _assert_same_as_package(model, names, X_train, **kw):
    pkg = _package_bounds(model, names, X_train, **kw)
    low, high = parse_bound_strings(pkg, names, model.classes_)
    schema = schema_of(X_train, names)
    ours = mine_class_bounds(model, schema, "dpg", X_train=X_train, **kw)
    np.testing.assert_array_equal(ours.raw_low, low)
    np.testing.assert_array_equal(ours.raw_high, high)
    # and literally the same strings (same rounding, same number formatting)
    for c, label in enumerate(model.classes_):
        assert sorted(ours.describe(c, raw=True)) == sorted(pkg.get(f"Class {label}", []))


def _iris_paper():
    data = load_iris()
    X_tr, _, y_tr, _ = train_test_split(
        data.data, data.target, test_size=0.2, stratify=data.target, random_state=42)
    rf = RandomForestClassifier(n_estimators=7, max_depth=4, max_features=0.5,
                                min_impurity_decrease=0.1, random_state=42).fit(X_tr, y_tr)
    return rf, data.feature_names, X_tr


def test_dpg_matches_package_iris_paper_forest():
    rf, names, X_tr = _iris_paper()
    _assert_same_as_package(rf, names, X_tr)
    # the worked example: class 1 of the paper's iris forest
    b = mine_class_bounds(rf, schema_of(X_tr, names), "dpg", X_train=X_tr)
    assert "0.7 < petal width (cm) <= 1.7" in b.describe(1)


def test_bound_strings_round_trip():
    rf, names, X_tr = _iris_paper()
    b = mine_class_bounds(rf, schema_of(X_tr, names), "dpg", X_train=X_tr)
    strings = {f"Class {c}": b.describe(c, raw=True) for c in range(b.n_classes)}
    low, high = parse_bound_strings(strings, names, range(b.n_classes))
    assert np.array_equal(low, b.raw_low) and np.array_equal(high, b.raw_high)
    with pytest.raises(ValueError, match="not a class-bound string"):
        parse_bound_strings({"Class 0": ["petal width (cm) == 1"]}, names, range(3))


@pytest.mark.parametrize("decimal_threshold,perc_var", [(3, 0.01), (1, 0.05), (6, 1e-9)])
def test_dpg_matches_package_rounding_and_variant_filter(decimal_threshold, perc_var):
    # perc_var large enough to drop rare trace variants; coarse rounding merges predicates
    X, y = load_iris(return_X_y=True)
    rf = RandomForestClassifier(n_estimators=15, max_depth=4, random_state=1).fit(X, y)
    _assert_same_as_package(rf, load_iris().feature_names, X,
                            decimal_threshold=decimal_threshold, perc_var=perc_var)


# file, target, paper RF settings (bench/../shared/datasets/README.md), random_state=42
CSV = {
    "diabetes": ("Outcome", dict(n_estimators=12, max_depth=5, max_features=None,
                                 min_impurity_decrease=0.01)),
    "ecoli": ("target", dict(n_estimators=7, max_depth=4, max_features=0.5,
                             min_samples_split=12, criterion="gini")),
    "education_dataset": ("PassFail", dict(n_estimators=15, max_depth=3, max_features=0.3,
                                           min_impurity_decrease=0.01, min_samples_split=4,
                                           criterion="entropy")),
    "us_crime": ("target", dict(n_estimators=10, max_depth=8, max_features=0.3,
                                min_samples_split=15, criterion="entropy")),
    "satimage": ("target", dict(n_estimators=20, max_depth=10, max_features=0.3)),
}


def _csv_forest(name: str):
    target, params = CSV[name]
    path = data_dir() / f"{name}.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found (set CFGEN_DATA_DIR)")
    frame = pd.read_csv(path)
    y = np.unique(frame.pop(target).to_numpy(), return_inverse=True)[1]
    X = frame.to_numpy(dtype=float)
    X_tr, _, y_tr, _ = train_test_split(X, y, test_size=0.2, stratify=y, random_state=42)
    rf = RandomForestClassifier(random_state=42, **params).fit(X_tr, y_tr)
    return rf, list(frame.columns), X_tr


@pytest.mark.parametrize("name", [
    "diabetes",
    "ecoli",
    "education_dataset",
    pytest.param("us_crime", marks=pytest.mark.slow),
    pytest.param("satimage", marks=pytest.mark.slow),  # the package takes ~25 s here
])
def test_dpg_matches_package_csv(name):
    rf, names, X_tr = _csv_forest(name)
    _assert_same_as_package(rf, names, X_tr)


def test_dpg_matches_package_extra_trees():
    from sklearn.ensemble import ExtraTreesClassifier

    X, y = load_iris(return_X_y=True)
    et = ExtraTreesClassifier(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
    _assert_same_as_package(et, load_iris().feature_names, X)


def test_plots_write_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    from cfgen.plots.bounds import plot_bounds_modes, plot_class_bounds

    rng = np.random.default_rng(0)
    X = np.c_[rng.integers(0, 3, 200), rng.integers(0, 9, 200), rng.normal(size=200)].astype(float)
    y = ((X[:, 0] == 1) | (X[:, 2] > 1)).astype(int)
    schema = FeatureSchema((
        Feature("kind", Kind.CATEGORICAL, 0, 2, categories=("p", "q", "r")),
        Feature("count", Kind.INTEGER, 0, 8),
        Feature("z", Kind.CONTINUOUS, float(X[:, 2].min()), float(X[:, 2].max())),
    ))
    rf = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)
    modes = {m: mine_class_bounds(rf, schema, m, X_train=X) for m in ("dpg", "paths", "mass")}
    out = plot_class_bounds(modes["dpg"], schema, X, y, query=X[0], counterfactuals=X[y == 1][:3],
                            path=tmp_path / "bounds.png", class_names=["no", "yes"])
    assert out.stat().st_size > 10_000
    out = plot_bounds_modes(modes, X, y, ("count", "z"), tmp_path / "modes.png")
    assert out.stat().st_size > 10_000


# --------------------------------------------------------------------------- boosted ensembles


def _boosted(kind: str, n_classes: int):
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier

    X, y = make_classification(500, 5, n_informative=4, n_redundant=0, n_classes=n_classes,
                               n_clusters_per_class=1, random_state=n_classes)
    make = {
        "gb": lambda: GradientBoostingClassifier(n_estimators=10, random_state=0),
        "hgb": lambda: HistGradientBoostingClassifier(max_iter=10, random_state=0),
        "xgb": lambda: xgb.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1),
        "lgbm": lambda: lgb.LGBMClassifier(n_estimators=10, num_leaves=8, n_jobs=1, verbose=-1),
    }[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make().fit(X, y)
    return model, X, schema_of(X, [f"f{j}" for j in range(X.shape[1])])


def test_boosted_stump_by_hand():
    # one boosting stage, one split: x <= t -> negative margin (votes class 0), x > t -> positive
    # margin (votes class 1); so paths gives class 0: x <= t, class 1: x > t, like a tree
    from sklearn.ensemble import GradientBoostingClassifier

    x = np.arange(10.0)[:, None]
    y = (x[:, 0] >= 5).astype(int)
    gb = GradientBoostingClassifier(n_estimators=1, max_depth=1, random_state=0).fit(x, y)
    ens = TreeEnsemble.from_model(gb)
    assert ens.n_trees == 1 and float(ens.raw_threshold[0]) == 4.5
    votes = ens.leaf_class_votes()
    assert votes[ens.left[0]].tolist() == [True, False]
    assert votes[ens.right[0]].tolist() == [False, True]
    schema = FeatureSchema((Feature("x", Kind.CONTINUOUS, 0, 9),))
    for X_train in (x, None):
        b = mine_class_bounds(gb, schema, "paths", X_train=X_train)
        np.testing.assert_array_equal(b.raw_low, [[-INF], [4.5]])
        np.testing.assert_array_equal(b.raw_high, [[4.5], [INF]])
    m = mine_class_bounds(ens, schema, "mass", X_train=x, mass=1.0)  # a TreeEnsemble works too
    np.testing.assert_array_equal(m.low, [[-INF], [4.5]])
    np.testing.assert_array_equal(m.high, [[4.5], [INF]])


@pytest.mark.parametrize("kind", ["gb", "hgb", "xgb", "lgbm"])
def test_dpg_refuses_boosted_ensembles(kind):
    model, X, schema = _boosted(kind, 2)
    with pytest.raises(ConfigError) as info:
        mine_class_bounds(model, schema, "dpg", X_train=X)
    msg = str(info.value)
    assert "\n" not in msg and type(model).__name__ in msg
    assert msg.endswith("use constraints.mode=paths, mass or none")
    with pytest.raises(ConfigError, match=r"^method\.bounds\.mode='dpg' needs a voting forest"):
        mine_class_bounds(model, schema, "dpg", X_train=X, key="method.bounds")
    from cfgen.constraints import tree_estimators  # the up-front check callers use

    with pytest.raises(ConfigError) as early:
        tree_estimators(model, "dpg")
    assert str(early.value) == msg
    assert tree_estimators(model, "paths").kind == "margin"


@pytest.mark.parametrize("kind,n_classes", [
    ("gb", 2), ("gb", 3), ("hgb", 2), ("hgb", 3), ("xgb", 2), ("xgb", 3), ("lgbm", 2), ("lgbm", 3),
])
def test_boosted_paths_contain_every_voting_trace(kind, n_classes):
    # documented property (docs/constraints.md): for every training trace (row, tree) that ends
    # in a leaf voting for c, the row lies inside c's mined interval on every side its path
    # bounds (unrounded thresholds: the traces are the model's own)
    model, X, schema = _boosted(kind, n_classes)
    ens = TreeEnsemble.from_model(model)
    b = mine_class_bounds(model, schema, "paths", X_train=X, decimal_threshold=None)
    boxes = ens.leaf_boxes()
    votes = ens.leaf_class_votes()
    V = ens.cast(X)
    pos = np.searchsorted(boxes.node, ens.apply(X))  # (n, T) rows of the leaf table
    checked = 0
    for c in range(ens.n_classes):
        rows, trees = np.nonzero(votes[boxes.node[pos], c])
        lo, hi = boxes.low[pos[rows, trees]], boxes.high[pos[rows, trees]]
        v = V[rows]
        assert np.all((v > b.raw_low[c]) | ~np.isfinite(lo)), (kind, c)
        assert np.all((v <= b.raw_high[c]) | ~np.isfinite(hi)), (kind, c)
        checked += rows.size
    assert checked > 0


@pytest.mark.parametrize("kind,n_classes", [("gb", 3), ("xgb", 2), ("lgbm", 3), ("hgb", 2)])
def test_boosted_mass_keeps_its_share_of_the_predicted_rows(kind, n_classes):
    model, X, schema = _boosted(kind, n_classes)
    mass = mine_class_bounds(model, schema, "mass", X_train=X, mass=0.9)
    pred = model.predict(X)
    for c in range(n_classes):
        if (pred == c).any():
            inside = mass.contains(X[pred == c], c)
            assert inside.mean(axis=0).min() >= 0.9, (kind, c)
    wide = mine_class_bounds(model, schema, "mass", X_train=X, mass=1.0)
    for c in range(n_classes):
        assert wide.contains(X[pred == c], c).all()
