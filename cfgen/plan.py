"""Planning: queries × targets × actionability combinations × replications → tasks with seeds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from cfgen.errors import ConfigError
from cfgen.schema import Rule

MAX_TASKS = 1_000_000


class Task(NamedTuple):
    """One search: small and picklable (workers hold the heavy objects)."""

    index: int  # position in the plan; results are written in this order
    query: int  # position of the query row in the test split
    target: int
    combination: int  # index into the actionability combinations
    replication: int
    seed: int


def derive_seed(seed: int, *coords: int) -> int:
    """A 63-bit seed from the experiment seed and a task's coordinates (order-independent)."""
    words = np.random.SeedSequence(seed, spawn_key=tuple(int(c) for c in coords)).generate_state(
        2, np.uint32
    )
    return int((int(words[0]) << 31) ^ int(words[1]))


@dataclass(frozen=True)
class Combinations:
    """The Cartesian product of ``rules`` over the free features, indexed lazily.

    Order: lexicographic over features in schema order, rules in the order given, the last
    feature varying fastest (as ``itertools.product``). Combination ``i`` is never built
    before it is asked for, so 4 rules × 100 features is fine.
    """

    free: tuple[str, ...]
    rules: tuple[str, ...]

    @property
    def total(self) -> int:
        return len(self.rules) ** len(self.free)

    def __getitem__(self, i: int) -> dict[str, Rule]:
        if not 0 <= i < self.total:
            raise IndexError(i)
        out: dict[str, Rule] = {}
        base = len(self.rules)
        for name in reversed(self.free):
            i, r = divmod(i, base)
            out[name] = Rule(self.rules[r])
        return dict(reversed(list(out.items())))

    def chosen(self, n: int | None) -> list[int]:
        """Indices of the combinations to test: ``n`` evenly spaced over the product order.

        ``None`` means half of all combinations (at least one).
        """
        total = self.total
        if n is None:
            n = max(1, total // 2)
        n = min(n, total)
        if n > MAX_TASKS:
            raise ConfigError(
                f"experiment_params.num_combinations_to_test=null asks for {n:.3g} combinations "
                f"({len(self.rules)} rules over {len(self.free)} free features): set "
                "experiment_params.num_combinations_to_test to a small number"
            )
        return [i * total // n for i in range(n)]


def choose_queries(n_test: int, num_samples: int, indices: Sequence[int] | None, seed: int) -> list[int]:
    """Test-row positions to explain: the given ones, or ``num_samples`` drawn with the seed."""
    if indices is not None:
        bad = [i for i in indices if not 0 <= i < n_test]
        if bad:
            raise ConfigError(
                f"experiment_params.sample_indices={list(indices)} has {bad} out of range: "
                f"the test split has {n_test} rows (0..{n_test - 1})"
            )
        return [int(i) for i in indices]
    if num_samples > n_test:
        raise ConfigError(
            f"experiment_params.num_samples={num_samples} is more than the {n_test} test rows"
        )
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xC0FFEE,)))
    return sorted(int(i) for i in rng.choice(n_test, size=num_samples, replace=False))


def plan_tasks(
    queries: Sequence[int],
    targets: Sequence[Sequence[int]],
    combinations: Sequence[int],
    replications: int,
    seed: int,
) -> list[Task]:
    """Flat task list: for each query, each of its targets, each combination, each replication."""
    total = sum(len(t) for t in targets) * len(combinations) * replications
    if total > MAX_TASKS:
        raise ConfigError(
            f"the plan has {total} tasks (queries × targets × combinations × replications): "
            "lower experiment_params.num_combinations_to_test or num_samples"
        )
    tasks: list[Task] = []
    for q, tgts in zip(queries, targets):
        for t in tgts:
            for c in combinations:
                for r in range(replications):
                    tasks.append(Task(len(tasks), q, int(t), c, r, derive_seed(seed, q, t, c, r)))
    return tasks


def iter_targets(pred: np.ndarray, n_classes: int, target_class: int | None) -> Iterator[list[int]]:
    """Per query: the fixed target, or every class other than the predicted one."""
    if target_class is not None and not 0 <= target_class < n_classes:
        raise ConfigError(
            f"experiment_params.target_class={target_class} is not allowed: "
            f"expected null or 0..{n_classes - 1}"
        )
    for p in pred:
        yield [target_class] if target_class is not None else [
            c for c in range(n_classes) if c != int(p)
        ]


def combination_count_text(comb: Combinations) -> str:
    """Human-readable size of the combination space."""
    total = comb.total
    return f"{total}" if total < 1e6 else f"10^{math.log10(total):.1f}"
