"""The original ECE ``cf_eval`` definitions, defects included (``compat="ece"``, docs/metrics.md).

Kept so cfgen's numbers can be put next to published tables. Batched like the cfgen suite
where the definitions allow (model and LOF once per batch, per-row distances); the kNN and
plausibility anchors stay per task, as small as they are in the original.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.spatial.distance import cdist

from cfgen.metrics.batch import Batch
from cfgen.metrics.common import Segments, bool_jaccard, div, guarded_mad, one_thread, share
from cfgen.metrics.names import AGGS, METRIC_NAMES, PLAUS_NORMS

if TYPE_CHECKING:
    from cfgen.metrics.context import MetricContext

Out = dict[str, np.ndarray]

#: what the original returns for an empty list: 0 for these, NaN for the rest
EMPTY_ZEROS = frozenset(
    (
        "nbr_valid_cf perc_valid_cf perc_valid_cf_all nbr_actionable_cf perc_actionable_cf "
        "perc_actionable_cf_all nbr_valid_actionable_cf perc_valid_actionable_cf "
        "perc_valid_actionable_cf_all accuracy_knn_sklearn accuracy_knn_dist delta "
        "delta_min delta_max plausibility_sum"
    ).split()
    + [f"plausibility_{n}" for n in PLAUS_NORMS]
)


class EceSuite:
    """``riccotti/ECE`` ``cf_eval/metrics.py`` ``evaluate_cf_list`` on encoded arrays."""

    name = "ece"

    def __init__(
        self, ctx: MetricContext, mad_scale: float = 1.4826, plausibility_anchor: str = "first"
    ) -> None:
        if plausibility_anchor not in ("first", "nearest_to_x"):
            raise ValueError(f"unknown ece_plausibility_anchor {plausibility_anchor!r}")
        self.ctx = c = ctx
        self.anchor = plausibility_anchor
        Xc = c.X_train[:, c.cont]
        raw = np.median(np.abs(Xc - np.median(Xc, axis=0)), axis=0) if len(Xc) else np.ones(0)
        mad = float(mad_scale) * raw
        self.mad = np.where(mad != 0, mad, 1.0)
        self.mixed_mad = guarded_mad(Xc)  # distance_mixed: cfgen's definition in both modes
        self._lof: Any = None

    # ---------------------------------------------------------------- the original's distances

    def parts(self, U: np.ndarray, V: np.ndarray) -> Out:
        """The original's per-row component distances (categoricals compared as raw codes)."""
        c = self.ctx
        Dc = V[:, c.cont] - U[:, c.cont]
        out = {"l2": np.sqrt((Dc * Dc).sum(axis=1)), "mad": (np.abs(Dc) / self.mad).sum(axis=1)}
        if c.n_cat:
            Uc, Vc = U[:, c.cat], V[:, c.cat]
            out["j"] = bool_jaccard(Uc, Vc)
            out["h"] = (Uc != Vc).mean(axis=1)
        return out

    def _agg(self, parts: Out, seg: Segments, prefix: str, out: Out, no_cat: float) -> None:
        """Mean / min / max of each component first, combined afterwards (as the original)."""
        c = self.ctx
        stats = {kind: seg.stats(v) for kind, v in parts.items()}
        for i, a in enumerate(AGGS):
            l2, mad = stats["l2"][i], stats["mad"][i]
            j = stats["j"][i] if c.n_cat else np.full(seg.n, no_cat)
            h = stats["h"][i] if c.n_cat else np.full(seg.n, no_cat)
            out[f"{prefix}_l2{a}"], out[f"{prefix}_mad{a}"] = l2, mad
            out[f"{prefix}_j{a}"], out[f"{prefix}_h{a}"] = j, h
            jj = j if c.n_cat else 0.0
            hh = h if c.n_cat else 0.0
            out[f"{prefix}_l2j{a}"] = c.r_cont * l2 + c.r_cat * jj
            out[f"{prefix}_mh{a}"] = c.r_cont * mad + c.r_cat * hh

    def mh(self, U: np.ndarray, V: np.ndarray) -> np.ndarray:
        p = self.parts(U, V)
        h = p["h"] if self.ctx.n_cat else 0.0
        return self.ctx.r_cont * p["mad"] + self.ctx.r_cat * h

    def euclid_jaccard(self, U: np.ndarray, V: np.ndarray) -> np.ndarray:
        """(len(U), len(V)) matrix of the original's ``euclidean_jaccard``."""
        c = self.ctx
        D = c.r_cont * cdist(U[:, c.cont], V[:, c.cont])
        if c.n_cat:
            D = D + c.r_cat * bool_jaccard(U[:, None, c.cat], V[None, :, c.cat])
        return D

    # ---------------------------------------------------------------- the suite

    def evaluate(self, b: Batch) -> Out:
        """Every metric but ``runtime`` for every task of ``b``: name -> (n,) array."""
        out, valid, act = self._validity(b)
        self._distances(b, out)
        self._diversity(b, out)
        self._knn(b, out)
        self._lof_delta(b, out)
        self._plausibility(b, out, valid, act)
        empty = b.seg.counts == 0  # the original's fixed dict for an empty list
        for name in METRIC_NAMES:
            if name in out and name != "nbr_cf":
                out[name] = np.where(empty, 0.0 if name in EMPTY_ZEROS else math.nan, out[name])
        return out

    def _validity(self, b: Batch) -> tuple[Out, np.ndarray, np.ndarray]:
        c, seg, m = self.ctx, b.seg, b.m
        own = b.owner
        valid = b.y_cf != b.y_x[own]  # the original is called without y_desidered
        viol = ((b.cfs != b.X[own]) & b.no_change[own]).sum(axis=1)  # only no_change is checked
        act = viol == 0
        n_valid, n_act = seg.sum(valid, 0.0), seg.sum(act, 0.0)
        n_va = seg.sum(valid & act, 0.0)
        return (
            {
                "nbr_cf": m,
                "nbr_valid_cf": n_valid,
                "perc_valid_cf": share(n_valid, m),
                "perc_valid_cf_all": div(n_valid, b.k),
                "nbr_actionable_cf": n_act,
                "perc_actionable_cf": share(n_act, m),
                "perc_actionable_cf_all": div(n_act, b.k),
                "nbr_valid_actionable_cf": n_va,
                "perc_valid_actionable_cf": share(n_va, m),
                "perc_valid_actionable_cf_all": div(n_va, b.k),
                "avg_nbr_violations_per_cf": seg.mean(viol),
                "avg_nbr_violations": div(seg.sum(viol), m * c.d),
            },
            valid,
            act,
        )

    def _distances(self, b: Batch, out: Out) -> None:
        c, seg = self.ctx, b.seg
        x = b.X[b.owner]
        self._agg(self.parts(x, b.cfs), seg, "distance", out, math.nan)
        D = b.cfs - x
        mixed = (np.abs(D[:, c.cont]) / self.mixed_mad).sum(axis=1)
        mixed = mixed + (np.abs(D[:, c.cat]) > c.atol).sum(axis=1)
        out["distance_mixed"], out["distance_mixed_min"], out["distance_mixed_max"] = seg.stats(
            mixed
        )
        changes = ((b.cfs != x) * c.weights).sum(axis=1)
        out["avg_nbr_changes_per_cf"] = seg.mean(changes)
        out["avg_nbr_changes"] = div(seg.sum(changes), b.m * c.d)

    def _diversity(self, b: Batch, out: Out) -> None:
        c, seg = self.ctx, b.seg
        first, second, pseg = b.pairs()
        single = seg.counts == 1
        div_out: Out = {}
        self._agg(self.parts(b.cfs[first], b.cfs[second]), pseg, "diversity", div_out, 0.0)
        for name, v in div_out.items():
            out[name] = np.where(single, 0.0, v)
        # the original weights a differing pair by whether the *second counterfactual's index*
        # j is in the continuous feature set (it meant the feature index)
        diff = b.cfs[first] != b.cfs[second]
        j_local = second - seg.starts[pseg.owner]
        w_pair = np.where(np.isin(j_local, np.flatnonzero(c.cont)), 1.0, 0.5)
        den = b.m * b.m * c.d
        for key, cols in (("cont", c.cont), ("cate", c.cat), ("all", slice(None))):
            v = div(pseg.sum(diff[:, cols].sum(axis=1) * w_pair), den)
            out[f"count_diversity_{key}"] = np.where(single, 0.0, v)

    def _knn(self, b: Batch, out: Out) -> None:
        """kNN: identity scaler, other class = any class but x's, test labels from the model."""
        c, seg, kts = self.ctx, b.seg, self.ctx.knn_test_size
        acc_sk, acc_d = np.zeros(b.n), np.zeros(b.n)
        tasks = np.flatnonzero(seg.counts > 0)
        if len(c.X_test) and len(tasks):
            y_x, y_cf, pred = b.y_x, b.y_cf, c.y_test_pred
            for t in tasks:
                dx = self.euclid_jaccard(b.X[t : t + 1], c.X_test)[0]
                picked = []
                for mask in (pred == y_x[t], pred != y_x[t]):
                    idx = np.flatnonzero(mask)
                    picked.append(idx[np.argsort(dx[idx], kind="stable")[:kts]])
                rows = np.concatenate(picked)
                if not rows.size:
                    continue
                s, e = seg.starts[t], seg.starts[t] + seg.counts[t]
                T = np.vstack([b.X[t : t + 1], b.cfs[s:e]])
                y_all = np.concatenate([y_x[t : t + 1], y_cf[s:e]])
                Xr, y_test = c.X_test[rows], pred[rows]
                acc_sk[t] = float(np.mean(y_all[np.argmin(cdist(Xr, T), 1)] == y_test))
                acc_d[t] = float(np.mean(y_all[np.argmin(self.euclid_jaccard(Xr, T), 1)] == y_test))
        out["accuracy_knn_sklearn"], out["accuracy_knn_dist"] = acc_sk, acc_d

    def _lof_delta(self, b: Batch, out: Out) -> None:
        """LOF: mean |predict| of a novelty LOF (labels +-1), identically 1.0; delta on labels."""
        seg = b.seg
        labels = np.zeros(0)
        if seg.total:
            model = self._lof_model()
            with one_thread():
                labels = np.abs(model.predict(b.cfs))
        out["lof"] = seg.mean(labels)
        dl = np.abs(b.y_cf - b.y_x[b.owner]).astype(float)
        out["delta"], out["delta_min"], out["delta_max"] = seg.stats(dl)

    def _lof_model(self) -> Any:
        """The original's novelty LOF (raw data, 3 neighbours), fitted on first use."""
        if self._lof is None:
            from sklearn.neighbors import LocalOutlierFactor

            n_nb = max(1, min(3, len(self.ctx.X_train) - 1))
            with one_thread():
                self._lof = LocalOutlierFactor(n_neighbors=n_nb, novelty=True).fit(self.ctx.X_train)
        return self._lof

    def _anchors(self, b: Batch) -> np.ndarray:
        """Per counterfactual, the test row it is compared with (-1: its class has no test row)."""
        c = self.ctx
        pred = c.y_test_pred
        anchor = np.full(b.seg.total, -1, dtype=np.intp)
        pools = {int(cls): np.flatnonzero(pred == cls) for cls in np.unique(pred)}
        y_cf, own = b.y_cf, b.owner
        for i in range(b.seg.total):
            pool = pools.get(int(y_cf[i]))
            if pool is None:
                continue  # the original crashes; its DPG port skips
            if self.anchor == "first":
                anchor[i] = pool[0]
            else:
                x = b.X[own[i]]
                P = c.X_test[pool]
                anchor[i] = pool[int(np.argmin(self.mh(np.broadcast_to(x, P.shape), P)))]
        return anchor

    def _plausibility(self, b: Batch, out: Out, valid: np.ndarray, act: np.ndarray) -> None:
        """From each counterfactual to one anchor test row of its predicted class."""
        seg = b.seg
        anchor = self._anchors(b)
        has = anchor >= 0
        per_cf = np.zeros(seg.total)
        if has.any():
            per_cf[has] = self.mh(b.cfs[has], self.ctx.X_test[anchor[has]])
        # the original adds the values one by one from 0.0: a running sum, not numpy's pairwise
        s = seg.reduce(per_cf, lambda a, axis: np.cumsum(a, axis=axis)[:, -1], 0.0)
        n_valid, n_act = seg.sum(valid, 0.0), seg.sum(act, 0.0)
        n_va = seg.sum(valid & act, 0.0)
        out["plausibility_sum"] = s
        out["plausibility_max_nbr_cf"] = div(s, b.k)
        out["plausibility_nbr_cf"] = div(s, b.m)
        for name, den in (("valid", n_valid), ("actionable", n_act), ("valid_actionable", n_va)):
            out[f"plausibility_nbr_{name}_cf"] = np.where(den > 0, div(s, den), s)
