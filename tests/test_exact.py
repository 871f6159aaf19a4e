"""method=exact: the MILP's optimum equals exhaustive enumeration over the data's grid, honours
rules, integrality and ties, and no other method (the GA) gets closer."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

from cfgen.errors import ConfigError
from cfgen.exact import ExactExplainer
from cfgen.exact.oracle import assert_no_method_closer, brute_force_closest
from cfgen.problem import Problem
from cfgen.schema import Feature, FeatureSchema, Kind, Rule, actionability_violations
from cfgen.search.distance import MixedDistance, feature_scale

CONF = Path(__file__).resolve().parents[1] / "cfgen" / "conf" / "method" / "exact.yaml"
RNG = np.random.default_rng(0)


# ---------------------------------------------------------------------- a small synthetic problem
SCHEMA = FeatureSchema(
    (
        Feature("c", Kind.CONTINUOUS, 0.0, 6.0, decimals=1),
        Feature("i", Kind.INTEGER, 0.0, 9.0, decimals=0),
        Feature("k", Kind.CATEGORICAL, 0.0, 2.0, categories=("a", "b", "z"), decimals=0),
    )
)


def _synthetic_xy(n: int = 300, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = np.round(rng.uniform(0, 6, n), 1)
    i = rng.integers(0, 10, n).astype(float)
    k = rng.integers(0, 3, n).astype(float)
    score = c + 0.6 * i - 2.5 * (k == 1) + 1.5 * (k == 2) + rng.normal(0, 1.0, n)
    y = np.digitize(score, [4.0, 7.0])
    return np.column_stack([c, i, k]), y


def _problem(estimator, X, y, schema=SCHEMA) -> Problem:
    estimator.fit(X, y)
    return Problem.from_fitted(estimator, X, y, schema=schema)


MODELS = {
    "rf": lambda: RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0),
    "et": lambda: ExtraTreesClassifier(n_estimators=3, max_depth=3, random_state=0),
    "dt": lambda: DecisionTreeClassifier(max_depth=4, random_state=0),
    # unlimited depth, pure leaves: summed fractions tie often (0.5 / 0.5 with 2 trees)
    "ties": lambda: RandomForestClassifier(n_estimators=2, max_depth=None, random_state=3),
}


BOOSTED = {
    "xgb": lambda: __import__("xgboost").XGBClassifier(
        n_estimators=6, max_depth=2, learning_rate=0.5, n_jobs=1, random_state=0
    ),
    "lgbm": lambda: __import__("lightgbm").LGBMClassifier(
        n_estimators=6, num_leaves=4, learning_rate=0.5, n_jobs=1, verbose=-1, random_state=0
    ),
    "gb": lambda: __import__("sklearn.ensemble").ensemble.GradientBoostingClassifier(
        n_estimators=6, max_depth=2, random_state=0
    ),
    "hgb": lambda: __import__("sklearn.ensemble").ensemble.HistGradientBoostingClassifier(
        max_iter=6, max_depth=2, random_state=0
    ),
}


@pytest.fixture(scope="module")
def problems():
    X, y = _synthetic_xy()
    return {name: _problem(make(), X, y) for name, make in MODELS.items()}


def _grid_values(f: Feature, x: float) -> np.ndarray:
    """Every value the feature may take (written independently of cfgen.exact.grid)."""
    if f.kind is Kind.CATEGORICAL:
        vals = np.arange(len(f.categories), dtype=float)
    else:
        step = 10.0**-f.decimals
        lo, hi = min(f.low, x), max(f.high, x)
        vals = np.round(
            np.arange(np.ceil(lo / step - 1e-9), np.floor(hi / step + 1e-9) + 1) * step, f.decimals
        )
    if f.rule is Rule.NO_CHANGE:
        vals = vals[vals == x]
    elif f.rule is Rule.NON_INCREASING:
        vals = vals[vals <= x]
    elif f.rule is Rule.NON_DECREASING:
        vals = vals[vals >= x]
    if f.permitted is not None:
        lo = -np.inf if f.permitted[0] is None else f.permitted[0]
        hi = np.inf if f.permitted[1] is None else f.permitted[1]
        vals = vals[(vals >= lo) & (vals <= hi)]
    return np.union1d(vals, [x])


def _enumerate(problem, schema, x, target):
    """Exhaustive optimum over every grid combination: (distance, n_valid, n_tied)."""
    grids = [_grid_values(f, x[j]) for j, f in enumerate(schema.features)]
    rows = np.array(list(itertools.product(*grids)), dtype=float)
    proba = problem.estimator.predict_proba(rows)
    top = np.sort(proba, axis=1)
    tied = int(np.sum(top[:, -1] == top[:, -2]))
    ok = problem.estimator.predict(rows) == target
    if not ok.any():
        return np.inf, 0, tied
    m = MixedDistance(feature_scale(problem.X_train, schema), schema.categorical)
    return float(m.to(m.scaled(rows[ok]), m.scaled(x)[None, :]).min()), int(ok.sum()), tied


def _queries(n: int, seed: int) -> np.ndarray:
    X, _ = _synthetic_xy(n, seed)
    X[: n // 3, 0] += 0.0371  # off the grid: may stay, or move onto the grid
    return X


def _check(problem, schema, x, target, **settings):
    ex = ExactExplainer(problem, schema, name="exact", time_limit=30, **settings)
    e = ex.explain(x, target, 1, RNG)
    json.dumps(e.extra, allow_nan=False)  # the journal stores extra as strict JSON
    want, _, _ = _enumerate(problem, schema, x, target)
    if not np.isfinite(want):
        assert e.n_found == 0 and e.extra["status"] == "infeasible" and e.reason
        return e
    assert e.extra["status"] == "optimal" and not e.timed_out
    assert e.extra["objective"] == pytest.approx(want, rel=1e-9, abs=1e-12)
    row = e.counterfactuals[0]
    assert problem.estimator.predict(row[None, :])[0] == target
    assert actionability_violations(x, row[None, :], schema.rules)[0] == 0
    assert row[1] == np.round(row[1]) and row[2] in (0.0, 1.0, 2.0)
    assert row[0] == x[0] or row[0] == np.round(row[0], 1)
    assert e.roles == ["closest"]
    if "tie_margin" not in settings:  # the solver's tolerances cannot fake the margin
        assert e.extra["fixups"] == 0
    return e


# ---------------------------------------------------------------------- optimum vs enumeration
@pytest.mark.parametrize("warm_start", [True, False])
@pytest.mark.parametrize("model", ["rf", "et", "dt", "ties"])
def test_optimum_equals_exhaustive_enumeration(problems, model, warm_start):
    problem = problems[model]
    for x in _queries(12, seed=7):
        for target in range(3):
            _check(problem, SCHEMA, x, target, warm_start=warm_start)


@pytest.mark.parametrize("classes", [3, 2])
@pytest.mark.parametrize("model", sorted(BOOSTED))
def test_boosted_optimum_equals_exhaustive_enumeration(model, classes):
    X, y = _synthetic_xy()
    problem = _problem(BOOSTED[model](), X, np.minimum(y, classes - 1))
    for x in _queries(4, seed=13):
        for target in range(classes):
            _check(problem, SCHEMA, x, target)


def test_actionability_rules_are_honoured(problems):
    problem = problems["rf"]
    rule_sets = [
        {"c": "non_increasing", "k": "no_change"},
        {"c": "non_decreasing", "i": "non_increasing"},
        {"i": "no_change", "k": "non_decreasing"},
        {"c": "no_change", "i": "no_change", "k": "no_change"},
    ]
    for rules in rule_sets:
        schema = SCHEMA.with_rules(rules)
        for x in _queries(6, seed=11):
            for target in range(3):
                _check(problem, schema, x, target)


def test_permitted_ranges_are_honoured(problems):
    schema = FeatureSchema(
        (
            Feature("c", Kind.CONTINUOUS, 0.0, 6.0, decimals=1, permitted=(1.5, 4.0)),
            Feature("i", Kind.INTEGER, 0.0, 9.0, decimals=0, permitted=(None, 6.0)),  # type: ignore[arg-type]
            Feature(
                "k",
                Kind.CATEGORICAL,
                0.0,
                2.0,
                categories=("a", "b", "z"),
                decimals=0,
                permitted=(1.0, 2.0),
            ),
        )
    )
    for x in _queries(9, seed=5):
        for target in range(3):
            e = _check(problems["rf"], schema, x, target)
            for row in e.counterfactuals:
                assert row[0] == x[0] or 1.5 <= row[0] <= 4.0
                assert row[1] == x[1] or row[1] <= 6.0
                assert row[2] == x[2] or row[2] in (1.0, 2.0)
            assert not actionability_violations(
                x, e.counterfactuals, schema.rules, permitted=schema.permitted
            ).any()


def test_ties_go_to_the_lowest_class_and_fixups_keep_rows_valid(problems):
    queries = _queries(9, seed=3)
    assert sum(_enumerate(problems["ties"], SCHEMA, x, 0)[2] for x in queries) > 0  # ties occur
    fixups = 0
    for model, rows in (("ties", queries[1:3]), ("dt", queries[:4])):
        for x in rows:
            for target in range(3):
                # a margin below the solver's tolerance: exact ties slip through the MILP and
                # must be caught by the model's own predict and their cells cut off
                e = _check(problems[model], SCHEMA, x, target, tie_margin=1e-12, max_fixups=10_000)
                fixups += e.extra["fixups"]
    assert fixups > 0


def test_edge_candidate_brute_force_equals_enumeration(problems):
    for model in ("rf", "ties"):
        problem = problems[model]
        for x in _queries(6, seed=9):
            for target in range(3):
                got, row = brute_force_closest(problem, x, target, SCHEMA)
                assert got == pytest.approx(_enumerate(problem, SCHEMA, x, target)[0], abs=1e-12)


# ---------------------------------------------------------------------- k > 1, status, settings
def test_k_members_are_distinct_alternatives(problems):
    problem = problems["rf"]
    ex = ExactExplainer(problem, SCHEMA, time_limit=30)
    m = MixedDistance(feature_scale(problem.X_train, SCHEMA), SCHEMA.categorical)
    for x in _queries(6, seed=2):
        for target in range(3):
            e = ex.explain(x, target, 4, RNG)
            if not e.n_found:
                continue
            assert e.roles == ["closest"] + ["diverse"] * (e.n_found - 1)
            assert (problem.estimator.predict(e.counterfactuals) == target).all()
            d = m.to(m.scaled(e.counterfactuals), m.scaled(x)[None, :])
            assert d[0] == pytest.approx(_enumerate(problem, SCHEMA, x, target)[0], abs=1e-12)
            assert np.all(np.diff(d) >= -1e-12)
            changed = [set(np.flatnonzero(r != x)) for r in e.counterfactuals]
            for a in range(len(changed)):
                for b in range(a + 1, len(changed)):
                    assert not changed[a] <= changed[b]  # a later member is no superset
            assert (e.n_found == 4) == (e.reason is None)


def test_unreachable_target_returns_no_row_with_reason(problems):
    problem = problems["rf"]
    schema = SCHEMA.with_rules({"c": "no_change", "i": "no_change", "k": "no_change"})
    x = np.array([0.5, 0.0, 1.0])
    pred = int(problem.estimator.predict(x[None, :])[0])
    e = ExactExplainer(problem, schema).explain(x, (pred + 2) % 3, 2, RNG)
    assert e.n_found == 0 and e.extra["status"] == "infeasible" and not e.timed_out
    assert "no counterfactual" in (e.reason or "")
    json.dumps(e.extra, allow_nan=False)  # the journal stores extra as strict JSON
    same = ExactExplainer(problem, schema).explain(x, pred, 1, RNG)
    assert same.n_found == 1 and same.extra["objective"] == 0.0
    assert np.array_equal(same.counterfactuals[0], x)


def test_time_limit_returns_best_found_and_says_so(problems):
    problem = problems["ties"]
    ex = ExactExplainer(problem, SCHEMA, time_limit=1e-9, warm_start=False)
    statuses = []
    for x in _queries(6, seed=7):
        for target in range(3):
            e = ex.explain(x, target, 2, RNG)
            statuses.append(e.extra["status"])
            assert e.timed_out == (e.extra["status"] == "time_limit")
            if e.timed_out:
                assert e.n_found <= 1 and "time limit" in (e.reason or "")
            if e.n_found:
                assert (problem.estimator.predict(e.counterfactuals) == target).all()
    assert "time_limit" in statuses  # 1 ms per solve cannot prove every query


@pytest.mark.parametrize(
    ("key", "value"), [("mip_gap", -1.0), ("threads", 0), ("tie_margin", 0.0), ("time_limit", 0)]
)
def test_bad_settings_name_their_key(problems, key, value):
    with pytest.raises(ConfigError, match=rf"^method\.{key}="):
        ExactExplainer(problems["rf"], SCHEMA, **{key: value})


def test_non_tree_model_is_rejected():
    from sklearn.linear_model import LogisticRegression

    X, y = _synthetic_xy(60)
    with pytest.raises(ConfigError, match="^model: LogisticRegression is not a supported tree"):
        ExactExplainer(_problem(LogisticRegression(max_iter=200), X, y), SCHEMA)


def test_config_builds_the_plugin(problems):
    from conftest import compose_config

    from cfgen.methods import method_factory, needs_bounds

    cfg = OmegaConf.load(CONF)
    assert cfg.name == "exact" and cfg.time_limit == 60 and cfg._partial_ is True
    ex = instantiate(cfg)(problems["rf"], SCHEMA, None)
    assert isinstance(ex, ExactExplainer) and ex.time_limit == 60 and not ex.needs_bounds
    factory = method_factory(compose_config(["method=exact", "method.mip_gap=0.001"]).method)
    assert not needs_bounds(factory)
    ex = factory(problems["rf"], SCHEMA, None)
    assert ex.settings["mip_gap"] == 0.001 and ex.time_limit == 60


def test_a_problem_without_tree_view_is_refused():
    X, y = _synthetic_xy(80)
    problem = _problem(RandomForestClassifier(n_estimators=2, random_state=0), X, y)
    problem.trees = None  # e.g. a model fitted on the user's own (non-encoded) columns
    with pytest.raises(ConfigError, match="^model: RandomForestClassifier is fitted on other"):
        ExactExplainer(problem, SCHEMA)


# ---------------------------------------------------------------------- the paper's forests
def _paper(dataset: str):
    from conftest import compose_config

    cfg = compose_config([f"dataset={dataset}", "model=random_forest", "method=dpg_ga"])
    return cfg, Problem.from_config(cfg.dataset, cfg.model)


@pytest.fixture(scope="module")
def iris():
    return _paper("iris")


@pytest.mark.parametrize("dataset", ["iris", "diabetes"])
def test_paper_forests_are_solved_to_optimality(dataset, iris):
    _, problem = iris if dataset == "iris" else _paper(dataset)
    ex = ExactExplainer(problem, problem.schema, time_limit=60)
    pred = problem.predict(problem.X_test)
    for i in range(4):
        x = problem.X_test[i]
        for target in set(range(problem.n_classes)) - {int(pred[i])}:
            e = ex.explain(x, target, 1, RNG)
            assert e.extra["status"] == "optimal" and e.extra["gap"] <= 1e-6 and not e.timed_out
            assert problem.predict(e.counterfactuals)[0] == target
            if dataset == "iris":  # small enough to enumerate every cell's nearest value
                want, _ = brute_force_closest(problem, x, target, problem.schema)
                assert e.extra["objective"] == pytest.approx(want, rel=1e-9)


def test_no_ga_counterfactual_is_closer_than_the_optimum(iris):
    from cfgen.constraints import mine_class_bounds
    from cfgen.methods import method_factory

    cfg, problem = iris
    bounds = mine_class_bounds(problem.model, problem.schema, mode="dpg", X_train=problem.X_train)
    ga = method_factory(cfg.method)(problem, problem.schema, bounds)
    ex = ExactExplainer(problem, problem.schema, time_limit=60)
    pred = problem.predict(problem.X_test)
    compared = 0
    for i in range(3):
        x = problem.X_test[i]
        for target in set(range(problem.n_classes)) - {int(pred[i])}:
            best = ex.explain(x, target, 1, RNG).extra["objective"]
            found = ga.explain(x, target, 4, np.random.default_rng(i))
            out = assert_no_method_closer(
                problem, found.counterfactuals, best, x=x, target=target, schema=problem.schema
            )
            compared += out["compared"]
    assert compared > 0


def test_oracle_catches_a_closer_row(problems):
    problem = problems["rf"]
    x = _queries(3, seed=4)[1]
    pred = int(problem.estimator.predict(x[None, :])[0])
    target = (pred + 1) % 3
    e = ExactExplainer(problem, SCHEMA).explain(x, target, 1, RNG)
    row = e.counterfactuals
    out = assert_no_method_closer(
        problem, row, e.extra["objective"], x=x, target=target, schema=SCHEMA
    )
    assert out["compared"] == 1
    with pytest.raises(AssertionError, match="closer"):  # a claimed optimum that is too large
        assert_no_method_closer(
            problem, row, e.extra["objective"] * 1.5 + 0.1, x=x, target=target, schema=SCHEMA
        )
    off = row + np.array([[0.01, 0.0, 0.0]])  # off the grid (or invalid): not comparable
    assert (
        assert_no_method_closer(problem, off, np.inf, x=x, target=target, schema=SCHEMA)["compared"]
        == 0
    )


@pytest.mark.slow  # a fresh interpreter importing cfgen, sklearn and HiGHS
def test_a_query_prints_nothing_on_stdout(tmp_path):
    """HiGHS's banner (once per process, on fd 1) must not reach a worker's console."""
    import subprocess
    import sys

    code = (
        "import numpy as np; from sklearn.tree import DecisionTreeClassifier\n"
        "from cfgen.exact import ExactExplainer; from cfgen.problem import Problem\n"
        "from cfgen.schema import Feature, FeatureSchema, Kind\n"
        "X = np.arange(20.0).reshape(10, 2); y = (X[:, 0] > 8).astype(int)\n"
        "s = FeatureSchema((Feature('a', Kind.INTEGER, 0, 18, decimals=0),"
        " Feature('b', Kind.INTEGER, 1, 19, decimals=0)))\n"
        "p = Problem.from_fitted(DecisionTreeClassifier().fit(X, y), X, y, schema=s)\n"
        "e = ExactExplainer(p, s).explain(X[0], 1, 1, np.random.default_rng(0))\n"
        "assert e.extra['status'] == 'optimal', e.extra\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**__import__("os").environ, "PYTHONPATH": str(root)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""


def test_exact_on_a_model_that_is_not_a_tree_ensemble_is_one_line(cfg_factory, tmp_path):
    """method=exact model=logistic_regression: refused before any task runs (it used to exit
    0 with every task failed)."""
    from cfgen.errors import ConfigError
    from cfgen.experiment import run

    with pytest.raises(ConfigError) as info:
        run(cfg_factory("method=exact", "model=logistic_regression"), tmp_path / "run")
    msg = str(info.value)
    assert msg.startswith(
        "method=exact needs a tree ensemble cfgen can read, and model Pipeline is not one ("
    )
    assert not (tmp_path / "run" / "metrics.csv").exists()
