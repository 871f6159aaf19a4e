"""Guidotti's (2022) counterfactual metric suite, per query, vectorised over the returned set.

The suite is the one of the ECE ``cf_eval`` code (``cf_eval/metrics.py``, Guidotti, "Counterfactual
explanations and how to find them", DMKD 2022) that the DPG-vs-DiCE tables report. cfgen computes
it for each query ``x`` and its returned counterfactual set ``C`` (``|C| <= k``) with the original's
defects fixed; ``compat="ece"`` reproduces the original definitions, defects included, so numbers
can be put next to published tables. Every definition, its direction and what changed from the
original is in ``docs/metrics.md``.

Usage::

    ctx = MetricContext(schema, X_train, y_train, X_test, model.predict_proba)
    row = ctx.compute(x, explanation.counterfactuals, target, k, explanation.seconds)
    summary = aggregate([row, ...])          # per metric: mean, std, n, ci_low, ci_high

All arrays live in the model's encoded space: categoricals are integer codes, classes ``0..C-1``
(column ``c`` of ``predict_proba`` is class ``c``). Integer features are ordinal numbers and are
treated like continuous ones ("non-categorical") everywhere, as the original did.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
from scipy.spatial.distance import cdist

from cfgen.schema import FeatureSchema, Rule, actionability_violations

__all__ = [
    "COMPAT_MODES",
    "DIRECTIONS",
    "METRIC_NAMES",
    "MetricContext",
    "aggregate",
    "guarded_mad",
]

COMPAT_MODES: tuple[str, ...] = ("cfgen", "ece")

_AGGS = ("", "_min", "_max")
_KINDS = ("l2", "mad", "j", "h", "l2j", "mh")
_PLAUS_NORMS = (
    "max_nbr_cf",
    "nbr_cf",
    "nbr_valid_cf",
    "nbr_actionable_cf",
    "nbr_valid_actionable_cf",
)

#: Every key :meth:`MetricContext.compute` returns, in the original's column order (+ runtime).
METRIC_NAMES: tuple[str, ...] = (
    "nbr_cf",
    "nbr_valid_cf",
    "perc_valid_cf",
    "perc_valid_cf_all",
    "nbr_actionable_cf",
    "perc_actionable_cf",
    "perc_actionable_cf_all",
    "nbr_valid_actionable_cf",
    "perc_valid_actionable_cf",
    "perc_valid_actionable_cf_all",
    "avg_nbr_violations_per_cf",
    "avg_nbr_violations",
    *(f"distance_{k}{a}" for a in _AGGS for k in _KINDS),
    "avg_nbr_changes_per_cf",
    "avg_nbr_changes",
    *(f"diversity_{k}{a}" for a in _AGGS for k in _KINDS),
    "count_diversity_cont",
    "count_diversity_cate",
    "count_diversity_all",
    "accuracy_knn_sklearn",
    "accuracy_knn_dist",
    "lof",
    "delta",
    "delta_min",
    "delta_max",
    "plausibility_sum",
    *(f"plausibility_{n}" for n in _PLAUS_NORMS),
    "runtime",
)


def _direction(name: str) -> str:
    down = ("distance_", "plausibility_", "avg_nbr_", "lof", "runtime")
    return "down" if name.startswith(down) else "up"


#: ``"up"`` when larger is better, ``"down"`` when smaller is better.
DIRECTIONS: dict[str, str] = {n: _direction(n) for n in METRIC_NAMES}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def guarded_mad(X: np.ndarray) -> np.ndarray:
    """Per-column median absolute deviation with cfgen's zero guard.

    ``MAD_j = median_i |X_ij - median(X_j)|`` (scale 1, as Guidotti's and DiCE's definitions).
    Where that is 0 (more than half the rows share one value: common for integer, count and
    sparse features) the mean absolute deviation around the median is used instead, which is 0
    only for a column that is constant; a constant column gets 1.0 (its changes count in raw units).
    """
    X = np.asarray(X, dtype=float)
    if X.shape[1] == 0:
        return np.ones(0)
    med = np.median(X, axis=0)
    dev = np.abs(X - med)
    mad = np.median(dev, axis=0)
    mean_dev = dev.mean(axis=0)
    mad = np.where(mad > 0, mad, mean_dev)
    return np.where(mad > 0, mad, 1.0)


def _stats(v: np.ndarray) -> tuple[float, float, float]:
    if v.size == 0:
        return (math.nan, math.nan, math.nan)
    return (float(v.mean()), float(v.min()), float(v.max()))


def _div(num: float, den: float) -> float:
    return float(num) / den if den > 0 else math.nan


def _bool_jaccard(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Row-wise Jaccard distance of ``A != 0`` and ``B != 0`` (scipy >= 1.15 ``jaccard``)."""
    a, b = A != 0, B != 0
    union = (a | b).sum(axis=-1)
    diff = (a ^ b).sum(axis=-1)
    return np.divide(diff, union, out=np.zeros(diff.shape, dtype=float), where=union > 0)


