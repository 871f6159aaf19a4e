"""DiCE (random / genetic / kdtree) behind cfgen's ``Explainer`` interface.

cfgen works in an encoded space (categoricals as integer codes); DiCE wants a DataFrame with
categoricals as strings. :class:`DiceExplainer` bridges the two:

* the training rows are decoded into a DataFrame (categoricals as their category strings,
  integer features as ``int64``, continuous as ``float64``) and handed to ``dice_ml.Data`` with
  every non-categorical feature listed as continuous and its precision from the schema;
* the fitted estimator is wrapped in :class:`EncodedModel`, a tiny sklearn-like object whose
  ``predict_proba(DataFrame)`` encodes the frame back into codes and calls the estimator's own
  ``predict_proba`` (DiCE is used as a user would use it: with the sklearn estimator, not with
  cfgen's compiled forest);
* actionability maps to DiCE's arguments: ``no_change`` features are left out of
  ``features_to_vary``; ``non_increasing`` / ``non_decreasing`` cap / floor the feature's
  ``permitted_range`` at the query's value (categoricals: the permitted category codes on that
  side); every other feature may move over its training range (widened to hold the query);
* DiCE's rows are mapped back into codes, rounded to the data's precision, pinned to the rules
  (float32 noise must not look like a move), de-duplicated and re-checked with the estimator's
  own ``predict``: only rows it puts in the target class are returned.

Seeding: ``random_seed`` is passed where DiCE accepts it (random); Python's ``random`` and
numpy's global state are seeded from the task's ``rng`` around the call (DiCE genetic draws from
both) and restored afterwards. DiCE's explainer is built once per :class:`DiceExplainer`; the
state it keeps between queries (the genetic population) is reset before each query, so the same
seed gives the same result whatever ran before.

Time limit: ``time_limit`` seconds per query (``None``: none). The deadline is checked inside
:class:`EncodedModel` at every model call DiCE makes (all its loops call the model), which
aborts the search in the calling thread without threads or processes; the query then returns no
counterfactuals with ``reason`` "time limit ..." and ``extra["timed_out"] = True``.

pandas 3: dice-ml 0.12 runs on pandas 3.1 for all three methods on real data (iris, diabetes,
german_credit with 13 text categoricals, satimage, us_crime, yeast_ml8); DiCE random emits
``Pandas4Warning`` for its ``inplace=`` calls (silenced here with DiCE's other output).

Failures: DiCE's "no counterfactuals found" (``UserConfigValidationException``) becomes an
Explanation with a ``reason``; other exceptions propagate (the launcher records them per task).
"""

from __future__ import annotations

import contextlib
import io
import random
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from cfgen.explanation import Explanation
from cfgen.schema import FeatureSchema, Kind, Rule

METHODS: tuple[str, ...] = ("random", "genetic", "kdtree")
OUTCOME = "__cfgen_target__"


class DiceTimeout(Exception):
    """Raised inside DiCE's model calls once the query's deadline has passed."""


class EncodedModel:
    """The fitted estimator seen through DiCE's eyes: a DataFrame in, probabilities out.

    ``deadline`` (a ``time.perf_counter()`` value or ``None``) is checked at every call.
    """

    def __init__(self, estimator: Any, schema: FeatureSchema, n_classes: int) -> None:
        self.estimator = estimator
        self.schema = schema
        self.classes_ = np.arange(n_classes)
        self.deadline: float | None = None
        self.calls = 0
        self._cats = {
            f.name: list(f.categories) for f in schema.features if f.kind is Kind.CATEGORICAL
        }
        cat = schema.categorical
        self._num_idx = np.flatnonzero(~cat)
        self._num_names = [schema.names[j] for j in self._num_idx]
        self._cat_idx = np.flatnonzero(cat)
        self._cat_names = [schema.names[j] for j in self._cat_idx]

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """DataFrame (DiCE's values) → encoded float array in the schema's column order."""
        X = np.empty((len(frame), len(self.schema)), dtype=float)
        if self._num_idx.size:
            X[:, self._num_idx] = frame[self._num_names].to_numpy(dtype=float)
        for j, name in zip(self._cat_idx, self._cat_names, strict=True):
            col = frame[name]
            if not isinstance(col.dtype, pd.CategoricalDtype):
                col = col.astype(str)
            codes = pd.Categorical(col, categories=self._cats[name]).codes
            X[:, j] = np.where(codes < 0, np.nan, codes)
        return X

    def _check_deadline(self) -> None:
        self.calls += 1
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise DiceTimeout

    def predict_proba(self, frame) -> np.ndarray:
        self._check_deadline()
        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(np.atleast_2d(frame), columns=self.schema.names)
        return np.asarray(self.estimator.predict_proba(self.encode(frame)))

    def predict(self, frame) -> np.ndarray:
        return np.argmax(self.predict_proba(frame), axis=1)


