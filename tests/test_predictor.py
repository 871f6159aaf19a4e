"""CompiledEnsemble / BatchedPredictor must reproduce the libraries' predictions.

Forests, sklearn GB / HGB and XGBoost: ``predict_proba`` bit for bit; LightGBM within 1e-9
(numpy's ``exp`` vs the C library's: ulps); ``predict`` equal everywhere, on training rows,
random rows, rows exactly at / between / around the float32 and float64 neighbours of every
threshold.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import warnings

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_iris, make_classification
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier
from threadpoolctl import threadpool_limits

from cfgen.predictor import (
    BatchedPredictor,
    CompiledEnsemble,
    CompiledForest,
    Predictor,
    _float32_floor,
    c_kernel,
    compile_predictor,
    expf,
    is_compilable,
)
from cfgen.trees import TreeEnsemble, UnsupportedModel


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """OpenMP libraries (HistGB) on one thread: the tests share a busy machine."""
    with threadpool_limits(1):
        yield

# ---------------------------------------------------------------------------------------------
# fixtures


def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "iris":
        return load_iris(return_X_y=True)
    if name == "cancer":
        return load_breast_cancer(return_X_y=True)
    if name == "blobs4":
        return make_classification(
            600, 12, n_informative=6, n_classes=4, n_clusters_per_class=1, random_state=3
        )
    if name == "bin20":
        return make_classification(800, 20, random_state=0)
    raise KeyError(name)


MODELS = {
    # the paper's small iris forest (3 classes)
    "rf_iris_paper": (
        "iris",
        lambda: RandomForestClassifier(
            n_estimators=7, max_depth=4, max_features=0.5, random_state=42
        ),
    ),
    # conf/dataset/iris.yaml: the same plus min_impurity_decrease=0.1 (shallow, uneven trees)
    "rf_iris_conf": (
        "iris",
        lambda: RandomForestClassifier(
            n_estimators=7,
            max_depth=4,
            max_features=0.5,
            min_impurity_decrease=0.1,
            random_state=42,
            n_jobs=1,
        ),
    ),
    "et_iris": ("iris", lambda: ExtraTreesClassifier(n_estimators=15, random_state=1)),
    # unlimited depth: trees of many different depths in one forest (binary)
    "rf_cancer": ("cancer", lambda: RandomForestClassifier(n_estimators=25, random_state=0)),
    "et_bin20": (
        "bin20",
        lambda: ExtraTreesClassifier(n_estimators=30, max_depth=8, random_state=0),
    ),
    "rf_blobs4_weighted": (
        "blobs4",
        lambda: RandomForestClassifier(
            n_estimators=40, class_weight="balanced_subsample", random_state=5
        ),
    ),
    "rf_single_tree": ("cancer", lambda: RandomForestClassifier(n_estimators=1, random_state=2)),
    "dt_cancer": ("cancer", lambda: DecisionTreeClassifier(random_state=0)),
    "dt_iris_d3": ("iris", lambda: DecisionTreeClassifier(max_depth=3, random_state=0)),
    "xt_iris": ("iris", lambda: ExtraTreeClassifier(random_state=0)),
    "xt_blobs4": ("blobs4", lambda: ExtraTreeClassifier(max_depth=6, random_state=0)),
    # boosted, binary and multi-class, the project's configs at fewer rounds
    "gb_cancer": ("cancer", lambda: GradientBoostingClassifier(n_estimators=30, random_state=0)),
    "gb_exp_cancer": ("cancer", lambda: GradientBoostingClassifier(
        n_estimators=20, loss="exponential", random_state=0)),
    "gb_iris": ("iris", lambda: GradientBoostingClassifier(n_estimators=20, random_state=0)),
    "gb_zero_init_blobs4": ("blobs4", lambda: GradientBoostingClassifier(
        n_estimators=15, init="zero", max_depth=4, random_state=0)),
    "hgb_cancer": ("cancer", lambda: HistGradientBoostingClassifier(
        max_iter=30, early_stopping=False, random_state=0)),
    "hgb_blobs4": ("blobs4", lambda: HistGradientBoostingClassifier(
        max_iter=20, early_stopping=False, random_state=0)),
    "xgb_cancer": ("cancer", lambda: xgb.XGBClassifier(
        n_estimators=30, max_depth=6, n_jobs=1, random_state=0)),
    "xgb_blobs4": ("blobs4", lambda: xgb.XGBClassifier(
        n_estimators=20, max_depth=4, n_jobs=1, random_state=0)),
    "lgbm_cancer": ("cancer", lambda: lgb.LGBMClassifier(
        n_estimators=30, n_jobs=1, verbose=-1, random_state=0)),
    "lgbm_blobs4": ("blobs4", lambda: lgb.LGBMClassifier(
        n_estimators=20, num_leaves=15, n_jobs=1, verbose=-1, random_state=0)),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request) -> tuple[object, np.ndarray, CompiledEnsemble]:
    data, make = MODELS[request.param]
    X, y = _data(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LightGBM's feature-name warnings
        model = make().fit(X, y)
    return model, X, CompiledEnsemble(model)


def _split_nodes(model) -> list[tuple[int, float]]:
    """(feature, threshold) of every split: the library's number and the view's ``<=`` one."""
    ens = TreeEnsemble.from_model(model)
    split = ~ens.is_leaf
    pairs = set(zip(ens.feature[split].tolist(), ens.raw_threshold[split].tolist(), strict=True))
    pairs.update(zip(ens.feature[split].tolist(), ens.threshold[split].tolist(), strict=True))
    return sorted(pairs)


def _boundary_values(t: float) -> list[float]:
    """float64 values at, just around and rounding across threshold ``t`` in float32."""
    lo32 = float(_float32_floor(np.array([t]))[0])  # largest float32 <= t
    hi32 = float(np.nextafter(np.float32(lo32), np.float32(np.inf)))  # next float32 up
    mid = (lo32 + hi32) / 2  # float64 ties: round-to-even in float32
    vals = [
        t,
        np.nextafter(t, -np.inf),
        np.nextafter(t, np.inf),
        lo32,
        hi32,
        float(np.nextafter(np.float32(lo32), np.float32(-np.inf))),
        mid,
        np.nextafter(mid, -np.inf),
        np.nextafter(mid, np.inf),
        t + (hi32 - t) / 4,  # float64 above t that may round down to lo32 (<= t)
        t - (t - lo32) / 4 if t > lo32 else t,
        float(np.float32(t)),
    ]
    return [float(v) for v in vals]


def _adversarial_inputs(model, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rows = []
    base = X[rng.integers(0, len(X), size=64)]
    for k, (f, t) in enumerate(_split_nodes(model)):
        for v in _boundary_values(t):
            r = base[k % len(base)].copy()
            r[f] = v
            rows.append(r)
    # every column on a boundary value at once
    per_feat: dict[int, list[float]] = {}
    for f, t in _split_nodes(model):
        per_feat.setdefault(f, []).extend(_boundary_values(t))
    for _ in range(200):
        r = base[rng.integers(0, len(base))].copy()
        for f, vals in per_feat.items():
            r[f] = vals[rng.integers(0, len(vals))]
        rows.append(r)
    return np.asarray(rows)


def _extreme_inputs(d: int, rng: np.random.Generator) -> np.ndarray:
    f32max = float(np.finfo(np.float32).max)
    specials = np.array(
        [0.0, -0.0, 1e-45, -1e-45, 1e-30, -1e-30, 1e-300, -1e-300, 1e30, -1e30,
         f32max, -f32max, 3e38, -3e38, 1e10, -1e10]
    )  # fmt: skip
    return specials[rng.integers(0, len(specials), size=(300, d))]


def _assert_same(model, comp: CompiledEnsemble, Q: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.asarray(model.predict_proba(Q), dtype=np.float64)
        labels = model.predict(Q)
    got = comp.predict_proba(Q)
    assert got.shape == expected.shape and got.dtype == np.float64
    if comp.trees.library == "lightgbm":  # numpy's exp vs the C library's: ulps
        assert np.abs(got - expected).max() <= 1e-9
    else:
        assert np.array_equal(got, expected)
    assert np.array_equal(comp.predict(Q), labels)


# ---------------------------------------------------------------------------------------------
# exact agreement


def test_training_data(fitted):
    model, X, comp = fitted
    _assert_same(model, comp, X)


def test_random_inputs(fitted):
    model, X, comp = fitted
    rng = np.random.default_rng(0)
    lo, hi = X.min(0), X.max(0)
    span = hi - lo
    Q = rng.uniform(lo - 0.2 * span, hi + 0.2 * span, size=(500, X.shape[1]))
    _assert_same(model, comp, Q)
    for n in (1, 2, 50):  # small batches, incl. one row (different reduction shapes)
        _assert_same(model, comp, Q[:n])


def test_threshold_boundaries(fitted):
    model, X, comp = fitted
    Q = _adversarial_inputs(model, X, np.random.default_rng(1))
    assert len(Q) > 200
    _assert_same(model, comp, Q)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # sklearn's sum
def test_extreme_values(fitted):
    model, X, comp = fitted
    _assert_same(model, comp, _extreme_inputs(X.shape[1], np.random.default_rng(2)))


def _library_leaves(model, Q: np.ndarray) -> np.ndarray | None:
    """Leaf node ids per tree from the library itself (None where it has no such call)."""
    if isinstance(model, xgb.XGBClassifier):
        return model.get_booster().predict(xgb.DMatrix(Q), pred_leaf=True).astype(np.intp)
    if isinstance(model, (HistGradientBoostingClassifier, lgb.LGBMClassifier)):
        return None  # no node-id apply (LightGBM's pred_leaf numbers leaves, not nodes)
    return model.apply(Q).reshape(len(Q), -1)


def test_leaves_match_apply(fitted):
    model, X, comp = fitted
    Q = np.vstack([X[:40], _adversarial_inputs(model, X, np.random.default_rng(3))[:300]])
    got = comp.leaves(Q)
    assert got.shape == (len(Q), comp.n_trees)
    assert np.array_equal(comp.leaf_nodes(Q), comp.trees.apply(Q))  # the view's own walk
    expected = _library_leaves(model, Q)
    if expected is not None:
        assert np.array_equal(got, expected)


def test_native_kernels_equal_numpy_walk(fitted):
    model, X, comp = fitted
    assert comp.engine in ("c", "dense", "sparse", "numpy")  # "auto": the fastest on a probe
    walk = CompiledEnsemble(model, engine="numpy")
    assert walk.engine == "numpy"
    Q = np.vstack([X[:200], _adversarial_inputs(model, X, np.random.default_rng(7))[:1500]])
    kernels = ("c", "dense", "sparse") if c_kernel() is not None else ("dense", "sparse")
    for kernel in kernels:
        native = CompiledEnsemble(model, engine=kernel)
        assert native.engine == kernel  # scikit-learn's kernels are usable here
        for n in (1, 2, len(Q)):
            assert np.array_equal(native.predict_proba(Q[:n]), walk.predict_proba(Q[:n]))
            assert np.array_equal(native.scores(Q[:n]), walk.scores(Q[:n]))
            assert np.array_equal(native.leaf_nodes(Q[:n]), walk.leaf_nodes(Q[:n]))


def test_forest_has_trees_of_different_depths():
    X, y = load_breast_cancer(return_X_y=True)
    model = RandomForestClassifier(n_estimators=25, random_state=0).fit(X, y)
    depths = {e.tree_.max_depth for e in model.estimators_}
    assert len(depths) > 1
    comp = CompiledForest(model)
    assert comp.max_depth == max(depths)
    _assert_same(model, comp, X)


def test_many_trees_summation_order():
    """Tree probabilities are added in sklearn's sequential order (bitwise equal sums)."""
    X, y = make_classification(400, 8, n_informative=5, n_classes=3, random_state=7)
    model = ExtraTreesClassifier(n_estimators=300, max_depth=6, random_state=0).fit(X, y)
    comp = CompiledForest(model)
    rng = np.random.default_rng(4)
    Q = rng.normal(size=(200, 8)) * 2
    for n in (1, 3, 200):
        _assert_same(model, comp, Q[:n])