# --------------------------------------------------------------------------------------------
# context
# --------------------------------------------------------------------------------------------


class MetricContext:
    """Everything the metrics need that does not depend on the query, built once per run.

    Parameters
    ----------
    schema:
        Feature kinds and (default) actionability rules. ``compute(schema=...)`` overrides rules.
    X_train, y_train:
        Training data (encoded) and its true labels: MAD, scaler, LOF and plausibility reference.
    X_test:
        Test data (encoded); the kNN discriminative-power metrics score on its rows, labelled by
        the model (``ece`` mode also takes plausibility's reference rows from it).
    predict_proba:
        ``f(X (n, d)) -> (n, n_classes)``; the predicted class is its arg-max.
    compat:
        ``"cfgen"`` (fixed definitions) or ``"ece"`` (the original's definitions, see docs).
    categorical_weight:
        Weight of a categorical feature in change counts (sparsity, count diversity). Default 1.0
        in ``cfgen`` (a category change is one code change here) and 0.5 in ``ece`` (the original
        counted one-hot columns, two per category change).
    knn_test_size:
        Test rows per side for the kNN metrics (5 same-class + 5 other-class).
    lof_neighbors:
        ``n_neighbors`` of the novelty LOF (cfgen; ``ece`` uses the original's 3).
    atol:
        A feature counts as changed when ``|cf_j - x_j| > atol`` (cfgen; ``ece`` uses ``!=``).
    ece_mad_scale:
        ``ece`` MAD factor: 1.4826 (``scipy.stats.median_absolute_deviation``, what ECE called);
        1.0 reproduces the CounterFactualDPG port (``median_abs_deviation``).
    ece_plausibility_anchor:
        ``"first"`` (what the ECE code computes: the first test row of the counterfactual's class,
        because its "nearest" search arg-sorts a scalar mean) or ``"nearest_to_x"`` (its intent).
    """

    def __init__(
        self,
        schema: FeatureSchema,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_test: np.ndarray,
        predict_proba: Callable[[np.ndarray], np.ndarray],
        *,
        compat: str = "cfgen",
        categorical_weight: float | None = None,
        knn_test_size: int = 5,
        lof_neighbors: int = 20,
        atol: float = 1e-9,
        ece_mad_scale: float = 1.4826,
        ece_plausibility_anchor: str = "first",
    ) -> None:
        if compat not in COMPAT_MODES:
            raise ValueError(f"compat must be one of {COMPAT_MODES}, got {compat!r}")
        if ece_plausibility_anchor not in ("first", "nearest_to_x"):
            raise ValueError(f"unknown ece_plausibility_anchor {ece_plausibility_anchor!r}")
        self.schema = schema
        self.compat = compat
        self.predict_proba = predict_proba
        self.knn_test_size = int(knn_test_size)
        self.atol = float(atol)
        self.ece_plausibility_anchor = ece_plausibility_anchor

        X_train = np.asarray(X_train, dtype=float)
        X_test = np.asarray(X_test, dtype=float)
        y_train = np.asarray(y_train).astype(int)
        d = len(schema)
        if X_train.ndim != 2 or X_train.shape[1] != d or X_test.ndim != 2 or X_test.shape[1] != d:
            raise ValueError(f"X_train/X_test must be 2-D with {d} columns (the schema's)")
        if len(y_train) != len(X_train):
            raise ValueError("y_train and X_train differ in length")
        self.d = d
        self.cat = schema.categorical
        self.cont = ~self.cat  # continuous + integer: "non-categorical"
        self.n_cat = int(self.cat.sum())
        self.n_cont = d - self.n_cat
        self.r_cont = self.n_cont / d
        self.r_cat = self.n_cat / d
        if categorical_weight is None:
            categorical_weight = 1.0 if compat == "cfgen" else 0.5
        self.categorical_weight = float(categorical_weight)
        self.weights = np.where(self.cat, self.categorical_weight, 1.0)

        self.X_train, self.y_train, self.X_test = X_train, y_train, X_test
        self.y_test_pred = self._predict(X_test) if len(X_test) else np.zeros(0, dtype=int)

        Xc = X_train[:, self.cont]
        if compat == "cfgen":
            self.mad = guarded_mad(Xc)
            mu = Xc.mean(axis=0) if len(Xc) else np.zeros(self.n_cont)
            sd = Xc.std(axis=0) if len(Xc) else np.ones(self.n_cont)
            self.mu, self.sd = mu, np.where(sd > 0, sd, 1.0)
            self._setup_onehot(X_train, X_test, schema)
            # kNN test rows, standardised once
            self.Z_test = (X_test[:, self.cont] - self.mu) / self.sd
            self.C_test = X_test[:, self.cat]
            self.E_test = self.embed(X_test)
            # plausibility reference: training rows per (true) class, continuous part over MAD
            self.ref: dict[int, tuple[np.ndarray, np.ndarray]] = {}
            for c in np.unique(y_train):
                rows = X_train[y_train == c]
                self.ref[int(c)] = (rows[:, self.cont] / self.mad, rows[:, self.cat])
            # novelty LOF on the scaled training data, fitted once
            from sklearn.neighbors import LocalOutlierFactor

            n_nb = max(1, min(int(lof_neighbors), len(X_train) - 1))
            self.lof_model = LocalOutlierFactor(n_neighbors=n_nb, novelty=True)
            self.lof_model.fit(self.embed(X_train))
        else:
            raw = np.median(np.abs(Xc - np.median(Xc, axis=0)), axis=0) if len(Xc) else np.ones(0)
            mad = float(ece_mad_scale) * raw
            self.mad = np.where(mad != 0, mad, 1.0)
            self._ece_lof = None

    # ---------------------------------------------------------------- shared plumbing

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(np.asarray(self.predict_proba(X)), axis=1)

    def _setup_onehot(self, X_train: np.ndarray, X_test: np.ndarray, schema: FeatureSchema) -> None:
        cat_idx = np.flatnonzero(self.cat)
        levels = []
        for j in cat_idx:
            seen = np.concatenate([X_train[:, j], X_test[:, j]])
            top = int(np.nanmax(seen)) + 1 if seen.size else 0
            levels.append(max(len(schema.features[j].categories), top, 1))
        self.levels = np.array(levels, dtype=int)
        self.offsets = np.concatenate([[0], np.cumsum(self.levels)[:-1]]).astype(int)

    def embed(self, X: np.ndarray) -> np.ndarray:
        """Scaled representation for Euclidean estimators (kNN, LOF) in ``cfgen`` mode.

        Non-categorical columns are standardised with the training mean/std; each categorical
        becomes a one-hot block scaled by 1/sqrt(2), so a category change adds exactly 1 to the
        squared distance (as a one-standard-deviation move of a continuous feature does).
        """
        X = np.atleast_2d(np.asarray(X, dtype=float))
        Z = (X[:, self.cont] - self.mu) / self.sd
        if self.n_cat == 0:
            return Z
        codes = np.rint(X[:, self.cat]).astype(int)
        H = np.zeros((len(X), int(self.levels.sum())))
        ok = (codes >= 0) & (codes < self.levels)  # unseen codes: all-zero block
        rows, cols = np.nonzero(ok)
        H[rows, self.offsets[cols] + codes[rows, cols]] = 1.0 / math.sqrt(2.0)
        return np.hstack([Z, H])

    def _check(self, x, cfs, schema):
        x = np.asarray(x, dtype=float).ravel()
        if x.shape[0] != self.d:
            raise ValueError(f"x has {x.shape[0]} features, schema has {self.d}")
        cfs = np.asarray(cfs, dtype=float)
        cfs = cfs.reshape(0, self.d) if cfs.size == 0 else np.atleast_2d(cfs)
        if cfs.shape[1] != self.d:
            raise ValueError(f"counterfactuals have {cfs.shape[1]} features, schema has {self.d}")
        schema = self.schema if schema is None else schema
        if len(schema) != self.d or not np.array_equal(schema.categorical, self.cat):
            raise ValueError("schema override must describe the same features as the context's")
        return x, cfs, schema.rules

    def compute(
        self,
        x: np.ndarray,
        cfs: np.ndarray,
        target: int,
        k: int,
        runtime: float,
        schema: FeatureSchema | None = None,
    ) -> dict[str, float]:
        """All metrics of one query's set of counterfactuals, in ``METRIC_NAMES`` order.

        ``x`` (d,), ``cfs`` (m, d) with m <= k (m may be 0), ``target`` the requested class,
        ``runtime`` seconds of search. ``schema`` overrides the context's actionability rules (the
        combination's rules); it must have the same features.
        """
        x, cfs, rules = self._check(x, cfs, schema)
        if self.compat == "ece":
            out = self._compute_ece(x, cfs, int(k), rules)
        else:
            out = self._compute_cfgen(x, cfs, int(target), int(k), rules)
        out["runtime"] = float(runtime)
        return {name: float(out[name]) for name in METRIC_NAMES}

    def compute_explanation(self, x: np.ndarray, explanation, schema: FeatureSchema | None = None):
        """:meth:`compute` on an :class:`~cfgen.explanation.Explanation`."""
        return self.compute(
            x,
            explanation.counterfactuals,
            explanation.target,
            explanation.k,
            explanation.seconds,
            schema=schema,
        )

    # ---------------------------------------------------------------- cfgen definitions

    def _parts(self, U: np.ndarray, V: np.ndarray) -> dict[str, np.ndarray]:
        """Row-wise distances between aligned rows of ``U`` and ``V`` (same shape (n, d))."""
        D = V - U
        Dc = D[:, self.cont]
        l2 = np.sqrt((Dc * Dc).sum(axis=1))
        mad = (np.abs(Dc) / self.mad).sum(axis=1)
        if self.n_cat:
            hc = (np.abs(D[:, self.cat]) > self.atol).sum(axis=1).astype(float)
            h = hc / self.n_cat
            # set Jaccard on {(feature, value)}: |A^B| = n_cat - hc, |AvB| = n_cat + hc
            j = 2.0 * hc / (self.n_cat + hc)
        else:
            h = j = np.zeros(len(D))
        return {
            "l2": l2,
            "mad": mad,
            "j": j,
            "h": h,
            "l2j": self.r_cont * l2 + self.r_cat * j,
            "mh": self.r_cont * mad + self.r_cat * h,
        }

    def _knn_rows(self, x: np.ndarray, y_x: int, other: np.ndarray) -> np.ndarray:
        """Indices of the ``knn_test_size`` nearest test rows predicted ``y_x`` and in ``other``."""
        n = len(self.X_test)
        if n == 0:
            return np.zeros(0, dtype=int)
        z = (x[self.cont] - self.mu) / self.sd
        dist = self.r_cont * np.sqrt(((self.Z_test - z) ** 2).sum(axis=1))
        if self.n_cat:
            hc = (self.C_test != x[self.cat]).sum(axis=1)
            dist = dist + self.r_cat * 2.0 * hc / (self.n_cat + hc)
        picked = []
        for mask in (self.y_test_pred == y_x, other):
            idx = np.flatnonzero(mask)
            if idx.size > self.knn_test_size:
                part = np.argpartition(dist[idx], self.knn_test_size - 1)[: self.knn_test_size]
                idx = idx[part]
            picked.append(idx)
        return np.concatenate(picked)

    def _compute_cfgen(self, x, cfs, target, k, rules) -> dict[str, float]:
        m = len(cfs)
        nan = math.nan
        out: dict[str, float] = {"nbr_cf": m}

        proba = np.asarray(self.predict_proba(np.vstack([x[None, :], cfs])), dtype=float)
        y_all = np.argmax(proba, axis=1)
        y_x, y_cf = int(y_all[0]), y_all[1:]
        valid = y_cf == target
        viol = actionability_violations(x, cfs, rules, atol=self.atol) if m else np.zeros(0, int)
        actionable = viol == 0
        n_valid, n_act = int(valid.sum()), int(actionable.sum())
        n_va = int((valid & actionable).sum())
        out.update(
            nbr_valid_cf=n_valid,
            perc_valid_cf=n_valid / m if m else 0.0,
            perc_valid_cf_all=_div(n_valid, k),
            nbr_actionable_cf=n_act,
            perc_actionable_cf=n_act / m if m else 0.0,
            perc_actionable_cf_all=_div(n_act, k),
            nbr_valid_actionable_cf=n_va,
            perc_valid_actionable_cf=n_va / m if m else 0.0,
            perc_valid_actionable_cf_all=_div(n_va, k),
        )
        if m == 0:
            for name in METRIC_NAMES:
                out.setdefault(name, nan)
            return out

        out["avg_nbr_violations_per_cf"] = float(viol.mean())
        out["avg_nbr_violations"] = float(viol.sum()) / (m * self.d)

        # distance x -> each counterfactual, then mean / min / max of the combined per-cf value
        parts = self._parts(np.broadcast_to(x, cfs.shape), cfs)
        for kind, v in parts.items():
            mean, lo, hi = _stats(v)
            out[f"distance_{kind}"], out[f"distance_{kind}_min"] = mean, lo
            out[f"distance_{kind}_max"] = hi

        changed = np.abs(cfs - x) > self.atol
        n_changes = (changed * self.weights).sum(axis=1)
        out["avg_nbr_changes_per_cf"] = float(n_changes.mean())
        out["avg_nbr_changes"] = float(n_changes.sum()) / (m * self.d)

        # diversity over the unordered pairs of C; a single counterfactual has zero spread
        if m >= 2:
            i, j = np.triu_indices(m, 1)
            parts = self._parts(cfs[i], cfs[j])
            for kind, v in parts.items():
                mean, lo, hi = _stats(v)
                out[f"diversity_{kind}"], out[f"diversity_{kind}_min"] = mean, lo
                out[f"diversity_{kind}_max"] = hi
            diff = np.abs(cfs[i] - cfs[j]) > self.atol
            den = len(i) * self.d
            cont = float(diff[:, self.cont].sum()) / den
            cate = self.categorical_weight * float(diff[:, self.cat].sum()) / den
        else:
            for kind in _KINDS:
                for a in _AGGS:
                    out[f"diversity_{kind}{a}"] = 0.0
            cont = cate = 0.0
        out.update(
            count_diversity_cont=cont, count_diversity_cate=cate, count_diversity_all=cont + cate
        )

        # discriminative power: 1-NN trained on x U C (model labels), tested on test rows near x
        other = self.y_test_pred == target if target != y_x else self.y_test_pred != y_x
        rows = self._knn_rows(x, y_x, other)
        if rows.size:
            T = np.vstack([x[None, :], cfs])
            y_test = self.y_test_pred[rows]
            nn = np.argmin(cdist(self.E_test[rows], self.embed(T)), axis=1)
            out["accuracy_knn_sklearn"] = float(np.mean(y_all[nn] == y_test))
            zt = (T[:, self.cont] - self.mu) / self.sd
            D = self.r_cont * cdist(self.Z_test[rows], zt)
            if self.n_cat:
                hc = cdist(self.C_test[rows], T[:, self.cat], "hamming") * self.n_cat
                D = D + self.r_cat * 2.0 * hc / (self.n_cat + hc)
            out["accuracy_knn_dist"] = float(np.mean(y_all[np.argmin(D, axis=1)] == y_test))
        else:
            out["accuracy_knn_sklearn"] = out["accuracy_knn_dist"] = nan

        # LOF: the local outlier factor itself (~1 inlier, >1 outlier), mean over C
        out["lof"] = float(np.mean(-self.lof_model.score_samples(self.embed(cfs))))

        # delta: change in the model's probability of the target class
        dp = proba[1:, target] - proba[0, target] if target < proba.shape[1] else np.full(m, nan)
        out["delta"], out["delta_min"], out["delta_max"] = _stats(dp)

        # plausibility: each cf to its own nearest training row of the cf's (predicted) class
        plaus = np.full(m, nan)
        cmad = cfs[:, self.cont] / self.mad
        for c in np.unique(y_cf):
            ref = self.ref.get(int(c))
            if ref is None or len(ref[0]) == 0:
                continue
            sel = y_cf == c
            D = self.r_cont * cdist(cmad[sel], ref[0], "cityblock")
            if self.n_cat:
                D = D + self.r_cat * cdist(cfs[sel][:, self.cat], ref[1], "hamming")
            plaus[sel] = D.min(axis=1)
        s = float(plaus.sum())
        out["plausibility_sum"] = s
        out["plausibility_max_nbr_cf"] = _div(s, k)
        out["plausibility_nbr_cf"] = s / m
        out["plausibility_nbr_valid_cf"] = _div(s, n_valid)
        out["plausibility_nbr_actionable_cf"] = _div(s, n_act)
        out["plausibility_nbr_valid_actionable_cf"] = _div(s, n_va)
        return out

    # ---------------------------------------------------------------- ece definitions

    def _ece_parts(self, U: np.ndarray, V: np.ndarray) -> dict[str, np.ndarray]:
        """The original's per-row component distances (categoricals compared as raw codes)."""
        Dc = V[:, self.cont] - U[:, self.cont]
        out = {
            "l2": np.sqrt((Dc * Dc).sum(axis=1)),
            "mad": (np.abs(Dc) / self.mad).sum(axis=1),
        }
        if self.n_cat:
            Uc, Vc = U[:, self.cat], V[:, self.cat]
            out["j"] = _bool_jaccard(Uc, Vc)
            out["h"] = (Uc != Vc).mean(axis=1)
        return out

    def _ece_agg(self, parts: dict[str, np.ndarray], prefix: str, out: dict, no_cat: float) -> None:
        # mean / min / max of each component first, combined afterwards (as the original)
        for a, f in (("", np.mean), ("_min", np.min), ("_max", np.max)):
            l2, mad = float(f(parts["l2"])), float(f(parts["mad"]))
            j = float(f(parts["j"])) if self.n_cat else no_cat
            h = float(f(parts["h"])) if self.n_cat else no_cat
            out[f"{prefix}_l2{a}"], out[f"{prefix}_mad{a}"] = l2, mad
            out[f"{prefix}_j{a}"], out[f"{prefix}_h{a}"] = j, h
            jj = j if self.n_cat else 0.0
            hh = h if self.n_cat else 0.0
            out[f"{prefix}_l2j{a}"] = self.r_cont * l2 + self.r_cat * jj
            out[f"{prefix}_mh{a}"] = self.r_cont * mad + self.r_cat * hh

    def _ece_mh(self, u: np.ndarray, V: np.ndarray) -> np.ndarray:
        p = self._ece_parts(np.broadcast_to(u, V.shape), V)
        h = p["h"] if self.n_cat else 0.0
        return self.r_cont * p["mad"] + self.r_cat * h

    def _ece_euclid_jaccard(self, U: np.ndarray, V: np.ndarray) -> np.ndarray:
        """(len(U), len(V)) matrix of the original's ``euclidean_jaccard``."""
        D = self.r_cont * cdist(U[:, self.cont], V[:, self.cont])
        if self.n_cat:
            a = U[:, None, self.cat]
            b = V[None, :, self.cat]
            D = D + self.r_cat * _bool_jaccard(a, b)
        return D

    def _compute_ece(self, x, cfs, k, rules) -> dict[str, float]:
        m = len(cfs)
        nan = math.nan
        out: dict[str, float] = {"nbr_cf": m}
        if m == 0:  # the original's fixed dict for an empty list
            zeros = (
                "nbr_valid_cf perc_valid_cf perc_valid_cf_all nbr_actionable_cf perc_actionable_cf "
                "perc_actionable_cf_all nbr_valid_actionable_cf perc_valid_actionable_cf "
                "perc_valid_actionable_cf_all accuracy_knn_sklearn accuracy_knn_dist delta "
                "delta_min delta_max plausibility_sum"
            ).split() + [f"plausibility_{n}" for n in _PLAUS_NORMS]
            for name in METRIC_NAMES:
                out.setdefault(name, 0.0 if name in zeros else nan)
            return out

        y_all = self._predict(np.vstack([x[None, :], cfs]))
        y_x, y_cf = int(y_all[0]), y_all[1:]
        valid = y_cf != y_x  # the original is called without y_desidered
        fixed = np.array([r is Rule.NO_CHANGE for r in rules])  # only no_change is checked
        viol = ((cfs != x) & fixed).sum(axis=1)
        actionable = viol == 0
        n_valid, n_act = int(valid.sum()), int(actionable.sum())
        n_va = int((valid & actionable).sum())
        out.update(
            nbr_valid_cf=n_valid,
            perc_valid_cf=n_valid / m,
            perc_valid_cf_all=_div(n_valid, k),
            nbr_actionable_cf=n_act,
            perc_actionable_cf=n_act / m,
            perc_actionable_cf_all=_div(n_act, k),
            nbr_valid_actionable_cf=n_va,
            perc_valid_actionable_cf=n_va / m,
            perc_valid_actionable_cf_all=_div(n_va, k),
            avg_nbr_violations_per_cf=float(viol.mean()),
            avg_nbr_violations=float(viol.sum()) / (m * self.d),
        )

        self._ece_agg(self._ece_parts(np.broadcast_to(x, cfs.shape), cfs), "distance", out, nan)

        changes = ((cfs != x) * self.weights).sum(axis=1)
        out["avg_nbr_changes_per_cf"] = float(changes.mean())
        out["avg_nbr_changes"] = float(changes.sum()) / (m * self.d)

        if m > 1:
            i, j = np.triu_indices(m, 1)
            self._ece_agg(self._ece_parts(cfs[i], cfs[j]), "diversity", out, 0.0)
            # the original weights a differing pair by whether the *second counterfactual's index*
            # j is in the continuous feature set (it meant the feature index)
            diff = cfs[i] != cfs[j]
            w_pair = np.where(np.isin(j, np.flatnonzero(self.cont)), 1.0, 0.5)
            den = m * m * self.d
            cnt = {
                "cont": float((diff[:, self.cont].sum(axis=1) * w_pair).sum()) / den,
                "cate": float((diff[:, self.cat].sum(axis=1) * w_pair).sum()) / den,
                "all": float((diff.sum(axis=1) * w_pair).sum()) / den,
            }
        else:
            for kind in _KINDS:
                for a in _AGGS:
                    out[f"diversity_{kind}{a}"] = 0.0
            cnt = {"cont": 0.0, "cate": 0.0, "all": 0.0}
        for key, v in cnt.items():
            out[f"count_diversity_{key}"] = v

        # kNN: identity scaler, other class = any class but x's, test labels from the model
        n_test = len(self.X_test)
        if n_test:
            dx = self._ece_euclid_jaccard(x[None, :], self.X_test)[0]
            picked = []
            for mask in (self.y_test_pred == y_x, self.y_test_pred != y_x):
                idx = np.flatnonzero(mask)
                picked.append(idx[np.argsort(dx[idx], kind="stable")[: self.knn_test_size]])
            rows = np.concatenate(picked)
        else:
            rows = np.zeros(0, dtype=int)
        if rows.size:
            T = np.vstack([x[None, :], cfs])
            Xr, y_test = self.X_test[rows], self.y_test_pred[rows]
            out["accuracy_knn_sklearn"] = float(
                np.mean(y_all[np.argmin(cdist(Xr, T), 1)] == y_test)
            )
            nn = np.argmin(self._ece_euclid_jaccard(Xr, T), axis=1)
            out["accuracy_knn_dist"] = float(np.mean(y_all[nn] == y_test))
        else:
            out["accuracy_knn_sklearn"] = out["accuracy_knn_dist"] = 0.0

        # LOF: mean |predict| of a novelty LOF (labels +-1), identically 1.0
        if self._ece_lof is None:
            from sklearn.neighbors import LocalOutlierFactor

            n_nb = max(1, min(3, len(self.X_train) - 1))
            self._ece_lof = LocalOutlierFactor(n_neighbors=n_nb, novelty=True).fit(self.X_train)
        out["lof"] = float(np.mean(np.abs(self._ece_lof.predict(cfs))))

        # delta on labels
        dl = np.abs(y_cf - y_x).astype(float)
        out["delta"], out["delta_min"], out["delta_max"] = _stats(dl)

        # plausibility from each cf to one anchor test row of its predicted class
        s = 0.0
        for c, cf in zip(y_cf, cfs, strict=True):
            pool = self.X_test[self.y_test_pred == c]
            if len(pool) == 0:
                continue  # the original crashes; its DPG port skips
            if self.ece_plausibility_anchor == "first":
                anchor = pool[0]
            else:
                anchor = pool[int(np.argmin(self._ece_mh(x, pool)))]
            s += float(self._ece_mh(cf, anchor[None, :])[0])
        out["plausibility_sum"] = s
        out["plausibility_max_nbr_cf"] = _div(s, k)
        out["plausibility_nbr_cf"] = s / m
        out["plausibility_nbr_valid_cf"] = s / n_valid if n_valid > 0 else s
        out["plausibility_nbr_actionable_cf"] = s / n_act if n_act > 0 else s
        out["plausibility_nbr_valid_actionable_cf"] = s / n_va if n_va > 0 else s
        return out


