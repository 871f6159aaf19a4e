"""Where a counterfactual of one query may live: the feasible box, snapping and repair, and the
target class's interval (the "class bounds") inside it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cfgen.constraints import ClassBounds
from cfgen.schema import FeatureSchema, Rule


def _grid_up(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Smallest value on the grid ``k / f`` that is ``>= v`` (tolerant to float noise)."""
    with np.errstate(invalid="ignore"):
        return np.ceil(v * f - 1e-7) / f


def _grid_down(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Largest value on the grid ``k / f`` that is ``<= v``."""
    with np.errstate(invalid="ignore"):
        return np.floor(v * f + 1e-7) / f


@dataclass
class SearchSpace:
    """Feasible box of one query and target, after the actionability rules.

    ``lo``/``hi`` bound every gene (``no_change`` pins it to x, ``non_increasing`` caps it at x,
    ``non_decreasing`` floors it at x); ``movable`` marks genes with room to move. Every gene is
    snapped to the data's precision (``factor = 10**decimals``; integers and categorical codes to
    whole numbers). ``s_lo``/``s_hi`` is the target class's interval ``low < v <= high`` as grid
    values inside the box (the whole box where the interval misses it); ``toward`` is the point of
    that interval nearest to x (the smallest move into the target's bounds).
    """

    x: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    movable: np.ndarray
    categorical: np.ndarray
    factor: np.ndarray
    s_lo: np.ndarray
    s_hi: np.ndarray
    toward: np.ndarray
    t_low: np.ndarray
    t_high: np.ndarray
    cat_idx: np.ndarray
    cat_choices: np.ndarray  # (n_cat, max_codes) allowed codes per categorical, padded
    cat_counts: np.ndarray  # (n_cat,) number of allowed codes
    cat_lut: np.ndarray  # flat bool: code allowed in the target class
    cat_offset: np.ndarray  # (n_cat,) offsets into cat_lut
    off_grid: np.ndarray  # features whose query value is not on the data's grid

    @classmethod
    def build(
        cls, x: np.ndarray, target: int, schema: FeatureSchema, bounds: ClassBounds | None
    ) -> SearchSpace:
        """One-off construction (the explainer reuses a :class:`SpaceFactory`)."""
        return SpaceFactory(schema, bounds).build(x, target)

    @property
    def d(self) -> int:
        return len(self.x)

    # ------------------------------------------------------------------ repair
    def repair(self, pop: np.ndarray) -> np.ndarray:
        """In place: clip into the box, snap to the data's precision, pin unmovable genes.

        Genes equal to an off-grid query value stay equal to it (no phantom change).
        """
        keep = None
        if self.off_grid.any():
            keep = pop[:, self.off_grid] == self.x[self.off_grid]
        np.clip(pop, self.lo, self.hi, out=pop)
        np.multiply(pop, self.factor, out=pop)
        np.rint(pop, out=pop)
        np.divide(pop, self.factor, out=pop)
        np.clip(pop, self.lo, self.hi, out=pop)
        if keep is not None:
            sub = pop[:, self.off_grid]
            sub[keep] = np.broadcast_to(self.x[self.off_grid], sub.shape)[keep]
            pop[:, self.off_grid] = sub
        if not self.movable.all():
            pop[:, ~self.movable] = self.x[~self.movable]
        return pop

    # ------------------------------------------------------------------ target bounds
    def outside_target(self, pop: np.ndarray) -> np.ndarray:
        """Share of features outside the target class's interval (or allowed category set)."""
        out = (pop <= self.t_low) | (pop > self.t_high)
        if self.cat_idx.size:
            codes = np.rint(pop[:, self.cat_idx]).astype(np.intp) + self.cat_offset
            codes = np.clip(codes, 0, len(self.cat_lut) - 1)
            out[:, self.cat_idx] = ~self.cat_lut[codes]
        return out.mean(axis=1)

    def sample_target(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` rows drawn uniformly inside the target interval (categories: allowed codes)."""
        vals = self.s_lo + rng.random((n, self.d)) * (self.s_hi - self.s_lo)
        if self.cat_idx.size:
            pick = (rng.random((n, self.cat_idx.size)) * self.cat_counts).astype(np.intp)
            vals[:, self.cat_idx] = self.cat_choices[np.arange(self.cat_idx.size), pick]
        return vals


class SpaceFactory:
    """Everything about the schema and the class bounds that does not depend on the query,
    computed once; :meth:`build` then makes a query's :class:`SearchSpace` with array ops."""

    def __init__(self, schema: FeatureSchema, bounds: ClassBounds | None) -> None:
        self.schema = schema
        self.bounds = bounds
        d = len(schema)
        self.d = d
        self.lows, self.highs = schema.lows, schema.highs
        perm = schema.permitted
        self.p_lo = np.array([-np.inf if p is None else p[0] for p in perm], dtype=float)
        self.p_hi = np.array([np.inf if p is None else p[1] for p in perm], dtype=float)
        self.no_change = schema.rule_mask(Rule.NO_CHANGE)
        self.non_inc = schema.rule_mask(Rule.NON_INCREASING) | self.no_change
        self.non_dec = schema.rule_mask(Rule.NON_DECREASING) | self.no_change
        self.categorical = schema.categorical
        dec = np.where(schema.continuous, schema.decimals, 0).astype(float)
        self.factor = 10.0**dec
        self.cat_idx = np.flatnonzero(self.categorical)
        self.n_codes = np.array(
            [max(len(schema.features[j].categories), int(self.highs[j]) + 1) for j in self.cat_idx],
            dtype=int,
        )
        self.cat_ruled = np.array(
            [schema.features[j].rule is not Rule.NONE for j in self.cat_idx], dtype=bool
        )
        self._targets: dict[int, dict] = {}

    def _target(self, target: int) -> dict:
        cached = self._targets.get(target)
        if cached is not None:
            return cached
        d, f = self.d, self.factor
        if self.bounds is not None:
            t_low = np.asarray(self.bounds.low[target], dtype=float)
            t_high = np.asarray(self.bounds.high[target], dtype=float)
            allowed = list(self.bounds.allowed[target]) if self.bounds.allowed else [None] * d
        else:
            t_low, t_high = np.full(d, -np.inf), np.full(d, np.inf)
            allowed = [None] * d
        with np.errstate(invalid="ignore"):
            first = np.where(np.isfinite(t_low), (np.floor(t_low * f + 1e-7) + 1) / f, -np.inf)
        last = _grid_down(t_high, f)
        luts, offsets, allowed_codes, off = [], [], [], 0
        for j, n in zip(self.cat_idx, self.n_codes, strict=True):
            codes = np.arange(n)
            codes_j = allowed[j]
            lut = np.ones(n, dtype=bool) if codes_j is None else np.isin(codes, codes_j)
            luts.append(lut)
            allowed_codes.append(codes[lut])
            offsets.append(off)
            off += n
        cached = {
            "t_low": t_low,
            "t_high": t_high,
            "first": first,
            "last": last,
            "lut": np.concatenate(luts) if luts else np.zeros(0, dtype=bool),
            "offsets": np.asarray(offsets, dtype=int),
            "allowed": allowed_codes,
        }
        self._targets[target] = cached
        return cached

    def build(self, x: np.ndarray, target: int) -> SearchSpace:
        x = np.asarray(x, dtype=float)
        t = self._target(target)
        f = self.factor
        lo = np.minimum(self.lows, x)
        hi = np.maximum(self.highs, x)
        hi = np.where(self.non_inc, x, hi)
        lo = np.where(self.non_dec, x, lo)
        # permitted ranges (dataset.ranges): a move must land inside; a query value already
        # outside its range may only stay (leaving it alone is not an action)
        outside = (x < self.p_lo) | (x > self.p_hi)
        lo = np.where(outside, x, np.maximum(lo, self.p_lo))
        hi = np.where(outside, x, np.minimum(hi, self.p_hi))
        hi = np.maximum(hi, lo)
        off_grid = np.round(x * f) / f != x
        glo = np.minimum(_grid_up(lo, f), hi)
        ghi = np.maximum(_grid_down(hi, f), lo)
        movable = hi > lo
        s_lo = np.maximum(glo, t["first"])
        s_hi = np.minimum(ghi, t["last"])
        miss = s_lo > s_hi
        s_lo = np.where(miss, glo, s_lo)
        s_hi = np.where(miss, ghi, s_hi)
        toward = np.where(movable, np.clip(x, s_lo, s_hi), x)

        n_cat = self.cat_idx.size
        choices = []
        for i in range(n_cat):
            j = self.cat_idx[i]
            codes = t["allowed"][i]
            if self.cat_ruled[i]:
                box = np.arange(self.n_codes[i])
                box = box[(box >= lo[j]) & (box <= hi[j])]
                inside = codes[(codes >= lo[j]) & (codes <= hi[j])]
                codes = inside if inside.size else box
            elif codes.size == 0:
                codes = np.arange(self.n_codes[i])
            choices.append(codes)
            if movable[j]:
                toward[j] = x[j] if np.isin(x[j], codes) else codes[np.argmin(np.abs(codes - x[j]))]
        counts = np.array([len(c) for c in choices], dtype=int)
        cat_choices = np.zeros((n_cat, max(counts.max(initial=1), 1)))
        for i, c in enumerate(choices):
            cat_choices[i, : len(c)] = c
        return SearchSpace(
            x=x,
            lo=lo,
            hi=hi,
            movable=movable,
            categorical=self.categorical,
            factor=f,
            s_lo=s_lo,
            s_hi=s_hi,
            toward=toward,
            t_low=t["t_low"],
            t_high=t["t_high"],
            cat_idx=self.cat_idx,
            cat_choices=cat_choices,
            cat_counts=counts,
            cat_lut=t["lut"],
            cat_offset=t["offsets"],
            off_grid=off_grid,
        )
