"""DiCE (random / genetic / kdtree) through its plug-in constructor and its method configs."""

from __future__ import annotations

import functools
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import compose_config
from hydra.utils import instantiate
from omegaconf import OmegaConf

import cfgen
from cfgen.baselines.ranges import allowed_box
from cfgen.errors import ConfigError
from cfgen.problem import Problem
from cfgen.schema import Feature, FeatureSchema, Kind, Rule, actionability_violations

METHOD_CONF = Path(cfgen.__file__).parent / "conf" / "method"


@functools.cache
def load(name: str) -> Problem:
    """The problem (dataset with its paper forest) the app would build."""
    cfg = compose_config([f"dataset={name}"])
    return Problem.from_config(cfg.dataset, cfg.model)


def method_config(file: str, **overrides):
    """``cfg.method`` for ``method=<file>`` (Hydra composition), plus ``overrides``."""
    cfg = compose_config([f"method={file}"])
    OmegaConf.set_struct(cfg, False)  # overrides may set keys the file leaves out
    return OmegaConf.merge(cfg, {"method": overrides}).method


def plugin(file: str, problem, schema=None, **overrides):
    """``instantiate(cfg.method)(problem, schema, None)`` for ``method=<file>``."""
    return instantiate(method_config(file, **overrides))(problem, schema or problem.schema, None)


def with_permitted(schema: FeatureSchema, **ranges: tuple[float, float]) -> FeatureSchema:
    return FeatureSchema(tuple(replace(f, permitted=ranges.get(f.name)) for f in schema.features))


def other_target(problem, q: int) -> tuple[np.ndarray, int]:
    x = problem.X_test[q]
    own = int(problem.estimator.predict(x[None])[0])
    return x, (own + 1 + q % max(problem.n_classes - 1, 1)) % problem.n_classes


def check(problem, x, target, exp, schema=None):
    """Valid by the estimator's own predict, rules and permitted ranges kept, distinct, encoded."""
    schema = schema or problem.schema
    cfs = exp.counterfactuals
    assert cfs.shape == (len(cfs), len(schema)) and len(cfs) <= exp.k
    if len(cfs) < exp.k:
        assert exp.reason, "fewer than k without a reason"
    if len(cfs):
        assert np.all(problem.estimator.predict(cfs) == target)
        assert np.all(problem.estimator.predict(problem.round(cfs)) == target)
        assert np.all(actionability_violations(x, cfs, schema.rules) == 0)
        assert np.all(allowed_box(schema, x).contains(cfs))
        assert len(np.unique(cfs, axis=0)) == len(cfs)
        for j, f in enumerate(schema.features):
            if f.kind is not Kind.CONTINUOUS:
                assert np.all(cfs[:, j] == np.round(cfs[:, j]))
            p = getattr(f, "permitted", None)
            if p is not None:
                assert np.all((cfs[:, j] >= p[0]) & (cfs[:, j] <= p[1])), f.name


def test_box_by_hand():
    """Rules cap / floor at the query, permitted ranges intersect, integers round inwards."""
    s = FeatureSchema(
        (
            Feature("a", Kind.CONTINUOUS, 0.0, 10.0, permitted=(2.0, 8.0)),
            Feature("b", Kind.INTEGER, 0.0, 10.0, rule=Rule.NON_DECREASING, permitted=(0.5, 6.5)),
            Feature(
                "c", Kind.CATEGORICAL, 0.0, 3.0, ("w", "x", "y", "z"), rule=Rule.NON_INCREASING
            ),
            Feature("d", Kind.CONTINUOUS, 0.0, 1.0, rule=Rule.NO_CHANGE),
            Feature("e", Kind.CONTINUOUS, 0.0, 1.0),
        )
    )
    box = allowed_box(s, np.array([5.0, 3.0, 2.0, 0.25, 1.5]))
    assert box.lo.tolist() == [2.0, 3.0, 0.0, 0.25, 0.0]
    assert box.hi.tolist() == [8.0, 6.0, 2.0, 0.25, 1.5]  # e widened to hold the query
    assert box.blocked is None
    frozen = FeatureSchema((replace(s.features[0], rule=Rule.NO_CHANGE),))
    assert allowed_box(frozen, np.array([9.0])).blocked == "a"  # query outside permitted


@pytest.mark.parametrize("file", ["dice_random", "dice_genetic", "dice_kdtree"])
def test_configs_build_the_plugin_with_their_settings(file):
    from cfgen.baselines.dice import DiceExplainer

    p = load("iris")
    raw = dict(OmegaConf.load(METHOD_CONF / f"{file}.yaml"))
    ex = plugin(file, p)
    assert isinstance(ex, DiceExplainer) and not DiceExplainer.needs_bounds
    assert ex.name == file and ex.strategy == file.removeprefix("dice_")
    own = {
        k: v
        for k, v in raw.items()
        if k not in ("_target_", "_partial_", "name", "time_limit", "strategy")
    }
    assert ex.options == own and own  # every option in the file reaches DiCE
    for line in (METHOD_CONF / f"{file}.yaml").read_text().splitlines():
        assert line.startswith("#") or "#" in line, f"key without a comment: {line}"


