"""Statistics of the paper tables: confidence intervals, win counts, Wilcoxon, Holm.

Everything here works on plain arrays/frames and knows nothing about run directories, so each
function can be checked on a hand-made table.

Conventions
-----------
* A metric has a *direction*: ``"up"`` (larger is better) or ``"down"`` (smaller is better).
* Differences between two methods A and B are *oriented*: ``better = A - B`` for an ``up``
  metric and ``B - A`` for a ``down`` metric, so a positive oriented difference always means
  "A is better".
* Two values tie when :func:`is_tie` says so (equal up to floating-point noise); ties count
  neither as a win nor as a loss, and are left out of the win rate.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

#: relative / absolute tolerance under which two means count as a tie
TIE_RTOL = 1e-9
TIE_ATOL = 1e-12


def is_tie(a, b) -> np.ndarray:
    """Elementwise: ``a`` and ``b`` are equal up to floating-point noise."""
    return np.isclose(np.asarray(a, float), np.asarray(b, float), rtol=TIE_RTOL, atol=TIE_ATOL)


def oriented(a, b, direction: str) -> np.ndarray:
    """``a - b`` if larger is better, ``b - a`` if smaller is better: positive ⇒ ``a`` better."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if direction == "up":
        return a - b
    if direction == "down":
        return b - a
    raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")


def mean_ci(values, level: float = 0.95) -> dict[str, float]:
    """Mean, sample std (ddof=1), n and the Student-t confidence interval of the mean.

    NaNs are dropped. n = 0 → everything NaN; n = 1 → std and interval NaN.
    """
    from scipy.stats import t as student_t

    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    n = int(v.size)
    out = {"mean": math.nan, "std": math.nan, "n": n, "ci_low": math.nan, "ci_high": math.nan}
    if n == 0:
        return out
    mean = float(v.mean())
    out["mean"] = mean
    if n == 1:
        return out
    std = float(v.std(ddof=1))
    half = float(student_t.ppf(0.5 + level / 2.0, n - 1)) * std / math.sqrt(n)
    out.update(std=std, ci_low=mean - half, ci_high=mean + half)
    return out


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni step-down adjusted p-values (NaNs stay NaN and are not counted in m).

    Sort the m finite p-values ascending, multiply the i-th smallest (i = 0..m-1) by (m - i),
    take the running maximum (adjusted p-values never decrease along the order) and cap at 1.
    Rejecting where the adjusted p < alpha is Holm's procedure at family-wise level alpha.
    """
    p = np.asarray(pvalues, float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adj, 1.0)
    return out


def rank_biserial(diff) -> float:
    """Matched-pairs rank-biserial correlation of paired differences (Kerby 2014).

    Zero differences are dropped (as Wilcoxon's ``zero_method="wilcox"`` does); the absolute
    remaining differences are ranked (average ranks for ties) and
    ``r = (T+ - T-) / (T+ + T-)``, in [-1, 1]: +1 when every non-zero difference is positive.
    NaN when no difference is non-zero.
    """
    from scipy.stats import rankdata

    d = np.asarray(diff, float)
    d = d[np.isfinite(d) & (d != 0)]
    if d.size == 0:
        return math.nan
    r = rankdata(np.abs(d))
    t_plus, t_minus = r[d > 0].sum(), r[d < 0].sum()
    return float((t_plus - t_minus) / (t_plus + t_minus))


@dataclass(frozen=True)
class PairedTest:
    """Result of :func:`paired_wilcoxon` on oriented differences (positive ⇒ first better)."""

    n: int  # pairs with both values finite
    n_nonzero: int  # pairs whose difference is not zero (what the test ranks)
    median_diff: float  # median of the oriented differences
    statistic: float  # scipy's two-sided statistic: min(T+, T-)
    pvalue: float  # two-sided; NaN when nothing can be tested
    effect: float  # matched-pairs rank-biserial, positive ⇒ first better


def paired_wilcoxon(a, b, direction: str) -> PairedTest:
    """Two-sided Wilcoxon signed-rank test of paired values ``a`` (first method) vs ``b``.

    Pairs with a NaN on either side are dropped. Zero differences are dropped before ranking
    (``zero_method="wilcox"``); scipy picks the exact null distribution for small n without ties
    and the normal approximation otherwise (``method="auto"``). With no non-zero difference the
    test is undefined: statistic and p-value are NaN.
    """
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = np.isfinite(a) & np.isfinite(b)
    d = oriented(a[keep], b[keep], direction)
    n = int(d.size)
    nz = d[~is_tie(a[keep], b[keep])]
    median = float(np.median(d)) if n else math.nan
    if nz.size == 0:
        return PairedTest(n, 0, median, math.nan, math.nan, math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = wilcoxon(nz, zero_method="wilcox", alternative="two-sided", method="auto")
    return PairedTest(
        n, int(nz.size), median, float(res.statistic), float(res.pvalue), rank_biserial(nz)
    )


@dataclass(frozen=True)
class WinCount:
    """How often the first method beats the second over a set of paired values."""

    wins: int
    losses: int
    ties: int
    n: int  # pairs with both values finite = wins + losses + ties

    @property
    def win_rate(self) -> float:
        """wins / (wins + losses): ties are left out; NaN when every pair tied."""
        decided = self.wins + self.losses
        return self.wins / decided if decided else math.nan


def win_count(a, b, direction: str) -> WinCount:
    """Wins / losses / ties of ``a`` over ``b`` (direction-aware; NaN pairs skipped)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    tie = is_tie(a, b)
    d = oriented(a, b, direction)
    wins = int(((d > 0) & ~tie).sum())
    losses = int(((d < 0) & ~tie).sum())
    return WinCount(wins, losses, int(tie.sum()), int(keep.sum()))


def best_of(values, direction: str) -> tuple[int | None, bool]:
    """Index of the best finite value and whether another value ties with it.

    Returns ``(None, False)`` when no value is finite.
    """
    v = np.asarray(values, float)
    ok = np.isfinite(v)
    if not ok.any():
        return None, False
    score = np.where(ok, v if direction == "up" else -v, -np.inf)
    i = int(np.argmax(score))
    tied = is_tie(v[ok], v[i])
    return i, bool(tied.sum() > 1)
