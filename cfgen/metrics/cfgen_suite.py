"""cfgen's suite: Guidotti's metrics with the original's defects fixed (docs/metrics.md).

Everything query-independent (MAD, standardisation, one-hot layout, the test rows' embedding,
per-class plausibility references, the novelty LOF) is built once; :meth:`CfgenSuite.evaluate`
then scores every task of a :class:`~cfgen.metrics.batch.Batch` with one LOF query, one
distance pass per class and per-row numpy, reduced per task by
:class:`~cfgen.metrics.common.Segments` (same numbers as one task at a time).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial.distance import cdist

from cfgen.metrics.batch import Batch
from cfgen.metrics.common import div, guarded_mad, one_thread, share
from cfgen.metrics.names import AGGS, KINDS, PLAUS_NORMS

if TYPE_CHECKING:
    from cfgen.metrics.context import MetricContext

Out = dict[str, np.ndarray]

#: rows x reference rows per distance block (bounds memory of the plausibility pass)
BLOCK = 1 << 21


class CfgenSuite:
    """The corrected definitions (``compat="cfgen"``)."""

    name = "cfgen"

    def __init__(self, ctx: MetricContext, lof_neighbors: int = 20) -> None:
        self.ctx = c = ctx
        Xc = c.X_train[:, c.cont]
        self.mad = guarded_mad(Xc)
        mu = Xc.mean(axis=0) if len(Xc) else np.zeros(c.n_cont)
        sd = Xc.std(axis=0) if len(Xc) else np.ones(c.n_cont)
        self.mu, self.sd = mu, np.where(sd > 0, sd, 1.0)
        self._setup_onehot()
        self.Z_test = self.standardise(c.X_test)
        self.C_test = c.X_test[:, c.cat]
        self.E_test = self.embed(c.X_test)
        # plausibility reference: training rows per (true) class, continuous part over MAD
        self.ref: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for cls in np.unique(c.y_train):
            rows = c.X_train[c.y_train == cls]
            self.ref[int(cls)] = (rows[:, c.cont] / self.mad, rows[:, c.cat])
        # novelty LOF on the scaled training data, fitted once
        from sklearn.neighbors import LocalOutlierFactor

        n_nb = max(1, min(int(lof_neighbors), len(c.X_train) - 1))
        self.lof_model = LocalOutlierFactor(n_neighbors=n_nb, novelty=True)
        with one_thread():
            self.lof_model.fit(self.embed(c.X_train))

    # ---------------------------------------------------------------- representations

    def _setup_onehot(self) -> None:
        c = self.ctx
        levels = []
        for j in np.flatnonzero(c.cat):
            seen = np.concatenate([c.X_train[:, j], c.X_test[:, j]])
            top = int(np.nanmax(seen)) + 1 if seen.size else 0
            levels.append(max(len(c.schema.features[j].categories), top, 1))
        self.levels = np.array(levels, dtype=int)
        self.offsets = np.concatenate([[0], np.cumsum(self.levels)[:-1]]).astype(int)

    def standardise(self, X: np.ndarray) -> np.ndarray:
        return (X[:, self.ctx.cont] - self.mu) / self.sd

    def embed(self, X: np.ndarray) -> np.ndarray:
        """Scaled representation for Euclidean estimators (kNN, LOF).

        Non-categorical columns are standardised with the training mean/std; each categorical
        becomes a one-hot block scaled by 1/sqrt(2), so a category change adds exactly 1 to the
        squared distance (as a one-standard-deviation move of a continuous feature does).
        """
        c = self.ctx
        X = np.atleast_2d(np.asarray(X, dtype=float))
        Z = self.standardise(X)
        if c.n_cat == 0:
            return Z
        codes = np.rint(X[:, c.cat]).astype(int)
        H = np.zeros((len(X), int(self.levels.sum())))
        ok = (codes >= 0) & (codes < self.levels)  # unseen codes: all-zero block
        rows, cols = np.nonzero(ok)
        H[rows, self.offsets[cols] + codes[rows, cols]] = 1.0 / math.sqrt(2.0)
        return np.hstack([Z, H])

    def parts(self, U: np.ndarray, V: np.ndarray) -> Out:
        """Row-wise distances between aligned rows of ``U`` and ``V`` (same shape (n, d))."""
        c = self.ctx
        D = V - U
        Dc = D[:, c.cont]
        l2 = np.sqrt((Dc * Dc).sum(axis=1))
        mad = (np.abs(Dc) / self.mad).sum(axis=1)
        if c.n_cat:
            hc = (np.abs(D[:, c.cat]) > c.atol).sum(axis=1).astype(float)
            h = hc / c.n_cat
            # set Jaccard on {(feature, value)}: |A^B| = n_cat - hc, |AvB| = n_cat + hc
            j = 2.0 * hc / (c.n_cat + hc)
        else:
            hc = h = j = np.zeros(len(D))
        return {
            "l2": l2,
            "mad": mad,
            "j": j,
            "h": h,
            "l2j": c.r_cont * l2 + c.r_cat * j,
            "mh": c.r_cont * mad + c.r_cat * h,
            "mixed": mad + hc,
        }

    # ---------------------------------------------------------------- the suite

    def evaluate(self, b: Batch) -> Out:
        """Every metric but ``runtime`` for every task of ``b``: name -> (n,) array."""
        out, valid, act = self._validity(b)
        self._distances(b, out)
        self._diversity(b, out)
        self._knn(b, out)
        self._lof_delta(b, out)
        self._plausibility(b, out, valid, act)
        return out

    def _validity(self, b: Batch) -> tuple[Out, np.ndarray, np.ndarray]:
        c, seg, m = self.ctx, b.seg, b.m
        own = b.owner
        valid = b.y_cf == b.targets[own]
        delta = b.cfs - b.X[own]
        bad = (
            (np.abs(delta) > c.atol) & b.no_change[own]
            | (delta > c.atol) & b.non_inc[own]
            | (delta < -c.atol) & b.non_dec[own]
        )
        perm = c.schema.permitted  # dataset.ranges: a move out of its range is not actionable
        if any(p is not None for p in perm):
            lo = np.array([-np.inf if p is None else p[0] for p in perm], dtype=float)
            hi = np.array([np.inf if p is None else p[1] for p in perm], dtype=float)
            bad |= ((b.cfs < lo - c.atol) | (b.cfs > hi + c.atol)) & (np.abs(delta) > c.atol)
        viol = bad.sum(axis=1)
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
        """x -> each counterfactual: mean / min / max of the per-counterfactual value; changes."""
        c, seg = self.ctx, b.seg
        x = b.X[b.owner]
        for kind, v in self.parts(x, b.cfs).items():
            prefix = "distance_mixed" if kind == "mixed" else f"distance_{kind}"
            out[prefix], out[f"{prefix}_min"], out[f"{prefix}_max"] = seg.stats(v)
        changed = np.abs(b.cfs - x) > c.atol
        n_changes = (changed * c.weights).sum(axis=1)
        out["avg_nbr_changes_per_cf"] = seg.mean(n_changes)
        out["avg_nbr_changes"] = div(seg.sum(n_changes), b.m * c.d)

    def _diversity(self, b: Batch, out: Out) -> None:
        """Over the unordered pairs of each set; a single counterfactual has zero spread."""
        c = self.ctx
        first, second, pseg = b.pairs()
        single = b.seg.counts == 1
        U, V = b.cfs[first], b.cfs[second]
        parts = self.parts(U, V)
        for kind in KINDS:
            stats = pseg.stats(parts[kind])
            for a, v in zip(AGGS, stats, strict=True):
                out[f"diversity_{kind}{a}"] = np.where(single, 0.0, v)
        diff = np.abs(U - V) > c.atol
        den = pseg.counts * c.d
        cont = div(pseg.sum(diff[:, c.cont].sum(axis=1)), den)
        cate = div(c.categorical_weight * pseg.sum(diff[:, c.cat].sum(axis=1)), den)
        cont, cate = np.where(single, 0.0, cont), np.where(single, 0.0, cate)
        out["count_diversity_cont"], out["count_diversity_cate"] = cont, cate
        out["count_diversity_all"] = cont + cate

    def _knn_rows(self, b: Batch, tasks: np.ndarray) -> list[np.ndarray]:
        """Per task, the ``knn_test_size`` nearest test rows predicted ``y_x`` and those in the
        other side (the target class, or any class but ``y_x`` when the target is ``y_x``)."""
        c, kts = self.ctx, self.ctx.knn_test_size
        y_x, pred = b.y_x, c.y_test_pred
        by_class = {int(cls): np.flatnonzero(pred == cls) for cls in np.unique(pred)}
        none = np.zeros(0, dtype=np.intp)
        picked = []
        step = max(1, BLOCK // max(1, len(c.X_test) * c.d))
        for start in range(0, len(tasks), step):
            chunk = tasks[start : start + step]
            z = self.standardise(b.X[chunk])
            dist = c.r_cont * np.sqrt(((self.Z_test[None, :, :] - z[:, None, :]) ** 2).sum(axis=2))
            if c.n_cat:
                hc = (self.C_test[None, :, :] != b.X[chunk][:, None, c.cat]).sum(axis=2)
                dist = dist + c.r_cat * 2.0 * hc / (c.n_cat + hc)
            for t, dt in zip(chunk, dist, strict=True):
                yx, tgt = int(y_x[t]), int(b.targets[t])
                other = by_class.get(tgt, none) if tgt != yx else np.flatnonzero(pred != yx)
                sel = []
                for idx in (by_class.get(yx, none), other):
                    if idx.size > kts:
                        idx = idx[np.argpartition(dt[idx], kts - 1)[:kts]]
                    sel.append(idx)
                picked.append(np.concatenate(sel))
        return picked

    def _knn(self, b: Batch, out: Out) -> None:
        """Discriminative power: 1-NN fitted on x U C (model labels), tested on test rows near x."""
        c, seg = self.ctx, b.seg
        acc_sk = np.full(b.n, math.nan)
        acc_d = np.full(b.n, math.nan)
        tasks = np.flatnonzero(seg.counts > 0)
        if len(c.X_test) and len(tasks):
            Ex, Ecf = self.embed(b.X), self.embed(b.cfs)
            Zx, Zcf = self.standardise(b.X), self.standardise(b.cfs)
            y_x, y_cf, pred = b.y_x, b.y_cf, c.y_test_pred
            for t, rows in zip(tasks, self._knn_rows(b, tasks), strict=True):
                if not rows.size:
                    continue
                s, e = seg.starts[t], seg.starts[t] + seg.counts[t]
                y_all = np.concatenate([y_x[t : t + 1], y_cf[s:e]])
                y_test = pred[rows]
                nn = np.argmin(cdist(self.E_test[rows], np.vstack([Ex[t : t + 1], Ecf[s:e]])), 1)
                acc_sk[t] = float(np.mean(y_all[nn] == y_test))
                D = c.r_cont * cdist(self.Z_test[rows], np.vstack([Zx[t : t + 1], Zcf[s:e]]))
                if c.n_cat:
                    T_cat = np.vstack([b.X[t : t + 1, c.cat], b.cfs[s:e][:, c.cat]])
                    # scipy's "hamming" (share of differing codes) times n_cat, without its
                    # per-call overhead
                    diff = (self.C_test[rows][:, None, :] != T_cat[None, :, :]).sum(axis=2)
                    hc = diff / c.n_cat * c.n_cat
                    D = D + c.r_cat * 2.0 * hc / (c.n_cat + hc)
                acc_d[t] = float(np.mean(y_all[np.argmin(D, axis=1)] == y_test))
        out["accuracy_knn_sklearn"], out["accuracy_knn_dist"] = acc_sk, acc_d

    def _lof_delta(self, b: Batch, out: Out) -> None:
        """LOF (~1 inlier, >1 outlier), mean over C; change in the target's probability."""
        seg = b.seg
        lof = np.zeros(0)
        if seg.total:
            with one_thread():
                lof = -self.lof_model.score_samples(self.embed(b.cfs))
        out["lof"] = seg.mean(lof)
        n_cls = b.proba_cf.shape[1]
        tgt = b.targets[b.owner]
        ok = tgt < n_cls
        dp = np.full(seg.total, math.nan)
        rows = np.flatnonzero(ok)
        dp[rows] = b.proba_cf[rows, tgt[rows]] - b.proba_x[b.owner[rows], tgt[rows]]
        out["delta"], out["delta_min"], out["delta_max"] = seg.stats(dp)

    def _nearest_reference(self, cfs: np.ndarray, y_cf: np.ndarray) -> np.ndarray:
        """Per counterfactual, the MH distance to its nearest training row of its class."""
        c = self.ctx
        plaus = np.full(len(cfs), math.nan)
        cmad = cfs[:, c.cont] / self.mad
        for cls in np.unique(y_cf):
            ref = self.ref.get(int(cls))
            if ref is None or len(ref[0]) == 0:
                continue
            sel = np.flatnonzero(y_cf == cls)
            step = max(1, BLOCK // len(ref[0]))
            for i in range(0, len(sel), step):
                rows = sel[i : i + step]
                D = c.r_cont * cdist(cmad[rows], ref[0], "cityblock")
                if c.n_cat:
                    D = D + c.r_cat * cdist(cfs[rows][:, c.cat], ref[1], "hamming")
                plaus[rows] = D.min(axis=1)
        return plaus

    def _plausibility(self, b: Batch, out: Out, valid: np.ndarray, act: np.ndarray) -> None:
        """Each counterfactual to its own nearest training row of its (predicted) class."""
        s = b.seg.sum(self._nearest_reference(b.cfs, b.y_cf))
        norms = (b.k, b.m, b.seg.sum(valid, 0.0), b.seg.sum(act, 0.0), b.seg.sum(valid & act, 0.0))
        out["plausibility_sum"] = s
        for name, den in zip(PLAUS_NORMS, norms, strict=True):
            out[f"plausibility_{name}"] = div(s, den)
