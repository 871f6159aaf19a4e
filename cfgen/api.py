"""Library API: counterfactuals for a fitted classifier, on the same core as the Hydra app.

Example::

    from sklearn.ensemble import RandomForestClassifier
    from cfgen import explain          # or: from cfgen.api import explain

    model = RandomForestClassifier(random_state=0).fit(X_train, y_train)
    result = explain(model, X_train, y_train, X_train.iloc[0], k=5, seed=0)
    print(result.counterfactuals)      # the data's own values (+ "predicted")

The class form keeps the fitted pieces (problem, compiled model, class bounds) for many queries::

    ex = CounterfactualExplainer(model, X_train, y_train, categorical=["purpose"],
                                 actionability={"age": "non_decreasing"})
    results = ex.explain(X_test.iloc[:10], target=1, k=5, seed=0)   # a list, one per row

Everything goes through :class:`cfgen.problem.Problem` (``Problem.from_fitted``) and the same
method plug-ins as ``python -m cfgen``: ``method="dpg_ga"`` composes
``cfgen/conf/method/dpg_ga.yaml`` (so defaults are the app's), ``ga={...}`` / ``bounds={...}``
override its settings and are validated by the same validator (an unknown key, a wrong type or a
value out of range is a :class:`~cfgen.errors.ConfigError` naming it). ``method`` may also be a
mapping with a ``_target_`` (any plug-in). The same data, model and seed give the same
counterfactuals as the app: row ``ids[i]`` (default ``i``) with target ``t`` draws from
``derive_seed(seed, ids[i], t, 0, 0)``, the seed of the app's task for test row ``ids[i]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cfgen.errors import ConfigError
from cfgen.explanation import Explanation

__all__ = ["CounterfactualExplainer", "CounterfactualResult", "explain"]


@dataclass
class CounterfactualResult:
    """Counterfactuals of one query.

    ``counterfactuals`` holds the rows in the data's own values (with a ``predicted`` column
    when the training data was a DataFrame); ``predicted`` the model's class for each; ``roles``
    why each was chosen; ``history`` the search's best / mean fitness per generation (empty for
    methods without generations); ``explanation`` the raw
    :class:`~cfgen.explanation.Explanation` in the encoded space. ``reason`` says why fewer than
    ``k`` were found; ``timed_out`` that the method hit its time limit.
    """

    query: Any
    query_class: Any
    target: Any
    counterfactuals: Any
    predicted: np.ndarray
    reason: str | None
    seconds: float
    history: pd.DataFrame
    explanation: Explanation = field(repr=False)
    diff: Any = field(default=None, repr=False)  # cfgen.changes.Diff: the query vs each row

    def changes(self) -> pd.DataFrame:
        """One row per counterfactual: role, predicted class and probability, distance,
        number of changes, and ``from → to`` for each changed feature (as ``changes.csv``)."""
        return self.diff.wide()

    def to_frame(self, only_changes: bool = False) -> pd.DataFrame:
        """The counterfactuals' values; ``only_changes=True`` marks unchanged cells ``-``
        (DiCE's ``show_only_changes``)."""
        return self.diff.to_frame(only_changes=only_changes)

    def __str__(self) -> str:
        own, target = (getattr(v, "item", lambda v=v: v)() for v in (self.query_class, self.target))
        head = f"query predicted {own} → target {target}: {len(self)} counterfactual(s)"
        if self.reason:
            head += f" ({self.reason})"
        return head + ("\n" + str(self.diff) if len(self) else "")

    def __len__(self) -> int:
        return int(self.explanation.n_found)

    @property
    def found(self) -> bool:
        return len(self) > 0

    @property
    def roles(self) -> list[str]:
        return list(self.explanation.roles)

    @property
    def timed_out(self) -> bool:
        return bool(self.explanation.timed_out)


def method_node(method: str | Mapping[str, Any], **settings: Any) -> dict[str, Any]:
    """The method's config as ``python -m cfgen method=<method>`` composes it, with
    ``settings`` (e.g. ``ga={...}``, ``time_limit=5``) merged in."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from cfgen.cli import CONF_DIR, group_options
    from cfgen.config import register

    if isinstance(method, Mapping):
        node = dict(method)
    else:
        if method not in group_options("method"):
            raise ConfigError(
                f"method={method!r} is not allowed: expected one of "
                f"{', '.join(group_options('method'))} or a mapping with a "
                "_target_ (a plug-in)"
            )
        register()
        was = GlobalHydra.instance().is_initialized()
        if was:
            GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"method={method}"])
        node = OmegaConf.to_container(cfg.method, resolve=True)  # type: ignore[assignment]
    for key, value in settings.items():
        if value is None and key != "time_limit":
            continue
        if isinstance(value, Mapping) and isinstance(node.get(key), Mapping):
            node[key] = {**node[key], **dict(value)}
        else:
            node[key] = value
    return node


def _int_arg(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name}={value!r} is not allowed: expected an integer >= {low}")
    return int(value)


class CounterfactualExplainer:
    """Counterfactual explanations of a fitted classifier (see the module docstring).

    Parameters
    ----------
    model:
        A fitted classifier with ``predict_proba`` (a scikit-learn estimator or pipeline,
        XGBoost, LightGBM, ...).
    X_train, y_train:
        The training data (DataFrame or array) and labels, as the model was fitted on them.
        A DataFrame's columns are matched to the model's ``feature_names_in_`` by name.
    schema:
        A ready :class:`~cfgen.schema.FeatureSchema` for an *encoded* array ``X_train``;
        otherwise the schema is inferred (``categorical``, ``integer``, ``actionability``:
        ``{feature: "no_change" | "non_increasing" | "non_decreasing"}``, ``ranges``:
        ``{feature: [low, high]}`` a counterfactual must stay in, ``features_to_vary``: the only
        features that may change).
    method:
        A method name (a file of ``cfgen/conf/method/``: ``dpg_ga``, ``dice_genetic``, ...) or
        a plug-in mapping with ``_target_``.
    ga, bounds:
        dpg_ga's settings (``method.ga`` / ``method.bounds`` keys), e.g. ``ga={"population_size":
        50}``, ``bounds={"mode": "paths"}``; ``constraints="paths"`` is the old spelling of
        ``bounds={"mode": "paths"}``.
    time_limit:
        Seconds per query (``None``: no limit).
    options:
        Other settings of the method (e.g. ``strategy`` for DiCE).
    """

    def __init__(
        self,
        model: Any,
        X_train: Any,
        y_train: Any,
        schema: Any = None,
        categorical: Sequence[Any] | None = None,
        integer: Sequence[Any] | None = None,
        actionability: Mapping[str, str] | None = None,
        constraints: str | None = None,
        ga: Mapping[str, Any] | None = None,
        method: str | Mapping[str, Any] = "dpg_ga",
        time_limit: float | None = None,
        feature_names: Sequence[str] | None = None,
        bounds: Mapping[str, Any] | None = None,
        ranges: Mapping[str, Sequence[float]] | None = None,
        features_to_vary: Sequence[str] | None = None,
        **options: Any,
    ) -> None:
        from cfgen.experiment import resolve_bounds
        from cfgen.methods import method_factory
        from cfgen.problem import Problem

        self.problem = Problem.from_fitted(
            model,
            X_train,
            y_train,
            categorical=categorical,
            integer=integer,
            actionability=actionability,
            ranges=ranges,
            features_to_vary=features_to_vary,
            feature_names=feature_names,
            schema=schema,
        )
        self._as_array = not isinstance(X_train, pd.DataFrame)
        if constraints is not None:
            bounds = {**dict(bounds or {}), "mode": constraints}
        node = method_node(method, ga=ga, bounds=bounds, time_limit=time_limit, **options)
        factory = method_factory(node)
        self.method = node["name"]
        self.bounds, self.bounds_info = resolve_bounds(
            self.problem, factory, node, self.problem.X_train
        )
        self.explainer = factory(self.problem, self.problem.schema, self.bounds)
        from cfgen.changes import mh_distance

        self._distance = mh_distance(self.problem.schema, self.problem.X_train)
        self.model = model
        self.classes_ = np.asarray(model.classes_)
        self._class_index = {c: i for i, c in enumerate(self.classes_.tolist())}

    @property
    def schema(self) -> Any:
        return self.problem.schema

    # ------------------------------------------------------------------ helpers
    def _target_index(self, target: Any, proba: np.ndarray) -> int:
        if target is None:
            order = np.argsort(-proba, kind="stable")
            return int(order[1]) if len(order) > 1 else int(order[0])
        if target in self._class_index:
            return self._class_index[target]
        raise ConfigError(
            f"target={target!r} is not a class of the model (classes: {self.classes_.tolist()})"
        )

    def _queries(self, X_query: Any) -> tuple[Any, np.ndarray, bool]:
        """(rows as given, encoded rows, single?) with one line for a malformed query."""
        if isinstance(X_query, (str, bytes)) or (
            isinstance(X_query, np.ndarray) and X_query.dtype.kind in "US" and X_query.ndim == 0
        ):
            raise ConfigError(
                f"X_query={X_query!r} is not allowed: expected a row (Series or "
                "1-D array) or rows (DataFrame or 2-D array) of the features"
            )
        single = isinstance(X_query, pd.Series) or (
            not isinstance(X_query, pd.DataFrame) and np.ndim(X_query) == 1
        )
        if isinstance(X_query, pd.Series):
            X_query = X_query.to_frame().T
        try:
            X = self.problem.encode(X_query)
        except ConfigError:
            raise
        except (ValueError, TypeError, IndexError) as exc:
            raise ConfigError(
                f"X_query: cannot read the rows as the model's {self.problem.d} "
                f"features ({str(exc).splitlines()[0]})"
            ) from None
        if X.ndim != 2 or X.shape[1] != self.problem.d:
            raise ConfigError(
                f"X_query has shape {np.shape(X)}; expected rows of {self.problem.d} features"
            )
        return X_query, X, single

    # ------------------------------------------------------------------ explain
    def explain(
        self,
        X_query: Any,
        target: Any = None,
        k: int = 5,
        seed: int = 0,
        ids: Sequence[int] | None = None,
    ) -> Any:
        """Counterfactuals of one query (a Series or 1-D array → one
        :class:`CounterfactualResult`) or of each row of a batch (a DataFrame or 2-D array →
        a list). ``target`` is a class label of the model (``None``: the most probable other
        class); ``seed`` and ``ids`` make results reproducible (see the module docstring)."""
        from cfgen.plan import derive_seed

        k = _int_arg("k", k, 1)
        seed = _int_arg("seed", seed, 0)
        X_query, X, single = self._queries(X_query)
        ids = list(range(len(X))) if ids is None else [int(i) for i in ids]
        if len(ids) != len(X):
            raise ConfigError(f"ids has {len(ids)} entries for {len(X)} query rows")
        proba = self.problem.predictor.predict_proba(X)
        out = []
        for i, x in enumerate(X):
            t = self._target_index(target, proba[i])
            rng = np.random.default_rng(derive_seed(seed, ids[i], t, 0, 0))
            exp = self.explainer.explain(x, t, k, rng)
            out.append(self._result(X_query, i, int(np.argmax(proba[i])), t, x, exp))
        return out[0] if single else out

    def _result(
        self, X_query: Any, i: int, own: int, t: int, x: np.ndarray, exp: Explanation
    ) -> CounterfactualResult:
        from cfgen.changes import Diff

        cfs = exp.counterfactuals
        pred_idx = self.problem.predict(cfs) if len(cfs) else np.zeros(0, dtype=int)
        predicted = self.classes_[pred_idx]
        decoded = self.problem.decode(cfs if len(cfs) else np.zeros((0, self.problem.d)))
        if self._as_array:  # arrays in, arrays out (numeric when every column is)
            frame = decoded
            decoded = frame.to_numpy()
            if all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes):
                decoded = decoded.astype(float)
        else:
            decoded = decoded.reset_index(drop=True)
            decoded["predicted"] = predicted
        if isinstance(X_query, pd.DataFrame):
            query = X_query.iloc[i]
        else:
            q = np.asarray(X_query)
            query = q if q.ndim == 1 else q[i]
        history = pd.DataFrame(
            {
                "generation": np.arange(len(exp.best_fitness)),
                "best": exp.best_fitness,
                "mean": exp.mean_fitness,
            }
        )
        diff = Diff.build(
            x,
            cfs,
            self.problem.decode,
            predict_proba=self.problem.predictor.predict_proba,
            class_names=[str(c) for c in self.classes_],
            distance=self._distance,
            roles=exp.roles or None,
        )
        return CounterfactualResult(
            query=query,
            query_class=self.classes_[own],
            target=self.classes_[t],
            counterfactuals=decoded,
            predicted=predicted,
            reason=exp.reason,
            seconds=exp.seconds,
            history=history,
            explanation=exp,
            diff=diff,
        )


def explain(
    model: Any,
    X_train: Any,
    y_train: Any,
    X_query: Any,
    target: Any = None,
    k: int = 5,
    seed: int = 0,
    **options: Any,
) -> Any:
    """One-shot form of :class:`CounterfactualExplainer` (``options``: its keyword arguments:
    ``schema``, ``categorical``, ``integer``, ``actionability``, ``ranges``,
    ``features_to_vary``, ``method``, ``ga``, ``bounds``, ``time_limit``, ``feature_names``, the
    method's own settings)."""
    return CounterfactualExplainer(model, X_train, y_train, **options).explain(
        X_query, target=target, k=k, seed=seed
    )