class DiceExplainer:
    """DiCE ``method`` (random | genetic | kdtree) implementing ``Explainer.explain``.

    Parameters
    ----------
    estimator:
        The fitted classifier (classes ``0..C-1``, encoded features).
    data:
        Anything with ``X_train`` and ``y_train`` (e.g. :class:`cfgen.data.Dataset`).
    schema:
        Feature kinds, ranges and the actionability rules to respect.
    method:
        ``random``, ``genetic`` or ``kdtree`` (a ``dice_`` prefix is accepted).
    time_limit:
        Seconds per query (``None``: no limit); see the module docstring.
    dice_kwargs:
        Extra keyword arguments for DiCE's ``generate_counterfactuals`` (e.g. ``sample_size``).
    """

    def __init__(
        self,
        estimator: Any,
        data: Any,
        schema: FeatureSchema,
        method: str = "genetic",
        time_limit: float | None = None,
        dice_kwargs: dict | None = None,
    ) -> None:
        method = method.removeprefix("dice_")
        if method not in METHODS:
            raise ValueError(f"DiCE method {method!r} is not supported: expected one of {METHODS}")
        if time_limit is not None and not time_limit > 0:
            raise ValueError(f"time_limit={time_limit!r}: expected seconds > 0 or None")
        import dice_ml  # lazy: only DiCE runs pay for it

        self._dice_ml = dice_ml
        self.estimator = estimator
        self.schema = schema
        self.method = method
        self.time_limit = time_limit
        self.dice_kwargs = dict(dice_kwargs or {})
        self.d = len(schema)
        X_train = np.asarray(data.X_train, dtype=float)
        y_train = np.asarray(data.y_train).astype(int)
        classes = getattr(estimator, "classes_", np.unique(y_train))
        self.n_classes = len(classes)
        self.model = EncodedModel(estimator, schema, self.n_classes)
        self._decimals = np.array(
            [f.decimals if f.kind is Kind.CONTINUOUS else 0 for f in schema.features]
        )
        frame = self.decode(X_train)
        frame[OUTCOME] = y_train
        continuous = [f.name for f in schema.features if f.kind is not Kind.CATEGORICAL]
        precision = {
            f.name: int(f.decimals) for f in schema.features if f.kind is Kind.CONTINUOUS
        }
        with _quiet():
            self._data = dice_ml.Data(
                dataframe=frame,
                continuous_features=continuous,
                outcome_name=OUTCOME,
                continuous_features_precision=precision,
            )
            self._model = dice_ml.Model(model=self.model, backend="sklearn",
                                        model_type="classifier")
        self._dice = None

    # ------------------------------------------------------------------ encoding
    def decode(self, X: np.ndarray) -> pd.DataFrame:
        """Encoded rows → the DataFrame DiCE sees (category strings, int64 integers)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        cols: dict[str, Any] = {}
        for j, f in enumerate(self.schema.features):
            if f.kind is Kind.CATEGORICAL:
                cols[f.name] = np.asarray(f.categories, dtype=object)[np.rint(X[:, j]).astype(int)]
            elif f.kind is Kind.INTEGER:
                cols[f.name] = np.rint(X[:, j]).astype(np.int64)
            else:
                cols[f.name] = X[:, j].astype(np.float64)
        return pd.DataFrame(cols, columns=self.schema.names)

    def _round(self, X: np.ndarray) -> np.ndarray:
        out = X.copy()
        for dec in np.unique(self._decimals):
            cols = self._decimals == dec
            out[:, cols] = np.round(out[:, cols], int(dec))
        return out

    def _rules_args(self, x: np.ndarray) -> tuple[list[str], dict[str, list]]:
        """``features_to_vary`` and a full ``permitted_range`` for query ``x``."""
        vary: list[str] = []
        permitted: dict[str, list] = {}
        for j, f in enumerate(self.schema.features):
            xj = float(x[j])
            if f.rule is not Rule.NO_CHANGE:
                vary.append(f.name)
            if f.kind is Kind.CATEGORICAL:
                codes = np.arange(len(f.categories))
                if f.rule is Rule.NO_CHANGE:
                    ok = codes == int(round(xj))
                elif f.rule is Rule.NON_INCREASING:
                    ok = codes <= xj
                elif f.rule is Rule.NON_DECREASING:
                    ok = codes >= xj
                else:
                    ok = np.ones(len(codes), dtype=bool)
                permitted[f.name] = [f.categories[c] for c in codes[ok]]
                continue
            lo, hi = min(f.low, xj), max(f.high, xj)
            if f.rule is Rule.NO_CHANGE:
                lo = hi = xj
            elif f.rule is Rule.NON_INCREASING:
                hi = xj
            elif f.rule is Rule.NON_DECREASING:
                lo = xj
            if f.kind is Kind.INTEGER:
                permitted[f.name] = [int(np.ceil(lo - 1e-9)), int(np.floor(hi + 1e-9))]
            else:
                permitted[f.name] = [float(lo), float(hi)]
        return vary, permitted

    def _pin(self, x: np.ndarray, cfs: np.ndarray) -> np.ndarray:
        """Snap to the data's precision and pin every gene to what its rule allows."""
        cfs = self._round(cfs)
        for j, f in enumerate(self.schema.features):
            if f.rule is Rule.NO_CHANGE:
                cfs[:, j] = x[j]
            elif f.rule is Rule.NON_INCREASING:
                cfs[:, j] = np.minimum(cfs[:, j], x[j])
            elif f.rule is Rule.NON_DECREASING:
                cfs[:, j] = np.maximum(cfs[:, j], x[j])
            # float32 noise around an unchanged value is no change
            same = np.abs(cfs[:, j] - x[j]) <= 10.0 ** (-self._decimals[j]) / 2
            cfs[same, j] = x[j]
        return cfs

    def _explainer(self):
        """DiCE's explainer, built once; the per-query state DiCE keeps is reset each call."""
        if self._dice is None:
            self._dice = self._dice_ml.Dice(self._data, self._model, method=self.method)
        if hasattr(self._dice, "cfs"):
            self._dice.cfs = []  # genetic: a stale population would be reused as the start
        return self._dice

    # ------------------------------------------------------------------ explain
    def explain(self, x: np.ndarray, target: int, k: int, rng: np.random.Generator) -> Explanation:
        start = time.perf_counter()
        x = np.asarray(x, dtype=float).ravel()
        target = int(target)

        def done(cfs: np.ndarray, reason: str | None = None, **extra) -> Explanation:
            extra.setdefault("method", f"dice_{self.method}")
            extra.setdefault("model_calls", self.model.calls)
            if reason is None and len(cfs) < k:
                reason = (f"DiCE {self.method} returned {extra.get('returned', 0)} rows, "
                          f"{len(cfs)} valid and distinct (asked for {k})")
            return Explanation(cfs, target, k, time.perf_counter() - start, reason=reason,
                               extra=extra)

        empty = np.empty((0, self.d))
        if not 0 <= target < self.n_classes:
            raise ValueError(
                f"target={target} is not a class of the model (0..{self.n_classes - 1})")
        own = int(np.asarray(self.estimator.predict(x[None, :]))[0])
        if own == target:
            return done(empty, "query is already in the target class")
        vary, permitted = self._rules_args(x)
        if not vary:
            return done(empty, "no feature may change under the actionability rules")

        seed = int(rng.integers(2**32 - 1))
        kwargs: dict[str, Any] = dict(
            total_CFs=int(k), desired_class=target, features_to_vary=vary,
            permitted_range=permitted,
        )
        if self.method == "random":
            kwargs["random_seed"] = seed
        kwargs.update(self.dice_kwargs)
        query = self.decode(x[None, :])
        py_state, np_state = random.getstate(), np.random.get_state()
        random.seed(seed)
        np.random.seed(seed)
        self.model.calls = 0
        self.model.deadline = None if self.time_limit is None else start + self.time_limit
        try:
            with _quiet():
                result = self._explainer().generate_counterfactuals(query, **kwargs)
        except DiceTimeout:
            return done(empty, f"time limit of {self.time_limit:g} s exceeded", timed_out=True)
        except Exception as exc:  # noqa: BLE001 - only DiCE's own "nothing found" is a reason
            nothing = "No counterfactuals" in str(exc)
            if type(exc).__name__ == "UserConfigValidationException" and nothing:
                return done(empty, f"DiCE {self.method}: no counterfactuals found")
            raise
        finally:
            self.model.deadline = None
            random.setstate(py_state)
            np.random.set_state(np_state)

        ex = result.cf_examples_list[0]
        frame = ex.final_cfs_df_sparse if ex.final_cfs_df_sparse is not None else ex.final_cfs_df
        if frame is None or len(frame) == 0:
            return done(empty, f"DiCE {self.method}: no counterfactuals found", returned=0)
        cfs = self._pin(x, self.model.encode(frame))
        cfs = cfs[~np.isnan(cfs).any(axis=1)]
        n_returned = len(cfs)
        if len(cfs):
            _, first = np.unique(cfs, axis=0, return_index=True)
            cfs = cfs[np.sort(first)]
            cfs = cfs[np.asarray(self.estimator.predict(cfs)) == target][:k]
        return done(cfs, returned=n_returned)


@contextlib.contextmanager
def _quiet():
    """Silence DiCE's prints, progress bars and library warnings for one call."""
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), \
            contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        yield
