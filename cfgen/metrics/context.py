"""The per-run metric context: data, model and the chosen suite, built once per run.

:class:`MetricContext` holds what every query shares (feature kinds, training and test data,
the model's labels of the test rows) and one suite (:class:`~cfgen.metrics.cfgen_suite.CfgenSuite`
or :class:`~cfgen.metrics.ece_suite.EceSuite`) with its fitted parts. :meth:`MetricContext.evaluate`
scores many queries at once; :meth:`MetricContext.compute` is the same on one query.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

from cfgen.metrics.batch import Batch, rule_masks
from cfgen.metrics.common import Segments
from cfgen.metrics.names import COMPAT_MODES, METRIC_NAMES
from cfgen.schema import FeatureSchema


class Suite(Protocol):
    """One definition of the metric suite: ``evaluate`` returns every metric but ``runtime``,
    each an (n,) array over the batch's tasks."""

    name: str

    def evaluate(self, b: Batch) -> dict[str, np.ndarray]: ...


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

    suite: Suite

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
        self.schema = schema
        self.compat = compat
        self.predict_proba = predict_proba
        self.knn_test_size = int(knn_test_size)
        self.atol = float(atol)
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
        if compat == "cfgen":
            from cfgen.metrics.cfgen_suite import CfgenSuite

            self.suite = CfgenSuite(self, lof_neighbors)
        else:
            from cfgen.metrics.ece_suite import EceSuite

            self.suite = EceSuite(self, ece_mad_scale, ece_plausibility_anchor)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(np.asarray(self.predict_proba(X)), axis=1)

    def embed(self, X: np.ndarray) -> np.ndarray:
        """The cfgen suite's scaled representation for kNN and LOF (``cfgen`` mode only)."""
        from cfgen.metrics.cfgen_suite import CfgenSuite

        if not isinstance(self.suite, CfgenSuite):
            raise ValueError("embed is defined in compat='cfgen' mode only")
        return self.suite.embed(X)

    # ---------------------------------------------------------------- input

    def _schema(self, schema: FeatureSchema | None) -> FeatureSchema:
        schema = self.schema if schema is None else schema
        if len(schema) != self.d or not np.array_equal(schema.categorical, self.cat):
            raise ValueError("schema override must describe the same features as the context's")
        return schema

    def _cfs(self, cfs) -> np.ndarray:
        cfs = np.asarray(cfs, dtype=float)
        cfs = cfs.reshape(0, self.d) if cfs.size == 0 else np.atleast_2d(cfs)
        if cfs.shape[1] != self.d:
            raise ValueError(f"counterfactuals have {cfs.shape[1]} features, schema has {self.d}")
        return cfs

    def batch(
        self,
        X: np.ndarray,
        cfs: Sequence[np.ndarray],
        targets: Sequence[int],
        k: int | Sequence[int],
        schemas: Sequence[FeatureSchema | None] | None = None,
    ) -> Batch:
        """Stack ``n`` queries (``X`` (n, d)) and their sets, and ask the model once for all."""
        n = len(cfs)
        X = np.asarray(X, dtype=float).reshape(n, -1) if n else np.zeros((0, self.d))
        if X.shape != (n, self.d):
            raise ValueError(f"x has shape {X.shape[1:]} per query, schema has {self.d} features")
        sets = [self._cfs(c) for c in cfs]
        checked: dict[int, FeatureSchema] = {}
        per_task = []
        for s in schemas if schemas is not None else [None] * n:
            if id(s) not in checked:
                checked[id(s)] = self._schema(s)
            per_task.append(checked[id(s)])
        nc, ni, nd = rule_masks(per_task, self.d)
        stacked = np.vstack([X, *sets]) if n else np.zeros((0, self.d))
        proba = np.asarray(self.predict_proba(stacked), dtype=float) if n else np.zeros((0, 1))
        k_arr = np.broadcast_to(np.asarray(k, dtype=float), (n,)).copy()
        return Batch(
            X,
            stacked[n:],
            Segments(np.array([len(c) for c in sets], dtype=int)),
            np.asarray(targets, dtype=int).reshape(n),
            k_arr,
            nc,
            ni,
            nd,
            proba[:n],
            proba[n:],
        )

    # ---------------------------------------------------------------- scoring

    def evaluate(
        self,
        X: np.ndarray,
        cfs: Sequence[np.ndarray],
        targets: Sequence[int],
        k: int | Sequence[int],
        runtimes: Sequence[float],
        schemas: Sequence[FeatureSchema | None] | None = None,
    ) -> dict[str, np.ndarray]:
        """Every metric of ``n`` queries at once: name -> (n,) array, in ``METRIC_NAMES`` order.

        ``X`` (n, d) queries, ``cfs[t]`` (m_t, d) the set of query ``t`` (m_t may be 0),
        ``targets`` requested classes, ``k`` requested set size (one or per query),
        ``runtimes`` seconds of search, ``schemas`` per query (rules may differ; ``None``:
        the context's).
        """
        b = self.batch(X, cfs, targets, k, schemas)
        out = self.suite.evaluate(b) if b.n else {}
        out["runtime"] = np.asarray(runtimes, dtype=float).reshape(b.n)
        return {name: np.asarray(out.get(name, np.zeros(0)), dtype=float) for name in METRIC_NAMES}

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
        x = np.asarray(x, dtype=float).ravel()
        if x.shape[0] != self.d:
            raise ValueError(f"x has {x.shape[0]} features, schema has {self.d}")
        cols = self.evaluate(x[None, :], [cfs], [int(target)], int(k), [runtime], [schema])
        return {name: float(v[0]) for name, v in cols.items()}

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