# --------------------------------------------------------------------------------------------
# aggregation
# --------------------------------------------------------------------------------------------


def _number(v) -> float | None:
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    return None


def aggregate(
    rows: Sequence[Mapping[str, object]] | Iterable[Mapping[str, object]],
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float | int | None]]:
    """Per metric over ``rows`` (one dict per query): mean, std, n and a bootstrap CI of the mean.

    NaN values (undefined metrics, e.g. distances of an empty set) are left out; ``n`` counts the
    rest. ``std`` is the sample standard deviation (ddof=1). The CI is the percentile interval of
    ``n_boot`` bootstrap means, drawn with ``numpy.random.default_rng(seed)`` afresh for each
    metric, so it is deterministic and independent of which other metrics are present. Undefined
    entries are ``None`` (JSON ``null``), so the result serialises as strict JSON. Non-numeric
    values (e.g. a method name) are skipped.
    """
    rows = list(rows)
    names: list[str] = []
    for row in rows:
        for key, v in row.items():
            if key not in names and _number(v) is not None:
                names.append(key)
    lo_q, hi_q = 50.0 * (1.0 - confidence), 50.0 * (1.0 + confidence)

    def clean(v: float) -> float | None:
        return None if not math.isfinite(v) else float(v)

    result: dict[str, dict[str, float | int | None]] = {}
    for name in names:
        vals = np.array(
            [f for row in rows if (f := _number(row.get(name))) is not None and not math.isnan(f)],
            dtype=float,
        )
        n = int(vals.size)
        if n == 0:
            result[name] = {"mean": None, "std": None, "n": 0, "ci_low": None, "ci_high": None}
            continue
        mean = float(vals.mean())
        std = float(vals.std(ddof=1)) if n > 1 else math.nan
        if n > 1 and np.all(np.isfinite(vals)):
            rng = np.random.default_rng(seed)
            idx = rng.integers(0, n, size=(n_boot, n))
            boots = vals[idx].mean(axis=1)
            ci_low, ci_high = (float(q) for q in np.percentile(boots, [lo_q, hi_q]))
        else:
            ci_low = ci_high = mean
        result[name] = {
            "mean": clean(mean),
            "std": clean(std),
            "n": n,
            "ci_low": clean(ci_low),
            "ci_high": clean(ci_high),
        }
    return result
