"""DiCE adapters (random / genetic / kdtree) behind the Explainer interface."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from test_search import problem

from cfgen.baselines.dice import DiceExplainer
from cfgen.methods import build_explainer
from cfgen.schema import actionability_violations

pytest.importorskip("dice_ml")


def check(data, model, x, target, exp, schema=None):
    schema = schema or data.schema
    cfs = exp.counterfactuals
    assert cfs.shape == (len(cfs), len(schema))
    if len(cfs) < exp.k:
        assert exp.reason, "fewer than k without a reason"
    if len(cfs):
        assert np.all(model.estimator.predict(cfs) == target)
        assert np.all(model.estimator.predict(data.round(cfs)) == target)
        assert np.all(actionability_violations(x, cfs, schema.rules) == 0)
        assert len(np.unique(cfs, axis=0)) == len(cfs)
        for j, f in enumerate(schema.features):
            if f.kind.value != "continuous":
                assert np.all(cfs[:, j] == np.round(cfs[:, j]))


@pytest.mark.parametrize("method", ["random", "genetic", "kdtree"])
def test_iris_valid_rows_or_reason(method):
    data, model, bounds = problem("iris")
    ex = build_explainer(f"dice_{method}", {}, model, data, bounds)
    assert isinstance(ex, DiceExplainer) and ex.method == method
    found = 0
    for q in (0, 7):
        x = data.X_test[q]
        t = (int(model.estimator.predict(x[None])[0]) + 1) % 3
        exp = ex.explain(x, t, 4, np.random.default_rng(q))
        check(data, model, x, t, exp)
        found += exp.n_found
    assert found > 0


@pytest.mark.parametrize("method", ["random", "genetic", "kdtree"])
def test_german_credit_categoricals_and_rules(method):
    """Category strings in, codes out; no_change / non_decreasing respected (pandas 3 run)."""
    data, model, bounds = problem("german_credit")
    ex = DiceExplainer(model.estimator, data, data.schema, method=method, time_limit=60)
    x = data.X_test[3]
    t = 1 - int(model.estimator.predict(x[None])[0])
    exp = ex.explain(x, t, 3, np.random.default_rng(0))
    check(data, model, x, t, exp)
    assert exp.n_found > 0 or exp.reason
    if exp.n_found:
        s = data.schema
        assert np.all(exp.counterfactuals[:, s.index("personal_status_sex")]
                      == x[s.index("personal_status_sex")])
        assert np.all(exp.counterfactuals[:, s.index("age")] >= x[s.index("age")])


def test_seeded_genetic_is_reproducible():
    data, model, _ = problem("iris")
    ex = DiceExplainer(model.estimator, data, data.schema, method="genetic")
    x = data.X_test[2]
    t = (int(model.estimator.predict(x[None])[0]) + 1) % 3
    a = ex.explain(x, t, 3, np.random.default_rng(5)).counterfactuals
    ex.explain(data.X_test[9], t, 3, np.random.default_rng(1))  # state must not leak
    b = ex.explain(x, t, 3, np.random.default_rng(5)).counterfactuals
    assert np.array_equal(a, b)


def test_no_counterfactual_cases_are_reasons():
    data, model, _ = problem("iris")
    x = data.X_test[0]
    own = int(model.estimator.predict(x[None])[0])
    ex = DiceExplainer(model.estimator, data, data.schema, method="random")
    exp = ex.explain(x, own, 3, np.random.default_rng(0))
    assert exp.n_found == 0 and "already" in exp.reason
    frozen = data.schema.with_rules({n: "no_change" for n in data.schema.names})
    ex = DiceExplainer(model.estimator, data, frozen, method="genetic")
    exp = ex.explain(x, (own + 1) % 3, 3, np.random.default_rng(0))
    assert exp.n_found == 0 and "actionability" in exp.reason


def test_time_limit_is_a_reason_not_an_error():
    data, model, _ = problem("iris")
    ex = DiceExplainer(model.estimator, data, data.schema, method="random", time_limit=1e-9)
    x = data.X_test[0]
    t = (int(model.estimator.predict(x[None])[0]) + 1) % 3
    exp = ex.explain(x, t, 3, np.random.default_rng(0))
    assert exp.n_found == 0 and exp.extra["timed_out"] and "time limit" in exp.reason
    # the global random state DiCE used is restored
    state = np.random.get_state()[1].copy()
    ex.explain(x, t, 3, np.random.default_rng(0))
    assert np.array_equal(state, np.random.get_state()[1])


def test_bad_method_and_lazy_import():
    data, model, _ = problem("iris")
    with pytest.raises(ValueError, match="not supported"):
        DiceExplainer(model.estimator, data, data.schema, method="gradient")
    code = ("import sys, cfgen.baselines, cfgen.methods, cfgen.search; "
            "assert 'dice_ml' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr
