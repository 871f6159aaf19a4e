"""The genetic search (``dpg_ga``): validity, actionability, encoding, determinism, hot path."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from conftest import compose_config

from cfgen.config import GAConfig
from cfgen.constraints import mine_class_bounds
from cfgen.errors import ConfigError
from cfgen.methods import method_factory
from cfgen.predictor import CompiledForest
from cfgen.problem import Problem
from cfgen.schema import Kind, Rule, actionability_violations
from cfgen.search import GeneticExplainer, SearchSpace, feature_scale
from cfgen.search.distance import MixedDistance
from cfgen.search.select import deap_nsga2_select, greedy_diverse, nsga2_select
from cfgen.search.thresholds import SplitEdges

FAST = {"population_size": 24, "max_generations": 12, "patience": 3}


@functools.cache
def problem(name: str):
    """(problem, problem, class bounds) of a dataset with its paper forest (the problem plays
    both the data and the model role in these tests)."""
    cfg = compose_config([f"dataset={name}"])
    prob = Problem.from_config(cfg.dataset, cfg.model)
    bounds = mine_class_bounds(prob.model, prob.schema, mode="dpg", X_train=prob.X_train)
    return prob, prob, bounds


def rounded(schema, X):
    """Rows rounded to the data's own precision (what a user would write down)."""
    X = np.array(X, dtype=float, copy=True)
    for j, f in enumerate(schema.features):
        X[:, j] = np.round(X[:, j], 0 if f.kind is not Kind.CONTINUOUS else f.decimals)
    return X


def explainer(name: str, schema=None, params=FAST, **kw) -> GeneticExplainer:
    prob, _, bounds = problem(name)
    return GeneticExplainer(prob, schema or prob.schema, bounds, ga=dict(params), **kw)


def targets_for(data, model, rows):
    pred = model.estimator.predict(data.X_test[rows])
    C = data.n_classes
    pairs = enumerate(zip(rows, pred, strict=True))
    return [(int(r), int((p + 1 + i % (C - 1)) % C)) for i, (r, p) in pairs]


def check(data, model, x, target, exp, schema=None):
    """Valid by the estimator's own predict (after rounding), actionable, distinct, encoded."""
    schema = schema or data.schema
    cfs = exp.counterfactuals
    assert cfs.shape[1] == len(schema)
    assert len(cfs) <= exp.k
    if len(cfs) < exp.k:
        assert exp.reason
    if not len(cfs):
        return
    assert np.all(model.estimator.predict(cfs) == target)
    assert np.all(model.estimator.predict(rounded(data.schema, cfs)) == target)
    assert np.array_equal(rounded(data.schema, cfs), cfs), "not at the data's precision"
    assert np.all(actionability_violations(x, cfs, schema.rules) == 0)
    assert len(np.unique(cfs, axis=0)) == len(cfs), "duplicates returned"
    assert not np.any(np.all(cfs == x, axis=1)), "the query itself returned"
    for j, f in enumerate(schema.features):
        if f.kind is not Kind.CONTINUOUS:
            assert np.all(cfs[:, j] == np.round(cfs[:, j]))
        if f.kind is Kind.CATEGORICAL:
            assert set(cfs[:, j].astype(int)) <= set(range(len(f.categories)))


def explain_checked(name: str, ex: GeneticExplainer, queries: int, k: int, seed: int) -> list:
    """``queries`` random test rows of ``name``, each explained and :func:`check`-ed."""
    data, model, _ = problem(name)
    rows = np.random.default_rng(seed).choice(len(data.X_test), size=queries, replace=False)
    out = []
    for q, t in targets_for(data, model, rows):
        exp = ex.explain(data.X_test[q], t, k, np.random.default_rng(q))
        check(data, model, data.X_test[q], t, exp)
        out.append(exp)
    return out


# --------------------------------------------------------------------------- the hot path


