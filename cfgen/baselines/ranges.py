"""Where a baseline's counterfactual may put each feature: rules, permitted ranges, the data.

Neither DiCE nor NICE knows cfgen's actionability rules, so both adapters turn them (and a
feature's optional permitted range) into one per-query box ``lo <= cf <= hi`` in the encoded
space, hand what the library understands of it to the library, and re-check every row against
it afterwards:

* every feature starts at its training range, widened to hold the query's own value (a query
  outside the data may keep that value);
* ``no_change`` pins the feature to the query's value; ``non_increasing`` / ``non_decreasing``
  cap / floor it there (categoricals: on their codes, as the rest of cfgen does);
* a permitted range ``(low, high)`` (``getattr(feature, "permitted", None)``, encoded values:
  codes for categoricals) intersects the above; it is absolute, so a query value outside it is
  not allowed either;
* integer and categorical bounds are rounded inwards to whole numbers.

An empty interval means no counterfactual can exist; :attr:`Box.blocked` names the feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cfgen.schema import FeatureSchema, Kind, Rule

ATOL = 1e-9


def permitted_range(feature) -> tuple[float, float] | None:
    """The feature's permitted ``(low, high)`` if the schema carries one (else ``None``)."""
    permitted = getattr(feature, "permitted", None)
    if permitted is None:
        return None
    low, high = permitted
    return float(low), float(high)


@dataclass(frozen=True)
class Box:
    """Per-feature closed interval a counterfactual of one query must lie in."""

    lo: np.ndarray
    hi: np.ndarray
    blocked: str | None  # first feature whose interval is empty (None: every one has a value)

    def contains(self, X: np.ndarray) -> np.ndarray:
        """Boolean (m,): rows of ``X`` inside the box (to :data:`ATOL`)."""
        X = np.atleast_2d(X)
        return np.all((X >= self.lo - ATOL) & (X <= self.hi + ATOL), axis=1)


def allowed_box(schema: FeatureSchema, x: np.ndarray) -> Box:
    """The :class:`Box` of query ``x`` under ``schema``'s rules and permitted ranges."""
    d = len(schema)
    lo, hi = np.empty(d), np.empty(d)
    blocked: str | None = None
    for j, f in enumerate(schema.features):
        xj = float(x[j])
        a, b = min(float(f.low), xj), max(float(f.high), xj)
        if f.kind is Kind.CATEGORICAL:
            a, b = 0.0, float(max(len(f.categories) - 1, round(xj)))
        if f.rule is Rule.NO_CHANGE:
            a = b = xj
        elif f.rule is Rule.NON_INCREASING:
            b = xj
        elif f.rule is Rule.NON_DECREASING:
            a = xj
        permitted = permitted_range(f)
        if permitted is not None:
            a, b = max(a, permitted[0]), min(b, permitted[1])
        if f.kind is not Kind.CONTINUOUS:
            a, b = float(np.ceil(a - ATOL)), float(np.floor(b + ATOL))
        lo[j], hi[j] = a, b
        if a > b + ATOL and blocked is None:
            blocked = f.name
    return Box(lo, hi, blocked)


def blocked_reason(schema: FeatureSchema, x: np.ndarray, box: Box) -> str:
    """One line saying why ``box.blocked`` leaves no value for the query."""
    j = schema.index(str(box.blocked))
    f = schema.features[j]
    return (
        f"feature {f.name!r} (query value {float(x[j]):g}, rule {f.rule.value}, permitted "
        f"{permitted_range(f)}) has no allowed value"
    )
