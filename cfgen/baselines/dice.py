"""DiCE (random / genetic / kdtree) as a cfgen method plug-in (``method=dice_<strategy>``).

cfgen works in an encoded space (categoricals as integer codes); DiCE wants a DataFrame with
categoricals as strings. :class:`DiceExplainer` bridges the two:

* the training rows are decoded into a DataFrame (categoricals as their category strings,
  integer features as ``int64``, continuous as ``float64``) and handed to ``dice_ml.Data`` with
  every non-categorical feature listed as continuous and its precision from the schema;
* the fitted estimator is wrapped in :class:`EncodedModel`, a tiny sklearn-like object whose
  ``predict_proba(DataFrame)`` encodes the frame back into codes and calls the estimator's own
  ``predict_proba`` (DiCE is used as a user would use it: with the sklearn estimator, not with
  cfgen's compiled forest);
* actionability and permitted ranges become one per-query box (:mod:`cfgen.baselines.ranges`):
  ``no_change`` features are left out of ``features_to_vary``; the box is DiCE's
  ``permitted_range`` (rules cap / floor at the query's value, categoricals: the permitted
  category strings, a feature's ``permitted`` range intersected in, every other feature over its
  training range widened to hold the query);
* DiCE's rows are mapped back into codes, rounded to the data's precision, clipped into the box
  (float32 noise must not look like a move), de-duplicated and re-checked with the box and the
  estimator's own ``predict``: only rows inside the box and in the target class are returned.

Seeding: ``random_seed`` is passed where DiCE accepts it (random); Python's ``random`` and
numpy's global state are seeded from the task's ``rng`` around the call (DiCE genetic draws from
both) and restored afterwards. DiCE's explainer is built once per :class:`DiceExplainer`; the
state it keeps between queries (the genetic population) is reset before each query, so the same
seed gives the same result whatever ran before.

Time limit: ``time_limit`` seconds per query (``None``: none). The deadline is checked inside
:class:`EncodedModel` at every model call DiCE makes (all its loops call the model), which
aborts the search in the calling thread without threads or processes; the query then returns no
counterfactuals, ``reason`` "time limit ..." and ``timed_out=True`` (also in ``extra``).

pandas 3: dice-ml 0.12 runs on pandas 3.1 for all three methods on real data (iris, diabetes,
german_credit with 13 text categoricals, satimage, us_crime, yeast_ml8); DiCE random emits
``Pandas4Warning`` for its ``inplace=`` calls (silenced here with DiCE's other output).

Failures: DiCE's "no counterfactuals found" (``UserConfigValidationException``) becomes an
Explanation with a ``reason``; other exceptions propagate (the runner records them per task).
"""

from __future__ import annotations

import contextlib
import io
import random
import time
import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from cfgen.baselines.ranges import Box, allowed_box, blocked_reason
from cfgen.errors import ConfigError
from cfgen.explanation import Explanation
from cfgen.schema import FeatureSchema, Kind, Rule

STRATEGIES: tuple[str, ...] = ("random", "genetic", "kdtree")
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


STRATEGY_OPTIONS: dict[str, tuple[str, ...]] = {
    "random": (
        "sample_size",
        "stopping_threshold",
        "posthoc_sparsity_param",
        "posthoc_sparsity_algorithm",
    ),
    "genetic": (
        "initialization",
        "proximity_weight",
        "sparsity_weight",
        "diversity_weight",
        "categorical_penalty",
        "maxiterations",
        "stopping_threshold",
        "posthoc_sparsity_param",
        "posthoc_sparsity_algorithm",
    ),
    "kdtree": (
        "sparsity_weight",
        "stopping_threshold",
        "posthoc_sparsity_param",
        "posthoc_sparsity_algorithm",
    ),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "posthoc_sparsity_algorithm": ("linear", "binary"),
    "initialization": ("kdtree", "random"),
}


def _check_options(strategy: str, options: dict[str, Any]) -> dict[str, Any]:
    """The DiCE keyword arguments set for ``strategy`` (``None`` = DiCE's default), validated."""
    given = {key: value for key, value in options.items() if value is not None}
    for key, value in given.items():
        if key not in STRATEGY_OPTIONS[strategy]:
            raise ConfigError(
                f"method.{key}={value!r} is not allowed for strategy {strategy}: it takes "
                f"{', '.join(STRATEGY_OPTIONS[strategy])}"
            )
        if key in CHOICES and value not in CHOICES[key]:
            raise ConfigError(
                f"method.{key}={value!r} is not allowed: expected one of {', '.join(CHOICES[key])}"
            )
        if key in ("sample_size", "maxiterations"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"method.{key}={value!r} is not allowed: expected an int >= 1")
            continue
        if key in CHOICES:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"method.{key}={value!r} is not allowed: expected a number >= 0")
        if key in ("stopping_threshold", "posthoc_sparsity_param") and value > 1:
            raise ConfigError(f"method.{key}={value!r} is not allowed: expected 0..1")
    return given