def test_string_labels_and_single_leaf_tree():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, names)
    comp = CompiledForest(model)
    assert comp.predict(X[:5]).dtype == model.classes_.dtype
    _assert_same(model, comp, X)
    stump = DecisionTreeClassifier().fit(X, np.zeros(len(X), dtype=int))  # a single leaf
    comp = CompiledForest(stump)
    assert comp.max_depth == 0
    _assert_same(stump, comp, X[:10])


def test_float32_floor_property():
    rng = np.random.default_rng(5)
    t = np.concatenate(
        [
            rng.normal(size=2000) * 10.0 ** rng.integers(-40, 39, size=2000),
            np.array([0.0, -0.0, 1e-300, -1e-300, 1e300, -1e300, 0.5, 2.5]),
        ]
    )
    t32 = _float32_floor(t)
    assert t32.dtype == np.float32
    for k in (-2, -1, 0, 1, 2):  # float32 values around t
        with np.errstate(over="ignore"):
            v = t.astype(np.float32)
        for _ in range(abs(k)):
            v = np.nextafter(v, np.float32(np.sign(k) * np.inf))
        finite = np.isfinite(v)
        assert np.array_equal((v.astype(np.float64) <= t)[finite], (v <= t32)[finite])


# ---------------------------------------------------------------------------------------------
# input validation