def test_bad_settings_name_the_key():
    p = load("iris")
    with pytest.raises(ConfigError, match=r"method.strategy='gradient' is not allowed"):
        plugin("dice_random", p, strategy="gradient")
    with pytest.raises(ConfigError, match=r"method.diversity_weight=5.0 .* strategy random"):
        plugin("dice_random", p, diversity_weight=5.0)
    with pytest.raises(ConfigError, match=r"method.sample_size=0 is not allowed"):
        plugin("dice_random", p, sample_size=0)
    with pytest.raises(ConfigError, match=r"method.posthoc_sparsity_algorithm='fast'"):
        plugin("dice_kdtree", p, posthoc_sparsity_algorithm="fast")
    with pytest.raises(ConfigError, match=r"method.time_limit=0 is not allowed"):
        plugin("dice_genetic", p, time_limit=0)


@pytest.mark.parametrize("file", ["dice_random", "dice_genetic", "dice_kdtree"])
def test_iris_valid_rows_or_reason(file):
    p = load("iris")
    ex = plugin(file, p)
    found = 0
    for q in (0, 7):
        x, t = other_target(p, q)
        exp = ex.explain(x, t, 4, np.random.default_rng(q))
        check(p, x, t, exp)
        assert not exp.timed_out and exp.extra["method"] == file
        found += exp.n_found
    assert found > 0


@pytest.mark.parametrize("file", ["dice_random", "dice_genetic", "dice_kdtree"])
def test_german_credit_categoricals_and_rules(file):
    """Category strings in, codes out; no_change / non_decreasing respected (pandas 3 run)."""
    p = load("german_credit")
    ex = plugin(file, p, time_limit=60)
    x, t = other_target(p, 3)
    exp = ex.explain(x, t, 3, np.random.default_rng(0))
    check(p, x, t, exp)
    assert exp.n_found > 0 or exp.reason
    s = p.schema
    cfs = exp.counterfactuals
    assert np.all(cfs[:, s.index("personal_status_sex")] == x[s.index("personal_status_sex")])
    assert np.all(cfs[:, s.index("age")] >= x[s.index("age")])


@pytest.mark.parametrize("file", ["dice_random", "dice_genetic"])
def test_diabetes_rules_and_permitted_range(file):
    """Age / Pregnancies only grow, the pedigree stays; a permitted Glucose range holds."""
    p = load("diabetes")
    x, t = other_target(p, 2)
    gi = p.schema.index("Glucose")
    lo, hi = x[gi] - 15, x[gi] + 15
    free = plugin(file, p).explain(x, t, 4, np.random.default_rng(3)).counterfactuals
    assert np.any(np.abs(free[:, gi] - x[gi]) > 15)  # the range below binds
    schema = with_permitted(p.schema, Glucose=(lo, hi))
    exp = plugin(file, p, schema).explain(x, t, 4, np.random.default_rng(3))
    check(p, x, t, exp, schema)
    assert exp.n_found > 0
    cfs = exp.counterfactuals
    assert np.all((cfs[:, gi] >= lo) & (cfs[:, gi] <= hi))
    assert np.all(
        cfs[:, p.schema.index("DiabetesPedigreeFunction")]
        == x[p.schema.index("DiabetesPedigreeFunction")]
    )


@pytest.mark.parametrize("file", ["dice_random", "dice_genetic", "dice_kdtree"])
def test_same_seed_gives_byte_identical_rows(file):
    p = load("iris")
    ex = plugin(file, p)
    x, t = other_target(p, 2)
    a = ex.explain(x, t, 3, np.random.default_rng(5)).counterfactuals
    ex.explain(p.X_test[9], (t + 1) % 3, 3, np.random.default_rng(1))  # state must not leak
    b = ex.explain(x, t, 3, np.random.default_rng(5)).counterfactuals
    c = plugin(file, p).explain(x, t, 3, np.random.default_rng(5)).counterfactuals
    assert len(a) and a.tobytes() == b.tobytes() == c.tobytes()


def test_no_counterfactual_cases_are_reasons():
    p = load("iris")
    x = p.X_test[0]
    own = int(p.estimator.predict(x[None])[0])
    exp = plugin("dice_random", p).explain(x, own, 3, np.random.default_rng(0))
    assert exp.n_found == 0 and "already" in exp.reason
    frozen = p.schema.with_rules({n: "no_change" for n in p.schema.names})
    exp = plugin("dice_genetic", p, frozen).explain(x, (own + 1) % 3, 3, np.random.default_rng(0))
    assert exp.n_found == 0 and "actionability" in exp.reason
    name = p.schema.names[0]
    blocked = with_permitted(
        p.schema.with_rules({name: "no_change"}), **{name: (x[0] + 1, x[0] + 2)}
    )
    exp = plugin("dice_random", p, blocked).explain(x, (own + 1) % 3, 3, np.random.default_rng(0))
    assert exp.n_found == 0 and f"feature {name!r}" in exp.reason
    assert "no allowed value" in exp.reason


def test_time_limit_is_a_reason_not_an_error():
    p = load("iris")
    ex = plugin("dice_random", p, time_limit=1e-9)
    x, t = other_target(p, 0)
    exp = ex.explain(x, t, 3, np.random.default_rng(0))
    assert exp.n_found == 0 and exp.timed_out and exp.extra["timed_out"]
    assert "time limit" in exp.reason
    # the global random state DiCE used is restored
    state = np.random.get_state(legacy=False)["state"]["key"].copy()
    ex.explain(x, t, 3, np.random.default_rng(0))
    assert np.array_equal(state, np.random.get_state(legacy=False)["state"]["key"])


def test_lazy_import():
    code = (
        "import sys, cfgen.baselines, cfgen.methods, cfgen.search; "
        "assert 'dice_ml' not in sys.modules and 'nice' not in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr
