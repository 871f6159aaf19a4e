"""Feature schema: what each column is, its observed range and its actionability rule."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Iterable, Mapping, Sequence

import numpy as np


class Kind(str, Enum):
    """How a feature's values behave."""

    CONTINUOUS = "continuous"
    INTEGER = "integer"
    CATEGORICAL = "categorical"


class Rule(str, Enum):
    """Actionability rule for one feature (how a counterfactual may move it)."""

    NONE = "none"
    NO_CHANGE = "no_change"
    NON_INCREASING = "non_increasing"
    NON_DECREASING = "non_decreasing"


RULE_NAMES: tuple[str, ...] = tuple(r.value for r in Rule)


@dataclass(frozen=True)
class Feature:
    """One column of the model's input.

    Categorical features hold integer codes ``0..len(categories)-1``; ``categories[i]`` is the
    original value (a string) of code ``i``. ``permitted`` is the user's ``(low, high)`` range for
    a numeric feature (DiCE's ``permitted_range``): a counterfactual that moves the feature
    outside it breaks the feature's rules, like a forbidden direction does.
    """

    name: str
    kind: Kind
    low: float
    high: float
    categories: tuple[str, ...] = ()
    rule: Rule = Rule.NONE
    decimals: int = 6
    permitted: tuple[float, float] | None = None


@dataclass(frozen=True)
class FeatureSchema:
    """Ordered features of a dataset, plus array views used on the hot path."""

    features: tuple[Feature, ...]

    def __len__(self) -> int:
        return len(self.features)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def index(self, name: str) -> int:
        return self.names.index(name)

    def _mask(self, kind: Kind) -> np.ndarray:
        return np.array([f.kind is kind for f in self.features], dtype=bool)

    @property
    def categorical(self) -> np.ndarray:
        """Boolean mask of categorical features."""
        return self._mask(Kind.CATEGORICAL)

    @property
    def integer(self) -> np.ndarray:
        """Boolean mask of integer (ordinal, non-categorical) features."""
        return self._mask(Kind.INTEGER)

    @property
    def continuous(self) -> np.ndarray:
        """Boolean mask of continuous features."""
        return self._mask(Kind.CONTINUOUS)

    @property
    def lows(self) -> np.ndarray:
        return np.array([f.low for f in self.features], dtype=float)

    @property
    def highs(self) -> np.ndarray:
        return np.array([f.high for f in self.features], dtype=float)

    @property
    def decimals(self) -> np.ndarray:
        return np.array([f.decimals for f in self.features], dtype=int)

    @property
    def permitted(self) -> list[tuple[float, float] | None]:
        """Per feature, the user's permitted ``(low, high)`` range or None."""
        return [f.permitted for f in self.features]

    @property
    def rules(self) -> list[Rule]:
        return [f.rule for f in self.features]

    def rule_mask(self, rule: Rule) -> np.ndarray:
        """Boolean mask of features carrying ``rule``."""
        return np.array([f.rule is rule for f in self.features], dtype=bool)

    def with_rules(self, rules: Mapping[str, Rule | str]) -> FeatureSchema:
        """A copy whose features named in ``rules`` carry those rules (others unchanged)."""
        unknown = set(rules) - set(self.names)
        if unknown:
            raise KeyError(f"unknown features {sorted(unknown)}")
        return FeatureSchema(
            tuple(
                replace(f, rule=Rule(rules[f.name])) if f.name in rules else f
                for f in self.features
            )
        )

    def free_features(self) -> list[str]:
        """Features whose rule is ``none`` (free to move)."""
        return [f.name for f in self.features if f.rule is Rule.NONE]


def actionability_violations(
    x: np.ndarray,
    cfs: np.ndarray,
    rules: Iterable[Rule],
    atol: float = 1e-9,
    permitted: Sequence[tuple[float, float] | None] | None = None,
) -> np.ndarray:
    """Per counterfactual, the number of features whose change breaks its rule.

    ``x`` is (d,), ``cfs`` is (m, d); returns an int array of shape (m,). With ``permitted``
    (``schema.permitted``), a feature *changed* to a value outside its range also counts: a value
    the query already had is not an action, so leaving an out-of-range value alone is allowed.
    """
    rules = list(rules)
    cfs = np.atleast_2d(cfs)
    delta = cfs - x[None, :]
    no_change = np.array([r is Rule.NO_CHANGE for r in rules])
    non_inc = np.array([r is Rule.NON_INCREASING for r in rules])
    non_dec = np.array([r is Rule.NON_DECREASING for r in rules])
    bad = (np.abs(delta) > atol) & no_change | (delta > atol) & non_inc | (delta < -atol) & non_dec
    if permitted is not None and any(p is not None for p in permitted):
        lo = np.array([-np.inf if p is None else p[0] for p in permitted], dtype=float)
        hi = np.array([np.inf if p is None else p[1] for p in permitted], dtype=float)
        outside = (cfs < lo[None, :] - atol) | (cfs > hi[None, :] + atol)
        bad |= outside & (np.abs(delta) > atol)
    return bad.sum(axis=1)
