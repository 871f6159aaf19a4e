"""Planning: combination order and choice, task order and seeds, worker-count validation."""

from __future__ import annotations

import itertools
import tracemalloc

import pytest

from cfgen.config import validate
from cfgen.errors import ConfigError
from cfgen.plan import MAX_TASKS, Combinations, Task, choose_queries, derive_seed, plan_tasks
from cfgen.runner import resolve_workers
from cfgen.schema import Rule

RULES4 = ("none", "no_change", "non_increasing", "non_decreasing")


def test_order_is_itertools_product_last_feature_fastest():
    comb = Combinations(("a", "b", "c"), ("none", "no_change", "non_decreasing"))
    assert comb.total == 27
    expected = [dict(zip(comb.free, map(Rule, p), strict=True))
                for p in itertools.product(comb.rules, repeat=3)]
    assert [comb[i] for i in range(comb.total)] == expected
    assert comb[0] == {"a": Rule.NONE, "b": Rule.NONE, "c": Rule.NONE}
    assert comb[1] == {"a": Rule.NONE, "b": Rule.NONE, "c": Rule.NO_CHANGE}
    assert comb[3] == {"a": Rule.NONE, "b": Rule.NO_CHANGE, "c": Rule.NONE}
    assert all(comb.index(comb[i]) == i for i in range(comb.total))
    assert comb.label(0) == "all free"
    assert comb.label(5) == "b=no_change, c=non_decreasing"
    with pytest.raises(IndexError):
        comb[27]


def test_repeated_rules_dropped_and_no_free_feature():
    assert Combinations(("a",), ("none", "none", "no_change")).rules == ("none", "no_change")
    empty = Combinations((), RULES4)
    assert empty.total == 1 and empty[0] == {} and empty.chosen(None) == [0]


def test_huge_product_is_never_materialised():
    comb = Combinations(tuple(f"f{i}" for i in range(100)), RULES4)
    assert comb.total == 4**100
    tracemalloc.start()
    chosen = comb.chosen(10, seed=42)
    last = comb[comb.total - 1]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000, f"{peak} bytes: the product was materialised"
    assert len(set(chosen)) == 10 and chosen == sorted(chosen)
    assert all(r is Rule.NON_DECREASING for r in last.values())
    with pytest.raises(ConfigError, match="experiment_params.num_combinations_to_test"):
        comb.chosen(None)  # half of 4^100


@pytest.mark.parametrize("n_free, rules, half", [
    (0, ("none",), 1),
    (4, ("none",), 1),  # the default rules=[none]: one combination
    (4, ("none", "no_change"), 8),
    (1, ("none", "no_change", "non_increasing"), 1),
    (3, RULES4, 32),
])
def test_null_means_half_at_least_one(n_free, rules, half):
    comb = Combinations(tuple(f"f{i}" for i in range(n_free)), rules)
    chosen = comb.chosen(None, seed=42)
    assert len(chosen) == half == max(1, comb.total // 2)
    assert len(set(chosen)) == len(chosen) and chosen == sorted(chosen)
    assert all(0 <= c < comb.total for c in chosen)


def test_chosen_is_seeded_nested_and_unbiased():
    comb = Combinations(("a", "b", "c", "d"), ("none", "no_change"))
    assert comb.chosen(8, seed=42) == comb.chosen(8, seed=42)
    assert comb.chosen(8, seed=42) != comb.chosen(8, seed=7)
    for seed in range(5):
        small, large = comb.chosen(3, seed), comb.chosen(10, seed)
        assert set(small) <= set(large)
    # every feature gets each rule in some chosen combination (evenly spaced indices would
    # have left the last feature at rules[0] in all of them)
    chosen = comb.chosen(None, seed=42)
    for j in range(4):
        assert {comb.digits(c)[j] for c in chosen} == {0, 1}
    assert comb.chosen(100, seed=1) == list(range(16))  # more than exist: all of them


def test_plan_order_and_seeds():
    tasks = plan_tasks([3, 8], [[0, 2], [1]], [0, 5], 2, seed=42)
    assert len(tasks) == 3 * 2 * 2
    assert [t.index for t in tasks] == list(range(12))
    coords = [(t.query, t.target, t.combination, t.replication) for t in tasks]
    assert coords == [(q, t, c, r) for q, ts in [(3, [0, 2]), (8, [1])] for t in ts
                      for c in (0, 5) for r in range(2)]
    assert all(t.seed == derive_seed(42, *c) for t, c in zip(tasks, coords, strict=True))
    assert len({t.seed for t in tasks}) == len(tasks)
    # a task's seed does not depend on the rest of the plan
    alone = plan_tasks([8], [[1]], [5], 2, seed=42)
    assert [t.seed for t in alone] == [t.seed for t in tasks if (t.query, t.combination) == (8, 5)]
    assert isinstance(tasks[0], Task) and tasks[0]._fields[0] == "index"
    assert choose_queries(30, 3, None, 42) == choose_queries(30, 3, None, 42)


def test_too_many_tasks_names_the_key():
    with pytest.raises(ConfigError, match="experiment_params.num_combinations_to_test"):
        plan_tasks([0], [[1]], range(MAX_TASKS + 1), 1, seed=0)


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_max_workers_rejected_by_launcher(bad):
    with pytest.raises(ConfigError, match=r"experiment_params\.max_workers"):
        resolve_workers(bad, 10)


@pytest.mark.parametrize("bad", ["0", "-1"])
def test_max_workers_rejected_by_config(cfg_factory, bad):
    with pytest.raises(ConfigError, match=r"experiment_params\.max_workers"):
        validate(cfg_factory(f"experiment_params.max_workers={bad}"))


@pytest.mark.parametrize("bad", ["1.5", "abc"])
def test_max_workers_non_integer_rejected_at_compose(bad):
    from cfgen.cli import precheck

    with pytest.raises(ConfigError, match=r"experiment_params\.max_workers"):
        precheck([f"experiment_params.max_workers={bad}"])


def test_worker_count(monkeypatch):
    assert resolve_workers(8, 3) == 3  # never more workers than tasks
    assert resolve_workers(2, 10) == 2
    assert resolve_workers(None, 0) == 1
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    from cfgen.runner import usable_cpus

    assert usable_cpus() <= 4
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert usable_cpus() == 1 and resolve_workers(None, 10) == 1