def test_nan_rejected(fitted):
    _, X, comp = fitted
    Q = X[:4].astype(float).copy()
    Q[2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        comp.predict_proba(Q)
    with pytest.raises(ValueError, match="NaN"):
        comp.predict(Q)
    with pytest.raises(ValueError, match="NaN"):
        comp.leaves(Q)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # sklearn
def test_infinite_and_float32_overflow_rejected_like_sklearn():
    X, y = load_iris(return_X_y=True)
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    comp = compile_predictor(model)
    for bad in (np.inf, -np.inf, 1e300, -1e39):
        Q = X[:3].copy()
        Q[1, 2] = bad
        with pytest.raises(ValueError):
            model.predict_proba(Q)
        with pytest.raises(ValueError, match="infinity"):
            comp.predict_proba(Q)


def test_wrong_shape_rejected():
    X, y = load_iris(return_X_y=True)
    comp = CompiledForest(DecisionTreeClassifier(random_state=0).fit(X, y))
    with pytest.raises(ValueError, match="3 features, but the model expects 4"):
        comp.predict_proba(X[:, :3])
    with pytest.raises(ValueError, match="5 features"):
        comp.predict_proba(np.hstack([X, X[:, :1]]))
    with pytest.raises(ValueError, match="2-D"):
        comp.predict_proba(X[0])


def test_unsupported_models_rejected_by_compiled_ensemble():
    X, y = load_iris(return_X_y=True)
    lr = LogisticRegression(max_iter=500).fit(X, y)
    Y2 = np.c_[y, y % 2]
    multi = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, Y2)
    pipe = make_pipeline(RandomForestClassifier(n_estimators=2, random_state=0)).fit(X, y)
    for model in (lr, RandomForestClassifier(), multi, pipe, xgb.XGBClassifier()):
        assert not is_compilable(model)
        with pytest.raises(UnsupportedModel) as got:
            CompiledEnsemble(model)
        with pytest.raises(UnsupportedModel) as want:
            TreeEnsemble.from_model(model)
        assert str(got.value) == str(want.value)
    with pytest.raises(UnsupportedModel, match="has 2 outputs"):
        CompiledEnsemble(multi)


# ---------------------------------------------------------------------------------------------
# dispatch and fallback


def test_compile_predictor_dispatch():
    X, y = load_iris(return_X_y=True)
    for model in (
        RandomForestClassifier(n_estimators=3, random_state=0),
        ExtraTreesClassifier(n_estimators=3, random_state=0),
        DecisionTreeClassifier(random_state=0),
        ExtraTreeClassifier(random_state=0),
        GradientBoostingClassifier(n_estimators=3, random_state=0),
        HistGradientBoostingClassifier(max_iter=3),
        xgb.XGBClassifier(n_estimators=3, n_jobs=1),
        lgb.LGBMClassifier(n_estimators=3, n_jobs=1, verbose=-1),
    ):
        p = compile_predictor(model.fit(X, y))
        assert isinstance(p, CompiledEnsemble) and CompiledForest is CompiledEnsemble
        assert isinstance(p, Predictor)
        assert compile_predictor(p) is p
        assert isinstance(compile_predictor(p.trees), CompiledEnsemble)
    pipe = make_pipeline(GradientBoostingClassifier(n_estimators=3, random_state=0)).fit(X, y)
    assert isinstance(compile_predictor(pipe), BatchedPredictor)


def test_logistic_regression_fallback():
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    lr = LogisticRegression(max_iter=1000).fit(X, y)
    p = compile_predictor(lr)
    assert isinstance(p, BatchedPredictor)
    assert isinstance(p, Predictor)
    assert np.array_equal(p.classes_, lr.classes_)
    rng = np.random.default_rng(6)
    Q = np.vstack([X, rng.normal(size=(100, X.shape[1])) * 3])
    assert np.array_equal(p.predict_proba(Q), lr.predict_proba(Q))
    assert np.array_equal(p.predict(Q), lr.predict(Q))
    batched = compile_predictor(lr, batch_size=37)
    got = batched.predict_proba(Q)
    assert got.shape == (len(Q), 2)
    assert np.allclose(got, lr.predict_proba(Q), rtol=0, atol=1e-12)
    assert np.array_equal(batched.predict(Q), lr.predict(Q))


def test_batched_predictor_validation():
    X, y = load_iris(return_X_y=True)
    p = BatchedPredictor(LogisticRegression(max_iter=500).fit(X, y), batch_size=10)
    Q = X[:5].copy()
    Q[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        p.predict_proba(Q)
    with pytest.raises(ValueError, match="features"):
        p.predict_proba(X[:, :2])
    with pytest.raises(ValueError, match="batch_size"):
        BatchedPredictor(p.estimator, batch_size=0)
    with pytest.raises(ValueError, match="not fitted"):
        BatchedPredictor(LogisticRegression())


# ---------------------------------------------------------------------------------------------
# XGBoost's float32 link


def _libm_expf():
    name = ctypes.util.find_library("m")
    if name is None:
        return None
    fn = ctypes.CDLL(name).expf
    fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
    return fn


def test_without_c_compiler_same_results(monkeypatch):
    # no C kernel (no compiler, CFGEN_NO_CC=1): scikit-learn's kernels / the numpy walk and the
    # numpy emulation of expf give the same bits
    import cfgen.tree_kernels as kernels

    X, y = make_classification(400, 6, n_informative=4, n_classes=3, n_clusters_per_class=1,
                               random_state=2)
    models = [xgb.XGBClassifier(n_estimators=10, n_jobs=1, random_state=0).fit(X, y % 2),
              xgb.XGBClassifier(n_estimators=10, n_jobs=1, random_state=0).fit(X, y),
              GradientBoostingClassifier(n_estimators=10, random_state=0).fit(X, y)]
    with_c = [CompiledEnsemble(m) for m in models]
    monkeypatch.setattr(kernels, "_C_LIB", [None])
    for model, fast in zip(models, with_c, strict=True):
        slow = CompiledEnsemble(model)
        assert slow.engine != "c"
        Q = np.vstack([X, _adversarial_inputs(model, X, np.random.default_rng(5))])
        assert np.array_equal(slow.predict_proba(Q), fast.predict_proba(Q))
        _assert_same(model, slow, Q)


def test_c_kernel_cache_is_reused(tmp_path, monkeypatch):
    import cfgen.tree_kernels as kernels

    if c_kernel() is None:
        pytest.skip("no C compiler on this machine: the C kernel is not built")
    monkeypatch.setenv("CFGEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kernels, "_C_LIB", [])
    assert kernels.c_kernel() is not None
    built = list(tmp_path.glob("treekernel-*.so"))
    assert len(built) == 1 and not list(tmp_path.glob("*.tmp"))
    stamp = built[0].stat().st_mtime_ns
    monkeypatch.setattr(kernels, "_C_LIB", [])
    assert kernels.c_kernel() is not None
    assert built[0].stat().st_mtime_ns == stamp  # loaded, not rebuilt


def test_expf_equals_the_c_library():
    libm_expf = _libm_expf()
    if libm_expf is None:
        pytest.skip("no C math library to compare with (find_library('m') is None)")
    rng = np.random.default_rng(11)
    x = np.concatenate([
        rng.uniform(-110.0, 88.7, 20000), rng.normal(0, 1, 20000), rng.normal(0, 1e-4, 5000),
        [0.0, -0.0, 88.7, -87.3, -103.9, -104.0, 1e-30, -1e-30],
    ]).astype(np.float32)
    want = np.array([libm_expf(float(v)) for v in x], dtype=np.float32)
    assert np.array_equal(expf(x), want)


def test_models_fitted_on_missing_values():
    # NaN in training: XGBoost / LightGBM learn default directions, HistGB may split "NaN vs
    # every number" at +inf; finite inputs never take those routes, and NaN inputs are refused
    X, y = make_classification(600, 6, n_informative=4, n_classes=3, n_clusters_per_class=1,
                               random_state=4)
    Xn = X.copy()
    Xn[np.random.default_rng(0).random(X.shape) < 0.15] = np.nan
    Q = np.vstack([X, _noisy_rows(X)])
    for model in (
        HistGradientBoostingClassifier(max_iter=20, random_state=0),
        xgb.XGBClassifier(n_estimators=20, n_jobs=1, random_state=0),
        lgb.LGBMClassifier(n_estimators=20, n_jobs=1, verbose=-1, random_state=0),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(Xn, y)
        comp = CompiledEnsemble(model)
        _assert_same(model, comp, Q)
        with pytest.raises(ValueError, match="NaN"):
            comp.predict_proba(Xn[:5])
    hgb = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(Xn, y)
    assert np.isposinf(TreeEnsemble.from_model(hgb).threshold).any()  # the case is exercised


def _noisy_rows(X: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(9)
    return X[rng.integers(0, len(X), 200)] + rng.normal(0, 0.5, (200, X.shape[1]))


@pytest.mark.parametrize("kind", ["rf", "xgb", "hgb"])
def test_compiled_ensemble_pickles_for_the_workers(kind):
    """Workers receive the compiled model pickled: its native engine (ctypes) is rebuilt there,
    and the probabilities stay bit-for-bit the same (a ctypes pointer cannot be pickled)."""
    import pickle

    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from xgboost import XGBClassifier

    from cfgen.predictor import CompiledEnsemble

    X, y = make_classification(n_samples=300, n_features=6, random_state=0)
    model = {"rf": RandomForestClassifier(n_estimators=10, random_state=0),
             "xgb": XGBClassifier(n_estimators=10, n_jobs=1, verbosity=0),
             "hgb": HistGradientBoostingClassifier(max_iter=10, random_state=0)}[kind].fit(X, y)
    comp = CompiledEnsemble(model)
    back = pickle.loads(pickle.dumps(comp))
    assert back.engine == comp.engine
    assert np.array_equal(back.predict_proba(X), comp.predict_proba(X))
    assert np.array_equal(back.predict(X), model.predict(X))
