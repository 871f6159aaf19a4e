"""Values a counterfactual feature may take, on the data's grid, and how splits cut them.

A feature's *domain* for one query ``x``: the grid values ``k / factor`` (``factor =
10**decimals`` for continuous features, 1 for integers) inside the schema box widened to
contain ``x`` (as ``cfgen.search.space`` does), narrowed by the actionability rule and by the
feature's permitted ``(low, high)`` when it has one (``Feature.permitted``; ``None`` sides
open), plus ``x`` itself (always allowed: an unchanged feature, even when ``x`` is off the grid
or outside the permitted range). A categorical feature's domain is a set of codes ``0..n-1``
(every code is a valid value; a permitted range bounds the codes).

A split (``cast(v) <= t`` goes left; ``cast`` is the library's reading, float32 for sklearn)
sends a grid value right exactly when its index ``k`` is at least :func:`first_right` of ``t``.
The enumerator :func:`edge_candidates` (the tests' brute force) keeps, per feature, the query
and the grid values on both sides of every threshold: the value of any cell nearest the query
is among them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cfgen.schema import Feature, FeatureSchema, Kind, Rule

Cast = Callable[[np.ndarray], np.ndarray]


def float32_cast(v) -> np.ndarray:
    """sklearn's reading of an input value (float64 of its float32)."""
    return np.asarray(v, dtype=np.float64).astype(np.float32).astype(np.float64)


def first_right(thr: np.ndarray, factor: float, cast: Cast = float32_cast) -> np.ndarray:
    """Per threshold ``t``, the smallest integer ``k`` with ``cast(k / factor) > t``.

    Vectorised bisection between two brackets a few float32 ulps around ``t`` (float32 is
    coarser than a fine grid for large values, so a fixed number of steps is not enough).
    ``cast`` must be non-decreasing (the library's reading of a value, e.g. float32).
    """
    t = np.asarray(thr, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0)

    def right(k: np.ndarray) -> np.ndarray:
        return cast(k / factor) > t

    pad = np.abs(t) * 4e-7 + 2.0 / factor
    lo = np.floor((t - pad) * factor)
    hi = np.ceil((t + pad) * factor)
    for _ in range(64):
        bad_lo, bad_hi = right(lo), ~right(hi)
        if not (bad_lo.any() or bad_hi.any()):
            break
        lo = np.where(bad_lo, lo - np.maximum(1.0, np.abs(lo)), lo)
        hi = np.where(bad_hi, hi + np.maximum(1.0, np.abs(hi)), hi)
    while True:
        wide = hi - lo > 1
        if not wide.any():
            return hi
        mid = np.floor((lo + hi) / 2)
        go = right(mid)
        hi = np.where(wide & go, mid, hi)
        lo = np.where(wide & ~go, mid, lo)


def routes_right(v: float, t: np.ndarray, cast: Cast = float32_cast) -> np.ndarray:
    """Whether value ``v`` goes right at thresholds ``t`` (``cast(v) > t``)."""
    return cast(np.array([v]))[0] > np.asarray(t, dtype=np.float64)


@dataclass(frozen=True)
class Domain:
    """Allowed values of one feature for one query.

    Numeric: grid indices ``klo..khi`` (empty when ``klo > khi``) plus ``x``. Categorical:
    ``codes`` (sorted, contains ``x``).
    """

    x: float
    factor: float
    categorical: bool
    klo: float = 0.0
    khi: float = -1.0
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def values(self) -> np.ndarray:
        """Every allowed value (sorted); for small domains only (the tests' brute force)."""
        if self.categorical:
            return self.codes.astype(float)
        grid = np.arange(self.klo, self.khi + 1) / self.factor
        return np.unique(np.append(grid, self.x))

    def low_high(self) -> tuple[float, float]:
        """Smallest and largest allowed value."""
        if self.categorical:
            return float(self.codes[0]), float(self.codes[-1])
        if self.klo > self.khi:
            return self.x, self.x
        return min(self.klo / self.factor, self.x), max(self.khi / self.factor, self.x)


