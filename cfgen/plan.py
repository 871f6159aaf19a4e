"""Planning: queries × targets × actionability combinations × replications → tasks with seeds.

The plan is a flat list of small :class:`Task` tuples, in a fixed order (query, then target,
then combination, then replication). Each task carries its own seed, derived from the
experiment seed and the task's coordinates, so a task's result does not depend on which
process runs it, on how many run at once, or on the order they finish in.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from cfgen.errors import ConfigError
from cfgen.schema import Rule

log = logging.getLogger(__name__)

MAX_TASKS = 1_000_000  # a plan larger than this is refused (it would run for days)
WARN_TASKS = 20_000  # a plan larger than this is run, with a warning naming the knobs


class Task(NamedTuple):
    """One search: small and picklable (workers hold the heavy objects)."""

    index: int  # type: ignore[assignment]  # position in the plan; results are written in order
    query: int  # position of the query row in the test split
    target: int
    combination: int  # index into the actionability combinations (see Combinations)
    replication: int
    seed: int


def derive_seed(seed: int, *coords: int) -> int:
    """A 63-bit seed from the experiment seed and a task's coordinates.

    Uses ``SeedSequence(seed, spawn_key=coords)``: stable across processes and platforms, and
    independent for different coordinates.
    """
    words = np.random.SeedSequence(seed, spawn_key=tuple(int(c) for c in coords)).generate_state(
        2, np.uint32
    )
    return int((int(words[0]) << 31) ^ int(words[1]))


def count_text(n: int) -> str:
    """A count for humans: exact below a million, else a power of ten."""
    return f"{n}" if n < 1_000_000 else f"10^{math.log10(n):.1f}"


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 task``, ``2 tasks``; ``many`` for irregular plurals (``query`` → ``queries``)."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


@dataclass(frozen=True)
class Combinations:
    """The Cartesian product of ``rules`` over the free features, indexed lazily.

    A combination assigns one rule to every feature the dataset's actionability map leaves
    free (rule ``none``); features the map already constrains keep their rule.

    **Order.** Combination ``i`` is ``i`` written in base ``len(rules)``, one digit per free
    feature: free features in schema order, the *last* one varying fastest, digit ``r`` meaning
    ``rules[r]`` -- the order of ``itertools.product(rules, repeat=len(free))``. Combination 0
    gives every free feature ``rules[0]``. Repeated rules are dropped (first occurrence kept).
    Nothing is materialised: 4 rules × 100 features (4^100 combinations) can be indexed.
    """

    free: tuple[str, ...]
    rules: tuple[str, ...]

    def __post_init__(self) -> None:
        rules = tuple(dict.fromkeys(Rule(r).value for r in self.rules))
        if not rules:
            raise ConfigError(
                "experiment_params.rules=[] is not allowed: expected at least one rule"
            )
        object.__setattr__(self, "free", tuple(self.free))
        object.__setattr__(self, "rules", rules)

    @classmethod
    def for_schema(cls, schema, rules: Sequence[str]) -> Combinations:
        """The combinations of ``rules`` over the free features of ``schema``."""
        return cls(tuple(schema.free_features()), tuple(rules))

    @property
    def total(self) -> int:
        return len(self.rules) ** len(self.free)

    def digits(self, i: int) -> list[int]:
        """Positions in ``rules`` of combination ``i``'s rules, one per free feature."""
        if not 0 <= i < self.total:
            raise IndexError(f"combination {i} out of range 0..{self.total - 1}")
        base = len(self.rules)
        out = [0] * len(self.free)
        for j in range(len(self.free) - 1, -1, -1):
            i, out[j] = divmod(i, base)
        return out

    def __getitem__(self, i: int) -> dict[str, Rule]:
        """Combination ``i`` as ``{free feature: rule}`` in schema order."""
        digits = self.digits(i)
        return {name: Rule(self.rules[r]) for name, r in zip(self.free, digits, strict=True)}

    def index(self, assignment: dict[str, Rule | str]) -> int:
        """Inverse of ``combinations[i]``: the position of a full assignment in the order."""
        i = 0
        for name in self.free:
            i = i * len(self.rules) + self.rules.index(Rule(assignment[name]).value)
        return i

    def label(self, i: int, limit: int = 4) -> str:
        """Short text naming the free features combination ``i`` constrains."""
        parts = [
            f"{n}={self.rules[r]}"
            for n, r in zip(self.free, self.digits(i), strict=True)
            if self.rules[r] != Rule.NONE.value
        ]
        if not parts:
            return "all free" if self.free else "no free feature"
        more = f" (+{len(parts) - limit} more)" if len(parts) > limit else ""
        return ", ".join(parts[:limit]) + more

    def chosen(self, n: int | None, seed: int = 0) -> list[int]:
        """Indices of the combinations to test, ascending.

        ``n`` ≥ total: all of them. ``None``: half of all combinations, at least one.
        Otherwise ``n`` distinct indices drawn uniformly with a generator seeded from ``seed``
        (the experiment seed) by a lazy Fisher-Yates shuffle: reproducible, no bias towards
        any feature (evenly spaced indices would leave the last features at ``rules[0]``),
        and, for one seed, the combinations chosen for a smaller ``n`` are always among those
        chosen for a larger ``n``.
        """
        total = self.total
        if n is None:
            n = max(1, total // 2)
            key = "experiment_params.num_combinations_to_test=null (half of all combinations)"
        else:
            key = f"experiment_params.num_combinations_to_test={n}"
        if n >= total:
            if n > total:
                log.info("%s: only %d combinations exist; testing all of them", key, total)
            n = total
        if n > MAX_TASKS:
            raise ConfigError(
                f"{key} asks for {count_text(n)} actionability combinations ({len(self.rules)} "
                f"rules over {len(self.free)} free features make {count_text(total)}), far too "
                "many to run: set experiment_params.num_combinations_to_test to a small number"
            )
        if n == total:
            return list(range(total))
        rng = random.Random(derive_seed(seed, 0xC0B1))
        moved: dict[int, int] = {}  # sparse Fisher-Yates permutation: position -> value there
        out = []
        for i in range(n):
            j = i + rng.randrange(total - i)
            vi, vj = moved.get(i, i), moved.get(j, j)
            moved[j] = vi
            out.append(vj)
        return sorted(out)


def check_seed(seed: int, key: str = "experiment_params.seed") -> None:
    """Seeds feed numpy's SeedSequence, which takes integers >= 0 only."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"{key}={seed!r} is not allowed: expected an integer >= 0")


def choose_queries(
    n_test: int, num_samples: int, indices: Sequence[int] | None, seed: int
) -> list[int]:
    """Test-row positions to explain: the given ones, or ``num_samples`` drawn with the seed.

    Each row is explained once: a position listed twice is refused (it would be explained, and
    averaged, twice), as are an empty list and a negative seed.
    """
    check_seed(seed)
    if indices is not None:
        indices = list(indices)
        if not indices:
            raise ConfigError(
                "experiment_params.sample_indices=[] is not allowed: expected null (draw "
                "experiment_params.num_samples rows) or at least one test-row position"
            )
        dup = sorted({int(i) for i in indices if indices.count(i) > 1})
        if dup:
            raise ConfigError(
                f"experiment_params.sample_indices={indices} is not allowed: {dup} listed more "
                "than once (each row is explained once)"
            )
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
    """Flat task list: for each query, each of its targets, each combination, each replication.

    Task ``i`` has ``index == i``; its seed is ``derive_seed(seed, query, target, combination,
    replication)``, so it does not depend on which other tasks are in the plan.
    """
    n_targets = sum(len(t) for t in targets)
    total = n_targets * len(combinations) * replications
    shape = (
        f"{len(queries)} queries, {n_targets} query-target pairs × {len(combinations)} "
        f"combinations × {replications} replications"
    )
    if total > MAX_TASKS:
        raise ConfigError(
            f"the plan has {count_text(total)} tasks ({shape}), far too many to run: lower "
            "experiment_params.num_combinations_to_test (or num_samples, num_replications)"
        )
    if total > WARN_TASKS:
        log.warning(
            "the plan has %d tasks (%s); if that is more than you meant, lower "
            "experiment_params.num_combinations_to_test",
            total,
            shape,
        )
    tasks: list[Task] = []
    for q, tgts in zip(queries, targets, strict=True):
        for t in tgts:
            for c in combinations:
                for r in range(replications):
                    tasks.append(
                        Task(len(tasks), int(q), int(t), int(c), r, derive_seed(seed, q, t, c, r))
                    )
    return tasks


def iter_targets(pred: np.ndarray, n_classes: int, target_class: int | None) -> Iterator[list[int]]:
    """Per query: the fixed target, or every class other than the predicted one."""
    if target_class is not None and not 0 <= target_class < n_classes:
        raise ConfigError(
            f"experiment_params.target_class={target_class} is not allowed: "
            f"expected null or 0..{n_classes - 1}"
        )
    for p in pred:
        yield (
            [target_class]
            if target_class is not None
            else [c for c in range(n_classes) if c != int(p)]
        )