class DiceExplainer:
    """DiCE (``strategy`` random | genetic | kdtree) as a cfgen method plug-in.

    Built as ``DiceExplainer(problem, schema, class_bounds, name=..., time_limit=...,
    strategy=..., <DiCE options>)`` from ``cfgen/conf/method/dice_<strategy>.yaml``.
    ``problem`` needs ``X_train``, ``y_train``, ``estimator`` and ``n_classes``; ``schema`` is
    the problem's schema with the task's rules; ``class_bounds`` is ignored (DiCE does not use
    them). DiCE's options (``None``: DiCE's own default; only those the strategy takes) go to
    ``generate_counterfactuals``; ``k`` becomes ``total_CFs``.
    """

    needs_bounds: ClassVar[bool] = False

    def __init__(
        self,
        problem: Any,
        schema: FeatureSchema,
        class_bounds: Any = None,
        *,
        name: str | None = None,
        time_limit: float | None = None,
        strategy: str = "genetic",
        sample_size: int | None = None,
        stopping_threshold: float | None = None,
        posthoc_sparsity_param: float | None = None,
        posthoc_sparsity_algorithm: str | None = None,
        initialization: str | None = None,
        proximity_weight: float | None = None,
        sparsity_weight: float | None = None,
        diversity_weight: float | None = None,
        categorical_penalty: float | None = None,
        maxiterations: int | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ConfigError(
                f"method.strategy={strategy!r} is not allowed: expected one of "
                f"{', '.join(STRATEGIES)}"
            )
        if time_limit is not None and not time_limit > 0:
            raise ConfigError(f"method.time_limit={time_limit!r} is not allowed: expected > 0")
        self.options = _check_options(
            strategy,
            dict(
                sample_size=sample_size,
                stopping_threshold=stopping_threshold,
                posthoc_sparsity_param=posthoc_sparsity_param,
                posthoc_sparsity_algorithm=posthoc_sparsity_algorithm,
                initialization=initialization,
                proximity_weight=proximity_weight,
                sparsity_weight=sparsity_weight,
                diversity_weight=diversity_weight,
                categorical_penalty=categorical_penalty,
                maxiterations=maxiterations,
            ),
        )
        import dice_ml  # lazy: only DiCE runs pay for it

        self._dice_ml = dice_ml
        self.name = name or f"dice_{strategy}"
        self.estimator = problem.estimator
        self.schema = schema
        self.strategy = strategy
        self.time_limit = time_limit
        self.d = len(schema)
        self.n_classes = int(problem.n_classes)
        self.model = EncodedModel(self.estimator, schema, self.n_classes)
        self._decimals = np.array(
            [f.decimals if f.kind is Kind.CONTINUOUS else 0 for f in schema.features]
        )
        frame = self.decode(np.asarray(problem.X_train, dtype=float))
        frame[OUTCOME] = np.asarray(problem.y_train).astype(int)
        continuous = [f.name for f in schema.features if f.kind is not Kind.CATEGORICAL]
        precision = {f.name: int(f.decimals) for f in schema.features if f.kind is Kind.CONTINUOUS}
        with _quiet():
            self._data = dice_ml.Data(
                dataframe=frame,
                continuous_features=continuous,
                outcome_name=OUTCOME,
                continuous_features_precision=precision,
            )
            self._model = dice_ml.Model(
                model=self.model, backend="sklearn", model_type="classifier"
            )
        self._dice: Any = None

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

    def _dice_args(self, box: Box) -> tuple[list[str], dict[str, list]]:
        """``features_to_vary`` and a full ``permitted_range`` (DiCE's terms) from ``box``."""
        vary: list[str] = []
        permitted: dict[str, list] = {}
        for j, f in enumerate(self.schema.features):
            if f.rule is not Rule.NO_CHANGE:
                vary.append(f.name)
            lo, hi = float(box.lo[j]), float(box.hi[j])
            if f.kind is Kind.CATEGORICAL:
                permitted[f.name] = list(f.categories[int(lo) : int(hi) + 1])
            elif f.kind is Kind.INTEGER:
                permitted[f.name] = [int(lo), int(hi)]
            else:
                permitted[f.name] = [lo, hi]
        return vary, permitted

    def _pin(self, x: np.ndarray, cfs: np.ndarray, box: Box) -> np.ndarray:
        """Snap to the data's precision and into ``box`` (rules and permitted ranges)."""
        cfs = np.clip(self._round(cfs), box.lo, box.hi)
        # float32 noise around an unchanged value is no change
        same = np.abs(cfs - x[None, :]) <= 10.0 ** (-self._decimals[None, :]) / 2
        return np.where(same, x[None, :], cfs)

    def _explainer(self):
        """DiCE's explainer, built once; the per-query state DiCE keeps is reset each call."""
        if self._dice is None:
            self._dice = self._dice_ml.Dice(self._data, self._model, method=self.strategy)
        if hasattr(self._dice, "cfs"):
            self._dice.cfs = []  # genetic: a stale population would be reused as the start
        return self._dice

    # ------------------------------------------------------------------ explain
    def explain(self, x: np.ndarray, target: int, k: int, rng: np.random.Generator) -> Explanation:
        start = time.perf_counter()
        x = np.asarray(x, dtype=float).ravel()
        target = int(target)

        def done(
            cfs: np.ndarray, reason: str | None = None, timed_out: bool = False, **extra: Any
        ) -> Explanation:
            extra.update(method=self.name, model_calls=self.model.calls, timed_out=timed_out)
            if reason is None and len(cfs) < k:
                reason = (
                    f"DiCE {self.strategy} returned {extra.get('returned', 0)} rows, "
                    f"{len(cfs)} valid and distinct (asked for {k})"
                )
            return Explanation(
                cfs,
                target,
                k,
                time.perf_counter() - start,
                reason=reason,
                timed_out=timed_out,
                extra=extra,
            )

        empty = np.empty((0, self.d))
        if not 0 <= target < self.n_classes:
            raise ConfigError(
                f"target={target} is not allowed: expected a class 0..{self.n_classes - 1}"
            )
        self.model.calls = 0
        if int(np.asarray(self.estimator.predict(x[None, :]))[0]) == target:
            return done(empty, "query is already in the target class")
        box = allowed_box(self.schema, x)
        if box.blocked is not None:
            return done(empty, blocked_reason(self.schema, x, box))
        vary, permitted = self._dice_args(box)
        if not vary:
            return done(empty, "no feature may change under the actionability rules")
        seed = int(rng.integers(2**32 - 1))
        kwargs: dict[str, Any] = dict(
            total_CFs=int(k),
            desired_class=target,
            features_to_vary=vary,
            permitted_range=permitted,
            **self.options,
        )
        if self.strategy == "random":
            kwargs["random_seed"] = seed
        try:
            result = self._generate(x, kwargs, seed, start)
        except DiceTimeout:
            return done(empty, f"time limit of {self.time_limit:g} s exceeded", timed_out=True)
        except Exception as exc:  # noqa: BLE001 - only DiCE's own "nothing found" is a reason
            nothing = "No counterfactuals" in str(exc)
            if type(exc).__name__ == "UserConfigValidationException" and nothing:
                return done(empty, f"DiCE {self.strategy}: no counterfactuals found")
            raise
        ex = result.cf_examples_list[0]
        frame = ex.final_cfs_df_sparse if ex.final_cfs_df_sparse is not None else ex.final_cfs_df
        if frame is None or len(frame) == 0:
            return done(empty, f"DiCE {self.strategy}: no counterfactuals found", returned=0)
        cfs = self.model.encode(frame)
        cfs = self._pin(x, cfs[~np.isnan(cfs).any(axis=1)], box)
        n_returned = len(cfs)
        if len(cfs):
            _, first = np.unique(cfs, axis=0, return_index=True)
            cfs = cfs[np.sort(first)]
            keep = box.contains(cfs) & (np.asarray(self.estimator.predict(cfs)) == target)
            cfs = cfs[keep][:k]
        return done(cfs, returned=n_returned)

    def _generate(self, x: np.ndarray, kwargs: dict[str, Any], seed: int, start: float):
        """One DiCE call under the deadline, with Python's and numpy's global state seeded."""
        query = self.decode(x[None, :])
        py_state, np_state = random.getstate(), np.random.get_state()
        random.seed(seed)
        np.random.seed(seed)
        self.model.deadline = None if self.time_limit is None else start + self.time_limit
        try:
            with _quiet():
                return self._explainer().generate_counterfactuals(query, **kwargs)
        finally:
            self.model.deadline = None
            random.setstate(py_state)
            np.random.set_state(np_state)


@contextlib.contextmanager
def _quiet():
    """Silence DiCE's prints, progress bars and library warnings for one call."""
    sink = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
    ):
        warnings.simplefilter("ignore")
        yield