def test_compiled_predictor_is_the_hot_path(monkeypatch):
    data, model, _ = problem("iris")
    ex = explainer("iris")
    assert isinstance(ex.predictor, CompiledForest) and ex.exact

    def forbidden(*a, **k):
        raise AssertionError("the estimator was called inside the search")

    x = data.X_test[0]
    t = (int(model.estimator.predict(x[None])[0]) + 1) % data.n_classes
    monkeypatch.setattr(model.estimator, "predict_proba", forbidden)
    monkeypatch.setattr(model.estimator, "predict", forbidden)
    exp = ex.explain(x, t, 5, np.random.default_rng(0))
    monkeypatch.undo()
    check(data, model, x, t, exp)
    assert exp.n_found > 0


def test_method_factory_builds_dpg_ga_from_its_config():
    prob, _, bounds = problem("iris")
    cfg = compose_config(["method.ga.population_size=20", "method.time_limit=5"])
    ex = method_factory(cfg.method)(prob, prob.schema, bounds)
    assert isinstance(ex, GeneticExplainer) and ex.params.population_size == 20
    assert ex.time_limit == 5 and ex.bounds is bounds
    assert isinstance(ex.params, GAConfig)


@pytest.mark.parametrize(
    "ga, message",
    [
        (
            {"populaton_size": 5},
            "method.ga.populaton_size is not a config key (however it is added, "
            "+ included); did you mean method.ga.population_size?",
        ),
        ({"population_size": -5}, "method.ga.population_size=-5 is not allowed: expected >= 2"),
        (
            {"population_size": "big"},
            "method.ga.population_size='big' is not allowed: expected an integer",
        ),
        ({"operators": {"mate": "cxNoSuch"}}, "method.ga.operators.mate='cxNoSuch' is not allowed"),
    ],
)
def test_bad_ga_settings_are_one_config_error(ga, message):
    prob, _, bounds = problem("iris")
    with pytest.raises(ConfigError) as err:
        ex = GeneticExplainer(prob, prob.schema, bounds, ga=ga)
        ex.explain(prob.X_test[0], 0, 1, np.random.default_rng(0))
    assert message in str(err.value) and "\n" not in str(err.value)


# --------------------------------------------------------------------------- validity


@pytest.mark.parametrize("name", ["iris", "german_credit", "diabetes"])
def test_valid_actionable_distinct(name):
    data, _, _ = problem(name)
    explanations = explain_checked(name, explainer(name), queries=6, k=5, seed=1)
    for exp in explanations:
        assert len(exp.best_fitness) == len(exp.mean_fitness) == exp.generations
        assert exp.best_per_generation.shape == (exp.generations, len(data.schema))
    assert sum(e.n_found for e in explanations) >= 6 * 5 * 0.9


DEAP_OPERATORS = {
    "vectorised": {},
    "cxBlend": {"mate": "cxBlend", "mate_args": {"alpha": 0.5}},
    "mutGaussian": {
        "mutate": "mutGaussian",
        "mutate_args": {"mu": 0.0, "sigma": 0.5, "indpb": 0.3},
    },
    "selTournament": {"select": "selTournament", "select_args": {"tournsize": 3}},
}


@pytest.mark.parametrize("which", list(DEAP_OPERATORS))
def test_every_operator_path_returns_valid_counterfactuals(which, monkeypatch):
    """The vectorised default and deap.tools operators through the per-individual adapter:
    the named DEAP function really runs, and what the GA returns (flip search off, so the
    population's own rows are what comes back) is valid by the estimator's own predict."""
    from deap import tools

    ops = DEAP_OPERATORS[which]
    calls = {"n": 0}
    if ops:
        name = next(v for k, v in ops.items() if not k.endswith("_args"))
        real = getattr(tools, name)

        def counted(*args, **kwargs):
            calls["n"] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(tools, name, counted)
    ex = explainer("german_credit", params={**FAST, "flip_beam": 0, "operators": ops})
    explanations = explain_checked("german_credit", ex, queries=3, k=3, seed=3)
    assert sum(e.n_found for e in explanations) >= 3
    if ops:
        assert calls["n"] > 0, f"{name} was never called"


