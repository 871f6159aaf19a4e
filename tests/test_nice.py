"""NICE (nicex) through its plug-in constructor and ``conf/method/nice.yaml``."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf
from test_dice import (
    METHOD_CONF,
    check,
    load,
    method_config,
    other_target,
    plugin,
    with_permitted,
)

from cfgen.baselines.autoencoder import ReconstructionError
from cfgen.errors import ConfigError

MODES = ("sparsity", "proximity", "plausibility")
DATASETS = ("iris", "diabetes", "german_credit")


def heom(problem, x, rows):
    """NICE's HEOM distance (min-max numerics + categorical mismatches) from ``x``, by hand."""
    X = problem.X_train
    cat = problem.schema.categorical
    scale = np.maximum(X.max(axis=0) - X.min(axis=0), 1e-11)
    diff = np.abs(np.atleast_2d(rows) - x)
    return np.where(cat, diff > 0, diff / scale).sum(axis=1)


def test_config_builds_the_plugin_and_names_the_mode():
    from cfgen.baselines.nice import NiceExplainer

    p = load("iris")
    ex = plugin("nice", p)
    assert isinstance(ex, NiceExplainer) and not NiceExplainer.needs_bounds
    assert (ex.name, ex.mode, ex.autoencoder) == ("nice_sparsity", "sparsity", None)
    ex = plugin("nice", p, mode="plausibility")
    assert ex.name == "nice_plausibility" and isinstance(ex.autoencoder, ReconstructionError)
    for mode in MODES:  # nice_<mode>.yaml: nice.yaml with the mode set, for one sweep
        assert plugin(f"nice_{mode}", p).name == f"nice_{mode}"
        cfg = method_config(f"nice_{mode}", time_limit=5)
        assert cfg == method_config("nice", mode=mode, time_limit=5)
    for file in ("nice", *(f"nice_{m}" for m in MODES)):
        for line in (METHOD_CONF / f"{file}.yaml").read_text().splitlines():
            assert line.startswith("#") or "#" in line, f"key without a comment: {line}"
    raw = OmegaConf.load(METHOD_CONF / "nice.yaml")
    assert raw._target_ == "cfgen.baselines.nice.NiceExplainer" and raw._partial_ is True


def test_bad_settings_name_the_key():
    p = load("iris")
    with pytest.raises(ConfigError, match=r"method.mode='diversity' is not allowed"):
        plugin("nice", p, mode="diversity")
    with pytest.raises(ConfigError, match=r"method.num_normalization='l2' is not allowed"):
        plugin("nice", p, num_normalization="l2")
    with pytest.raises(ConfigError, match=r"method.time_limit=-1 is not allowed"):
        plugin("nice", p, time_limit=-1)
    with pytest.raises(ConfigError, match=r"target=3 is not allowed"):
        plugin("nice", p).explain(p.X_test[0], 3, 1, np.random.default_rng(0))


@pytest.mark.parametrize("name", DATASETS)
def test_valid_rows_that_mix_the_query_and_one_neighbour(name):
    """Each mode: valid, rules kept, values from x or the shared neighbour, no farther than it."""
    p = load(name)
    exs = {m: plugin("nice", p, mode=m) for m in MODES}
    found = 0
    for q in range(8):
        x, t = other_target(p, q)
        res = {m: ex.explain(x, t, 1, np.random.default_rng(q)) for m, ex in exs.items()}
        neighbours = {tuple(r.extra["neighbour"]) for r in res.values()}
        assert len(neighbours) == 1  # the nearest unlike neighbour does not depend on the mode
        nn = np.array(neighbours.pop())
        assert p.estimator.predict(nn[None])[0] == t
        for m, r in res.items():
            check(p, x, t, r)
            assert (
                r.n_found == 1
                and r.reason is None
                and r.roles
                == [
                    {"sparsity": "sparsest", "proximity": "closest", "plausibility": "plausible"}[m]
                ]
            )
            cf = r.counterfactuals[0]
            assert np.all((cf == x) | (cf == nn)) and r.extra["changed"] == np.sum(cf != x)
            assert heom(p, x, cf)[0] <= heom(p, x, nn)[0] + 1e-9
            found += 1
    assert found == 8 * len(MODES)


@pytest.mark.parametrize("name", ["diabetes", "german_credit"])
def test_sparsity_takes_one_change_when_one_suffices(name):
    """Binary task: if copying one neighbour value flips the class, sparsity mode does just that.

    (Its first step copies the value that raises the target probability most; in a binary task
    any flipping copy has target probability > 0.5, so the best one flips too.)
    """
    p = load(name)
    ex = plugin("nice", p, mode="sparsity")
    oracle_hits = 0
    for q in range(20):
        x, t = other_target(p, q)
        r = ex.explain(x, t, 1, np.random.default_rng(0))
        nn = np.array(r.extra["neighbour"])
        J = np.flatnonzero(nn != x)
        singles = np.tile(x, (len(J), 1))
        singles[np.arange(len(J)), J] = nn[J]
        if np.any(p.predictor.predict(singles) == t):
            oracle_hits += 1
            assert r.extra["changed"] == 1, q
        else:
            assert r.extra["changed"] >= 2, q
    assert oracle_hits >= 5  # the oracle was exercised