def within(dom: Domain, reach: float) -> Domain:
    """``dom`` narrowed to the values at most ``reach`` (raw units; categoricals: any change
    costs 1) from the query: no value farther can be in a counterfactual closer than a known
    one. Values exactly at ``reach`` are kept (slack for rounding)."""
    if dom.categorical:
        return dom if reach >= 1.0 else Domain(dom.x, 1.0, True, codes=np.array([dom.x]))
    if not np.isfinite(reach):
        return dom
    f, slack = dom.factor, 1e-9 * (1.0 + abs(dom.x) * dom.factor)
    klo = max(dom.klo, float(np.ceil((dom.x - reach) * f - slack)))
    khi = min(dom.khi, float(np.floor((dom.x + reach) * f + slack)))
    return Domain(dom.x, f, False, klo=klo, khi=khi)


def _bounds(permitted) -> tuple[float, float]:
    """A permitted ``(low, high)`` with ``None`` sides open."""
    lo, hi = permitted
    return (-np.inf if lo is None else float(lo)), (np.inf if hi is None else float(hi))


def _categorical_domain(feature: Feature, x: float) -> Domain:
    n = max(len(feature.categories), int(feature.high) + 1, int(x) + 1)
    codes = np.arange(n, dtype=float)
    rule = feature.rule
    if rule is Rule.NO_CHANGE:
        codes = np.array([x])
    elif rule is Rule.NON_INCREASING:
        codes = codes[codes <= x]
    elif rule is Rule.NON_DECREASING:
        codes = codes[codes >= x]
    permitted = getattr(feature, "permitted", None)
    if permitted is not None:
        p_lo, p_hi = _bounds(permitted)
        codes = codes[(codes >= p_lo) & (codes <= p_hi)]
    return Domain(x=x, factor=1.0, categorical=True, codes=np.union1d(codes, [x]))


def _numeric_domain(feature: Feature, x: float) -> Domain:
    factor = 10.0 ** (feature.decimals if feature.kind is Kind.CONTINUOUS else 0)
    lo, hi = min(feature.low, x), max(feature.high, x)
    if feature.rule in (Rule.NO_CHANGE, Rule.NON_INCREASING):
        hi = x
    if feature.rule in (Rule.NO_CHANGE, Rule.NON_DECREASING):
        lo = x
    permitted = getattr(feature, "permitted", None)
    if permitted is not None:
        p_lo, p_hi = _bounds(permitted)
        lo, hi = max(lo, p_lo), min(hi, p_hi)
    klo = float(np.ceil(lo * factor - 1e-7))
    khi = float(np.floor(hi * factor + 1e-7))
    return Domain(x=x, factor=factor, categorical=False, klo=klo, khi=khi)


def domains(schema: FeatureSchema, x: np.ndarray) -> list[Domain]:
    """Each feature's :class:`Domain` for query ``x`` under the schema's rules."""
    x = np.asarray(x, dtype=float)
    return [
        _categorical_domain(f, float(x[j]))
        if f.kind is Kind.CATEGORICAL
        else _numeric_domain(f, float(x[j]))
        for j, f in enumerate(schema.features)
    ]


def edge_candidates(dom: Domain, thresholds: np.ndarray, cast: Cast = float32_cast) -> np.ndarray:
    """The query plus the allowed grid values either side of every threshold (and the domain's
    ends): the nearest-to-query value of every cell between splits is one of them."""
    if dom.categorical:
        return dom.codes.astype(float)
    vals = [dom.x]
    if dom.klo <= dom.khi:
        k = first_right(thresholds, dom.factor, cast)
        ks = np.concatenate([k, k - 1, [dom.klo, dom.khi]])
        ks = ks[(ks >= dom.klo) & (ks <= dom.khi)]
        vals.extend(ks / dom.factor)
    return np.unique(np.asarray(vals, dtype=float))