def test_actionability_all_rules_random_queries():
    """Random directional / frozen rules on every feature, many queries: never a violation."""
    data, model, bounds = problem("diabetes")
    rng = np.random.default_rng(7)
    names = data.schema.names
    rules = [Rule.NONE, Rule.NON_INCREASING, Rule.NON_DECREASING, Rule.NO_CHANGE]
    seen = set()
    for trial in range(16):
        picks = rng.integers(0, 4, len(names))
        assign = {n: rules[int(i)] for n, i in zip(names, picks, strict=True)}
        schema = data.schema.with_rules(assign)
        ex = explainer(
            "diabetes",
            schema=schema,
            params={"population_size": 20, "max_generations": 6, "patience": 2},
        )
        q = int(rng.integers(len(data.X_test)))
        x = data.X_test[q]
        t = 1 - int(model.estimator.predict(x[None])[0])
        exp = ex.explain(x, t, 5, np.random.default_rng(trial))
        check(data, model, x, t, exp, schema)
        for r in assign.values():
            seen.add(r)
    assert seen == set(rules)


def test_categories_and_integers_german_credit():
    data, model, _ = problem("german_credit")
    schema = data.schema
    assert schema.categorical.sum() == 13 and schema.integer.any()
    ex = explainer("german_credit")
    x = data.X_test[3]
    t = 1 - int(model.estimator.predict(x[None])[0])
    exp = ex.explain(x, t, 5, np.random.default_rng(0))
    check(data, model, x, t, exp)
    assert exp.n_found > 0
    cfs = exp.counterfactuals
    j = schema.index("personal_status_sex")  # no_change in the dataset config
    assert np.all(cfs[:, j] == x[j])
    j = schema.index("age")  # non_decreasing
    assert np.all(cfs[:, j] >= x[j])
    decoded = data.decode(cfs)
    assert set(decoded["purpose"]) <= set(schema.features[schema.index("purpose")].categories)


def test_fewer_regions_than_k_returns_fewer_never_duplicates():
    """yeast_ml8's forest (4 trees, depth 3) has few valid regions near a query."""
    data, model, _ = problem("yeast_ml8")
    ex = explainer("yeast_ml8")
    for q in (0, 1):
        x = data.X_test[q]
        t = 1 - int(model.estimator.predict(x[None])[0])
        exp = ex.explain(x, t, 10, np.random.default_rng(q))
        check(data, model, x, t, exp)


# --------------------------------------------------------------------------- no counterfactual


def test_query_already_in_target_class():
    data, model, _ = problem("iris")
    x = data.X_test[0]
    own = int(model.estimator.predict(x[None])[0])
    exp = explainer("iris").explain(x, own, 5, np.random.default_rng(0))
    assert exp.n_found == 0 and "already" in exp.reason


def test_impossible_target_every_feature_frozen():
    data, model, _ = problem("iris")
    schema = data.schema.with_rules({n: "no_change" for n in data.schema.names})
    x = data.X_test[0]
    t = (int(model.estimator.predict(x[None])[0]) + 1) % 3
    exp = explainer("iris", schema=schema).explain(x, t, 5, np.random.default_rng(0))
    assert exp.n_found == 0 and "actionability" in exp.reason


def test_unknown_target_is_an_error():
    data, _, _ = problem("iris")
    with pytest.raises(ValueError, match="target=7"):
        explainer("iris").explain(data.X_test[0], 7, 5, np.random.default_rng(0))


# --------------------------------------------------------------------------- determinism


def test_same_seed_identical_different_seed_differs():
    data, model, _ = problem("german_credit")
    x = data.X_test[5]
    t = 1 - int(model.estimator.predict(x[None])[0])
    runs = [
        explainer("german_credit").explain(x, t, 5, np.random.default_rng(s)) for s in (11, 11, 12)
    ]
    a, b, c = (r.counterfactuals for r in runs)
    assert np.array_equal(a, b)
    assert np.array_equal(runs[0].best_fitness, runs[1].best_fitness)
    assert not np.array_equal(
        runs[0].best_per_generation, runs[2].best_per_generation
    ) or not np.array_equal(a, c)


def test_time_limit_stops_evolution():
    data, model, _ = problem("iris")
    x = data.X_test[1]
    t = (int(model.estimator.predict(x[None])[0]) + 1) % 3
    ex = explainer("iris", params={"max_generations": 500, "patience": 500}, time_limit=1e-6)
    exp = ex.explain(x, t, 5, np.random.default_rng(0))
    assert exp.timed_out and exp.generations == 1
    check(data, model, x, t, exp)


# --------------------------------------------------------------------------- building blocks


def test_feature_scale_and_mixed_distance():
    data, _, _ = problem("german_credit")
    scale = feature_scale(data.X_train, data.schema)
    assert np.all(scale[data.schema.categorical] == 1.0) and np.all(scale > 0)
    m = MixedDistance(scale, data.schema.categorical)
    A, B = m.scaled(data.X_train[:5]), m.scaled(data.X_train[5:9])
    D = m.pairwise(A, B)
    manual = np.minimum(np.abs(A[:, None] - B[None]), m.cap).sum(-1)
    assert np.allclose(D, manual)
    assert np.allclose(m.nearest(A, B), manual.min(1))


def test_search_space_repair_snaps_and_respects_rules():
    data, _, bounds = problem("diabetes")
    schema = data.schema.with_rules(
        {"Glucose": "non_increasing", "BMI": "non_decreasing", "Age": "no_change"}
    )
    x = data.X_test[0].copy()
    x[schema.index("BMI")] += 1e-5  # an off-grid query value stays itself
    space = SearchSpace.build(x, 1, schema, bounds)
    rng = np.random.default_rng(0)
    pop = x + rng.normal(0, 30, (200, len(x)))
    pop[:50] = x
    out = space.repair(pop)
    assert np.all(out[:50] == x)
    assert np.all(actionability_violations(x, out, schema.rules) == 0)
    ints = ~schema.continuous
    assert np.all(out[:, ints] == np.round(out[:, ints]))
    vals = space.sample_target(rng, 100)
    assert np.all(vals >= space.lo - 1e-9) and np.all(vals <= space.hi + 1e-9)


def test_split_edges_follow_sklearn_float32_rule():
    data, model, _ = problem("diabetes")
    edges = SplitEdges.from_estimator(model.estimator, data.schema)
    assert edges is not None
    thr = np.concatenate(
        [t.tree_.threshold[t.tree_.feature == 1] for t in model.estimator.estimators_]
    )
    t = np.unique(thr)
    right, left = edges.right[1], edges.left[1]
    assert np.all(right.astype(np.float32).astype(float) > t)
    assert np.all(left.astype(np.float32).astype(float) <= t)
    assert SplitEdges.from_estimator(object(), data.schema) is None


def test_nsga2_matches_deap():
    rng = np.random.default_rng(3)
    for n, k in ((12, 5), (40, 15), (60, 20)):
        F = rng.random((n, 3))
        assert set(nsga2_select(F, k)) == set(deap_nsga2_select(F, k))


def test_greedy_diverse_never_picks_copies():
    m = MixedDistance(np.ones(2), np.zeros(2, dtype=bool))
    X = np.array([[0.0, 0], [0, 0], [1, 1], [1, 1], [2, 2]])
    pick = greedy_diverse(X, np.zeros(5), 5, 1.0, m, 0.5)
    assert len(np.unique(X[pick], axis=0)) == len(pick) == 3


def test_non_tree_model_is_rechecked_with_estimator():
    from sklearn.linear_model import LogisticRegression

    data, _, _ = problem("iris")
    est = LogisticRegression(max_iter=500).fit(data.X_train, data.y_train)
    linear = Problem.from_fitted(est, data.X_train, data.y_train, schema=data.schema)
    assert linear.trees is None
    ex = GeneticExplainer(linear, linear.schema, None, ga=FAST)
    assert not ex.exact and ex.edges is None
    x = data.X_test[0]
    t = (int(est.predict(x[None])[0]) + 1) % 3
    exp = ex.explain(x, t, 5, np.random.default_rng(0))
    assert exp.n_found > 0 and np.all(est.predict(exp.counterfactuals) == t)