def test_modes_give_different_rows():
    p = load("german_credit")
    exs = {m: plugin("nice", p, mode=m) for m in MODES}
    rows: dict[str, list[np.ndarray]] = {m: [] for m in MODES}
    for q in range(20):
        x, t = other_target(p, q)
        for m, ex in exs.items():
            rows[m].append(ex.explain(x, t, 1, np.random.default_rng(0)).counterfactuals)
    for a, b in (
        ("sparsity", "proximity"),
        ("sparsity", "plausibility"),
        ("proximity", "plausibility"),
    ):
        assert any(not np.array_equal(ra, rb) for ra, rb in zip(rows[a], rows[b], strict=True))


def test_rules_hold_where_the_neighbour_would_break_them():
    """diabetes: Age / Pregnancies only grow, the pedigree stays; rows still found."""
    p = load("diabetes")
    s = p.schema
    ex = plugin("nice", p, mode="proximity")
    free = plugin("nice", p, s.with_rules({n: "none" for n in s.names}), mode="proximity")
    broken = 0
    for q in range(20):
        x, t = other_target(p, q)
        r = ex.explain(x, t, 1, np.random.default_rng(0))
        check(p, x, t, r)
        assert r.n_found == 1
        cf = free.explain(x, t, 1, np.random.default_rng(0)).counterfactuals
        pi = s.index("DiabetesPedigreeFunction")
        broken += int(cf[0, pi] != x[pi])
    assert broken > 0  # without the rules NICE moves the pedigree: the rules did the work


def test_permitted_range_and_k_above_one():
    p = load("german_credit")
    ai = p.schema.index("credit_amount")
    x, t = other_target(p, 5)
    free = plugin("nice", p).explain(x, t, 1, np.random.default_rng(0)).counterfactuals
    assert free[0, ai] > x[ai]  # unconstrained, NICE raises the amount: the range binds
    schema = with_permitted(p.schema, credit_amount=(0.0, float(x[ai])))
    r = plugin("nice", p, schema).explain(x, t, 3, np.random.default_rng(0))
    check(p, x, t, r, schema)
    assert r.n_found == 1 and "one counterfactual per query" in r.reason
    assert r.counterfactuals[0, ai] <= x[ai]


def test_same_settings_give_byte_identical_rows():
    p = load("german_credit")
    for mode in MODES:
        a, b = plugin("nice", p, mode=mode), plugin("nice", p, mode=mode)
        for q in (0, 4):
            x, t = other_target(p, q)
            ra = a.explain(x, t, 1, np.random.default_rng(1)).counterfactuals
            a.explain(p.X_test[7], t, 1, np.random.default_rng(2))
            rb = b.explain(x, t, 1, np.random.default_rng(99)).counterfactuals  # rng unused
            assert ra.tobytes() == rb.tobytes()


def test_autoencoder_learns_the_data_and_is_seeded():
    p = load("german_credit")
    a = ReconstructionError(p.X_train, p.schema, seed=3)
    b = ReconstructionError(p.X_train, p.schema, seed=3)
    assert a(p.X_test).tobytes() == b(p.X_test).tobytes()
    assert a(p.X_test).shape == (len(p.X_test),)
    shuffled = np.random.default_rng(0).permuted(p.X_test, axis=0)  # columns shuffled apart
    assert np.median(a(p.X_test)) < np.median(a(shuffled))


def test_time_limit_and_other_reasons():
    p = load("iris")
    x, t = other_target(p, 0)
    r = plugin("nice", p, time_limit=1e-9).explain(x, t, 1, np.random.default_rng(0))
    assert r.n_found == 0 and r.timed_out and r.extra["timed_out"] and "time limit" in r.reason
    own = int(p.estimator.predict(x[None])[0])
    r = plugin("nice", p).explain(x, own, 1, np.random.default_rng(0))
    assert r.n_found == 0 and "already" in r.reason
    frozen = p.schema.with_rules({n: "no_change" for n in p.schema.names})
    r = plugin("nice", p, frozen).explain(x, t, 1, np.random.default_rng(0))
    assert r.n_found == 0 and "actionability" in r.reason
    petal = [n for n in p.schema.names if "petal" in n]
    sepal_only = p.schema.with_rules({n: "no_change" for n in petal})
    reasons = {
        plugin("nice", p, sepal_only)
        .explain(*other_target(p, q), 1, np.random.default_rng(0))
        .reason
        for q in range(10)
    }
    assert any(r and "no training row" in r for r in reasons)
