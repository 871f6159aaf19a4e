"""The library API: ``cfgen.api.explain`` / ``CounterfactualExplainer`` on plain sklearn models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from cfgen.api import CounterfactualExplainer, CounterfactualResult, explain
from cfgen.errors import ConfigError
from cfgen.schema import actionability_violations


@pytest.fixture(scope="module")
def iris():
    data = load_iris(as_frame=True)
    X = data.data
    y = np.asarray(data.target_names)[data.target]  # string labels
    model = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
    return X, y, model


@pytest.fixture(scope="module")
def credit():
    """Mixed data with text categoricals, a pipeline model that encodes them itself."""
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 70, n),
            "income": np.round(rng.gamma(3.0, 900.0, n), 1),
            "housing": rng.choice(["own", "rent", "free"], n),
            "purpose": rng.choice(["car", "education", "tv", "business"], n),
        }
    )
    y = ((X["income"] > 2500) & (X["housing"] != "free") | (X["purpose"] == "business")).astype(int)
    enc = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["housing", "purpose"])],
        remainder="passthrough",
    )
    model = make_pipeline(enc, RandomForestClassifier(n_estimators=20, random_state=0)).fit(X, y)
    return X, y, model


def test_readme_example(iris):
    X, y, model = iris
    result = explain(model, X, y, X.iloc[0], k=5, seed=0)
    assert isinstance(result, CounterfactualResult)
    assert result.query_class == "setosa" and result.target != "setosa"
    cfs = result.counterfactuals
    assert isinstance(cfs, pd.DataFrame) and list(cfs.columns) == [*X.columns, "predicted"]
    assert 0 < len(cfs) <= 5 and len(result) == len(cfs)
    assert (cfs["predicted"] == result.target).all()
    assert (model.predict(cfs[X.columns]) == result.target).all()
    assert {"generation", "best", "mean"} <= set(result.history.columns)
    assert len(result.history) == result.explanation.generations


def test_batch_seeds_and_target(iris):
    X, y, model = iris
    ex = CounterfactualExplainer(model, X, y, ga={"population_size": 24, "max_generations": 8})
    a = ex.explain(X.iloc[[0, 60, 120]], target="virginica", k=3, seed=4)
    b = ex.explain(X.iloc[[0, 60, 120]], target="virginica", k=3, seed=4)
    assert isinstance(a, list) and len(a) == 3
    for ra, rb in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(ra.counterfactuals, rb.counterfactuals)
    assert a[2].reason and "already" in a[2].reason and len(a[2]) == 0
    assert (a[0].counterfactuals["predicted"] == "virginica").all()
    with pytest.raises(ConfigError, match="not a class"):
        ex.explain(X.iloc[0], target="rose")


def test_arrays_with_codes_and_rules():
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.normal(size=300), rng.integers(0, 3, 300), rng.normal(size=300)])
    y = (X[:, 0] + (X[:, 1] == 2) > 0.5).astype(int)
    model = RandomForestClassifier(n_estimators=15, max_depth=5, random_state=0).fit(X, y)
    ex = CounterfactualExplainer(
        model, X, y, categorical=[1], actionability={"x2": "no_change", "x0": "non_decreasing"}
    )
    assert ex.bounds is not None  # numeric codes 0..n-1: the forest is compiled and mined
    x = X[np.flatnonzero(y == 0)[0]]
    r = ex.explain(x, k=4, seed=0)
    cfs = r.counterfactuals
    assert isinstance(cfs, np.ndarray) and len(cfs)
    assert np.all(model.predict(cfs) == 1) and np.all(r.predicted == 1)
    assert np.all(actionability_violations(x, cfs, ex.schema.rules) == 0)
    assert set(np.unique(cfs[:, 1])) <= {0.0, 1.0, 2.0}


def test_pipeline_with_text_categoricals(credit):
    X, y, model = credit
    ex = CounterfactualExplainer(
        model,
        X,
        y,
        actionability={"age": "non_decreasing"},
        ga={"population_size": 24, "max_generations": 10},
    )
    # a pipeline over text columns is not a tree ensemble on the encoded space: no bounds
    assert ex.bounds is None
    assert ex.bounds_info["bounds_note"].startswith("model is not a tree ensemble (")
    q = X[model.predict(X) == 0].iloc[:2]
    results = ex.explain(q, k=3, seed=0)
    for (_, row), r in zip(q.iterrows(), results, strict=True):
        assert r.target == 1 and len(r) > 0
        cfs = r.counterfactuals
        assert (model.predict(cfs[X.columns]) == 1).all()
        assert set(cfs["housing"]) <= {"own", "rent", "free"}
        assert (cfs["age"] >= row["age"]).all()
        assert cfs["age"].dtype == X["age"].dtype


def test_dice_through_the_api(iris):
    X, y, model = iris
    r = explain(model, X, y, X.iloc[70], k=3, method="dice_kdtree", seed=0)
    assert len(r) > 0 or r.reason
    if len(r):
        assert (model.predict(r.counterfactuals[X.columns]) == r.target).all()


def test_bad_input_speaks(iris):
    X, y, model = iris
    with pytest.raises(ConfigError, match="unknown column"):
        CounterfactualExplainer(model, X, y, categorical=["petal colour"])
    with pytest.raises(ConfigError, match="method="):
        CounterfactualExplainer(model, X, y, method="no_such_method")
    with pytest.raises(ConfigError, match="does not know"):
        CounterfactualExplainer(model, X, np.where(y == "setosa", "rose", y))


def test_top_level_export():
    from cfgen import CounterfactualExplainer as CE
    from cfgen import explain as ex

    assert ex is explain and CE is CounterfactualExplainer


# --------------------------------------------------------------------------- one core


@pytest.mark.parametrize("dataset", ["iris", "diabetes"])
def test_api_and_app_give_byte_identical_counterfactuals(dataset, cfg_factory, tmp_path):
    """Same data, model and seed: CounterfactualExplainer == python -m cfgen, row for row."""
    from cfgen.experiment import run
    from cfgen.problem import Problem
    from cfgen.store import write_frame

    cfg = cfg_factory(
        f"dataset={dataset}",
        "experiment_params.sample_indices=[0,3,7]",
        "experiment_params.num_replications=1",
    )
    result = run(cfg, tmp_path / "run")
    app = result.counterfactuals
    problem = Problem.from_config(cfg.dataset, cfg.model)
    names = problem.schema.names
    X_train = problem.decode(problem.X_train)
    ex = CounterfactualExplainer(
        problem.model,
        X_train,
        problem.y_train,
        actionability=dict(cfg.dataset.actionability),
        ga=dict(cfg.method.ga),
    )
    assert ex.schema == problem.schema  # one schema inference for both entry points
    X_test = problem.decode(problem.X_test)
    rows = []
    for t in result.tasks:
        target = problem.class_names.index(problem.class_names[t.target])
        r = ex.explain(X_test.iloc[[t.query]], target=target, k=5, seed=42, ids=[t.query])[0]
        rows.append(r.counterfactuals[names])
    api = pd.concat(rows, ignore_index=True)
    a, b = tmp_path / "app.csv", tmp_path / "api.csv"
    write_frame(a, app[names])
    write_frame(b, api)
    assert len(api) == len(app) > 0
    assert a.read_bytes() == b.read_bytes()


def test_reordered_columns_are_reordered_by_name(iris):
    """A frame with its columns reversed is matched by name, never used positionally."""
    X, y, model = iris
    rev = X[X.columns[::-1]]
    ex = CounterfactualExplainer(model, rev, y)
    assert ex.schema.names == list(X.columns)
    r = ex.explain(rev.iloc[[0, 60, 120]], k=2, seed=0)
    assert [res.query_class for res in r] == list(model.predict(X.iloc[[0, 60, 120]]))
    for res in r:
        assert (model.predict(res.counterfactuals[X.columns]) == res.target).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": 2.5}, "k=2.5 is not allowed: expected an integer >= 1"),
        ({"k": 0}, "k=0 is not allowed: expected an integer >= 1"),
        ({"seed": -1}, "seed=-1 is not allowed: expected an integer >= 0"),
        ({"target": "tulip"}, "target='tulip' is not a class of the model"),
    ],
)
def test_bad_explain_arguments_are_config_errors(iris, kwargs, message):
    X, y, model = iris
    ex = CounterfactualExplainer(model, X, y)
    with pytest.raises(ConfigError) as err:
        ex.explain(X.iloc[0], **kwargs)
    assert message in str(err.value)


def test_string_query_and_bad_settings_are_config_errors(iris):
    X, y, model = iris
    ex = CounterfactualExplainer(model, X, y)
    with pytest.raises(ConfigError, match="X_query="):
        ex.explain("setosa")
    with pytest.raises(ConfigError, match="did you mean method.ga.population_size"):
        CounterfactualExplainer(model, X, y, ga={"populaton_size": 5})
    with pytest.raises(ConfigError, match="method.ga.population_size=-5 is not allowed"):
        CounterfactualExplainer(model, X, y, ga={"population_size": -5})
    with pytest.raises(ConfigError, match="method.bounds.mode='box' is not allowed"):
        CounterfactualExplainer(model, X, y, bounds={"mode": "box"})
    with pytest.raises(ConfigError, match="method.time_limit=-1 is not allowed"):
        CounterfactualExplainer(model, X, y, time_limit=-1)


def test_models_that_cannot_be_explained_get_one_line(iris):
    from sklearn.linear_model import LinearRegression
    from sklearn.multioutput import MultiOutputClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    X, y, model = iris
    yc = (y == "setosa").astype(int)
    cases = [
        (LinearRegression().fit(X, yc), "is not a classifier"),
        (DecisionTreeClassifier(), "is not fitted"),
        (
            make_pipeline(StandardScaler(), LinearRegression()).fit(X, yc),
            "Pipeline ending in LinearRegression",
        ),
        (MultiOutputClassifier(DecisionTreeClassifier()).fit(X, np.c_[yc, yc]), "multi-output"),
    ]
    for bad, message in cases:
        with pytest.raises(ConfigError) as err:
            CounterfactualExplainer(bad, X, yc)
        assert str(err.value).startswith("model:") and message in str(err.value), err.value


def test_result_shows_the_changes(iris):
    X, y, model = iris
    r = explain(model, X, y, X.iloc[0], target="virginica", k=3, seed=0)
    text = str(r)
    assert text.startswith("query predicted setosa → target virginica: 3 counterfactual(s)")
    ch = r.changes()
    assert len(ch) == len(r) == 3 and (ch["predicted"] == "virginica").all()
    changed = [c for c in X.columns if c in ch and (ch[c] != "").any()]
    assert changed and all("→" in v for c in changed for v in ch[c] if v)
    only = r.to_frame(only_changes=True)
    full = r.to_frame()
    for c in X.columns:
        same = full[c].to_numpy() == X.iloc[0][c]
        assert ((only[c] == "-") == same).all()
