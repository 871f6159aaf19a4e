"""Library API: counterfactuals for a fitted scikit-learn classifier, without Hydra.

Example::

    from sklearn.ensemble import RandomForestClassifier
    from cfgen import explain          # or: from cfgen.api import explain

    model = RandomForestClassifier(random_state=0).fit(X_train, y_train)
    result = explain(model, X_train, y_train, X_train.iloc[0], k=5, seed=0)
    print(result.counterfactuals)      # a DataFrame in the data's own values (+ "predicted")

The class form keeps the fitted pieces (schema, compiled forest, class bounds) for many queries::

    ex = CounterfactualExplainer(model, X_train, y_train, categorical=["purpose"],
                                 actionability={"age": "non_decreasing"})
    results = ex.explain(X_test.iloc[:10], target=1, k=5, seed=0)   # a list, one per row

What the model sees is what it was fitted on: ``X_train`` as given (a DataFrame with category
strings works if the model is e.g. a pipeline that encodes them). cfgen searches in an encoded
space (categoricals as codes ``0..n-1`` of their sorted training values) and decodes every
counterfactual back. When that encoded space *is* the model's input (numeric data whose
categoricals, if any, are already the codes ``0..n-1``) and the model is a random forest /
extra trees / decision tree, the forest is compiled and its class bounds are mined
(``constraints``); otherwise the model is called through a decoding adapter and the search runs
without class bounds. Every method of the Hydra app is available (``method="dpg_ga"`` or
``"dice_random"`` / ``"dice_genetic"`` / ``"dice_kdtree"``) and built by the same
:func:`cfgen.methods.build_explainer`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from cfgen.data import decimals_of as _decimals
from cfgen.errors import ConfigError
from cfgen.explanation import Explanation
from cfgen.schema import Feature, FeatureSchema, Kind, Rule

__all__ = ["CounterfactualExplainer", "CounterfactualResult", "explain"]



# --------------------------------------------------------------------------- results


@dataclass
class CounterfactualResult:
    """Counterfactuals of one query.

    ``counterfactuals`` holds the rows in the data's own values (a DataFrame with a
    ``predicted`` column when the training data was a DataFrame, else an array); ``predicted``
    the model's class for each; ``history`` the search's best / mean fitness per generation
    (empty for DiCE); ``explanation`` the raw :class:`~cfgen.explanation.Explanation` in the
    encoded space. ``reason`` says why fewer than ``k`` were found.
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

    def __len__(self) -> int:
        return int(self.explanation.n_found)

    @property
    def found(self) -> bool:
        return len(self) > 0


# --------------------------------------------------------------------------- encoding


class _Codec:
    """The user's rows (DataFrame or array) <-> cfgen's encoded float array."""

    def __init__(self, X, categorical, integer, actionability, feature_names) -> None:
        self.is_frame = isinstance(X, pd.DataFrame)
        if self.is_frame:
            frame = X
            self.names = [str(c) for c in X.columns]
        else:
            arr = np.asarray(X)
            if arr.ndim != 2:
                raise ConfigError(
                    f"X_train: expected a 2-D array or DataFrame, got shape {arr.shape}")
            self.names = list(feature_names) if feature_names is not None else [
                f"x{j}" for j in range(arr.shape[1])]
            if len(self.names) != arr.shape[1]:
                raise ConfigError(f"feature_names has {len(self.names)} names for "
                                  f"{arr.shape[1]} columns")
            frame = pd.DataFrame(arr, columns=self.names)
        self.columns = list(X.columns) if self.is_frame else None
        self.dtypes = frame.dtypes.to_dict() if self.is_frame else None
        cat_given = self._names(categorical, "categorical")
        int_given = None if integer is None else self._names(integer, "integer")
        rules = dict(actionability or {})
        unknown = set(rules) - set(self.names)
        if unknown:
            raise ConfigError(f"actionability names unknown features {sorted(unknown)}")
        features, self.categories = [], {}
        identity = True
        for name, col in zip(self.names, frame.columns, strict=True):
            values = frame[col]
            if values.isna().any():
                raise ConfigError(f"X_train column {name!r} has missing values; impute them first")
            is_cat = name in cat_given or not pd.api.types.is_numeric_dtype(values) \
                or pd.api.types.is_bool_dtype(values)
            if is_cat:
                levels = sorted(pd.unique(values).tolist(), key=lambda v: (str(type(v)), v))
                self.categories[name] = levels
                if not (all(isinstance(v, (int, float, np.integer, np.floating)) and
                            not isinstance(v, bool) for v in levels)
                        and [float(v) for v in levels] == [float(i) for i in range(len(levels))]):
                    identity = False
                features.append(Feature(name, Kind.CATEGORICAL, 0.0, float(len(levels) - 1),
                                        tuple(str(v) for v in levels),
                                        Rule(rules.get(name, "none")), 0))
                continue
            v = values.to_numpy(dtype=float)
            if int_given is not None:
                kind = Kind.INTEGER if name in int_given else Kind.CONTINUOUS
            else:
                kind = Kind.INTEGER if np.all(v == np.round(v)) else Kind.CONTINUOUS
            features.append(Feature(name, kind, float(v.min()), float(v.max()),
                                    rule=Rule(rules.get(name, "none")),
                                    decimals=0 if kind is not Kind.CONTINUOUS else _decimals(v)))
        self.schema = FeatureSchema(tuple(features))
        self.identity = identity and all(
            pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns)

    def _names(self, given, what: str) -> set[str]:
        out = set()
        for g in given or ():
            if isinstance(g, (int, np.integer)) and not isinstance(g, bool):
                if not 0 <= g < len(self.names):
                    raise ConfigError(f"{what}: column index {g} is out of range")
                out.add(self.names[int(g)])
            elif str(g) in self.names:
                out.add(str(g))
            else:
                raise ConfigError(f"{what} names an unknown column {g!r}")
        return out

    def to_frame(self, X) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            missing = [c for c in self.names if c not in [str(c) for c in X.columns]]
            if missing:
                raise ConfigError(f"query rows lack columns {missing}")
            X = X.copy()
            X.columns = [str(c) for c in X.columns]
            return X[self.names]
        arr = np.asarray(X, dtype=object)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.shape[1] != len(self.names):
            raise ConfigError(f"query rows have {arr.shape[1]} values, the data {len(self.names)}")
        return pd.DataFrame(arr, columns=self.names)

    def encode(self, X) -> np.ndarray:
        frame = self.to_frame(X)
        out = np.empty((len(frame), len(self.names)))
        for j, name in enumerate(self.names):
            col = frame[name]
            if name in self.categories:
                levels = self.categories[name]
                lookup = {v: i for i, v in enumerate(levels)}
                lookup.update({str(v): i for i, v in enumerate(levels)})
                try:
                    out[:, j] = [lookup[v] if v in lookup else lookup[str(v)] for v in col]
                except KeyError as exc:
                    raise ConfigError(f"column {name!r} has a category not seen in training: "
                                      f"{exc.args[0]!r}") from None
            else:
                out[:, j] = pd.to_numeric(col).to_numpy(dtype=float)
        return out

    def decode(self, X: np.ndarray):
        """Encoded rows → the user's format (DataFrame with the training dtypes, or array).

        Continuous values are returned as found (they are on the data's grid, or the query's
        own value where unchanged); integers and categories map back exactly.
        """
        X = np.atleast_2d(np.asarray(X, dtype=float))
        cols = {}
        numeric = True
        for j, f in enumerate(self.schema.features):
            if f.kind is Kind.CATEGORICAL:
                levels = np.empty(len(self.categories[f.name]), dtype=object)
                levels[:] = self.categories[f.name]
                cols[f.name] = levels[np.rint(X[:, j]).astype(int)]
                numeric &= all(isinstance(v, (int, float, np.integer, np.floating))
                               for v in self.categories[f.name])
            elif f.kind is Kind.INTEGER:
                cols[f.name] = np.rint(X[:, j]).astype(np.int64)
            else:
                cols[f.name] = X[:, j]
        frame = pd.DataFrame(cols, columns=self.names)
        if not self.is_frame:
            return frame.to_numpy(dtype=float) if numeric else frame.to_numpy()
        frame.columns = self.columns
        for c, dt in self.dtypes.items():
            try:
                frame[c] = frame[c].astype(dt)
            except (TypeError, ValueError):
                pass
        return frame


class _ModelAdapter:
    """The user's model seen from the encoded space (decodes rows before every call)."""

    def __init__(self, model, codec: _Codec) -> None:
        self.model = model
        self.codec = codec
        self.classes_ = np.arange(len(model.classes_))
        self.n_features_in_ = len(codec.names)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if len(X) == 0:
            return np.zeros((0, len(self.classes_)))
        return np.asarray(self.model.predict_proba(self.codec.decode(X)))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1)


class _IndexModel:
    """A model fitted on the encoded space, answering class *indices* (0..C-1)."""

    def __init__(self, model, feature_names: list[str] | None) -> None:
        self.model = model
        self.classes_ = np.arange(len(model.classes_))
        self.n_features_in_ = getattr(model, "n_features_in_", None)
        self._names = feature_names
        self._lookup = {c: i for i, c in enumerate(np.asarray(model.classes_).tolist())}

    def _x(self, X):
        if self._names is not None:
            return pd.DataFrame(np.atleast_2d(X), columns=self._names)
        return np.atleast_2d(X)

    def predict_proba(self, X) -> np.ndarray:
        return np.asarray(self.model.predict_proba(self._x(X)))

    def predict(self, X) -> np.ndarray:
        return np.array([self._lookup[c] for c in np.asarray(self.model.predict(self._x(X)))],
                        dtype=int)


# --------------------------------------------------------------------------- explainer


class CounterfactualExplainer:
    """Counterfactual explanations of a fitted classifier (see the module docstring).

    Parameters
    ----------
    model:
        A fitted scikit-learn classifier with ``predict_proba``.
    X_train, y_train:
        The training data (DataFrame or array) and labels, as the model was fitted on them.
    schema:
        A ready :class:`~cfgen.schema.FeatureSchema` for an *encoded* array ``X_train``
        (categoricals as codes); otherwise the schema is inferred: ``categorical`` columns (names
        or indices; non-numeric columns always are), ``integer`` columns (default: the
        integer-valued ones) and ``actionability`` (``{feature: "no_change" | "non_increasing" |
        "non_decreasing"}``).
    constraints:
        Class-bound miner ``"dpg"`` (default), ``"paths"``, ``"mass"`` or ``"none"``.
    ga:
        GA settings: a :class:`~cfgen.search.GAParams` or a mapping of ``ga`` config keys.
    method:
        ``"dpg_ga"`` (default), ``"dice_random"``, ``"dice_genetic"`` or ``"dice_kdtree"``.
    time_limit:
        Seconds per query (``None``: no limit).
    """

    def __init__(
        self,
        model,
        X_train,
        y_train,
        schema: FeatureSchema | None = None,
        categorical: Sequence[str | int] | None = None,
        integer: Sequence[str | int] | None = None,
        actionability: Mapping[str, str] | None = None,
        constraints: str = "dpg",
        ga: Any = None,
        method: str = "dpg_ga",
        time_limit: float | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> None:
        from cfgen.constraints import mine_class_bounds, tree_estimators
        from cfgen.data import Dataset
        from cfgen.methods import METHODS, build_explainer
        from cfgen.models import FittedModel
        from cfgen.predictor import compile_predictor, is_compilable

        if not hasattr(model, "predict_proba") or not hasattr(model, "classes_"):
            raise ConfigError(f"model: expected a fitted classifier with predict_proba, got "
                              f"{type(model).__name__}")
        if method not in METHODS:
            raise ConfigError(
                f"method={method!r} is not allowed: expected one of {', '.join(METHODS)}")
        self.model = model
        self.method = method
        self.classes_ = np.asarray(model.classes_)
        self._class_index = {c: i for i, c in enumerate(self.classes_.tolist())}
        y = np.asarray(y_train)
        try:
            y_idx = np.array([self._class_index[v] for v in y.tolist()], dtype=int)
        except KeyError as exc:
            raise ConfigError(f"y_train has a label {exc.args[0]!r} the model does not know "
                              f"(classes: {self.classes_.tolist()})") from None

        if schema is not None:
            X = np.asarray(X_train, dtype=float)
            if X.ndim != 2 or X.shape[1] != len(schema):
                raise ConfigError(
                    f"X_train has shape {X.shape}; the schema has {len(schema)} features")
            self.codec = None
            self.schema = schema.with_rules(dict(actionability)) if actionability else schema
            X_enc = X
            identity = True
            names = list(X_train.columns) if isinstance(X_train, pd.DataFrame) else None
        else:
            self.codec = _Codec(X_train, categorical, integer, actionability, feature_names)
            self.schema = self.codec.schema
            X_enc = self.codec.encode(X_train)
            identity = self.codec.identity
            names = list(X_train.columns) if isinstance(X_train, pd.DataFrame) else None
        if len(X_enc) != len(y_idx):
            raise ConfigError(f"X_train has {len(X_enc)} rows, y_train {len(y_idx)}")

        if identity:
            # answers class indices; unwrapped (``.model``) for the forest's split thresholds
            estimator = _IndexModel(model, names)
            predictor = compile_predictor(model if is_compilable(model) else estimator)
        else:
            estimator = _ModelAdapter(model, self.codec)
            predictor = compile_predictor(estimator)
        self.estimator = estimator

        bounds = None
        if constraints != "none":
            try:
                tree_estimators(model, constraints)
                ok = identity
            except ConfigError:
                ok = False
            if ok:
                bounds = mine_class_bounds(model, self.schema, mode=constraints, X_train=X_enc)
            else:
                warnings.warn(
                    f"constraints={constraints!r} needs a tree ensemble fitted on the encoded "
                    f"features; {type(model).__name__} is searched without class bounds",
                    stacklevel=2,
                )
        self.bounds = bounds
        self.data = Dataset(
            name="api", schema=self.schema, X_train=X_enc, y_train=y_idx,
            X_test=np.zeros((0, X_enc.shape[1])), y_test=np.zeros(0, dtype=int),
            class_names=[str(c) for c in self.classes_], target_name="target",
        )
        fitted = FittedModel(estimator=estimator, predictor=predictor, train_accuracy=float("nan"),
                             test_accuracy=float("nan"), seconds=0.0)
        self.explainer = build_explainer(method, ga or {}, fitted, self.data, bounds, self.schema,
                                         time_limit=time_limit)
        self._predictor = predictor

    # ------------------------------------------------------------------ helpers
    def _encode(self, X) -> np.ndarray:
        if self.codec is not None:
            return self.codec.encode(X)
        return np.atleast_2d(np.asarray(X, dtype=float))

    def _decode(self, X: np.ndarray):
        return self.codec.decode(X) if self.codec is not None else X

    def _target_index(self, target, proba: np.ndarray) -> int:
        if target is None:
            order = np.argsort(-proba, kind="stable")
            return int(order[1]) if len(order) > 1 else int(order[0])
        if target in self._class_index:
            return self._class_index[target]
        raise ConfigError(f"target={target!r} is not a class of the model "
                          f"(classes: {self.classes_.tolist()})")

    # ------------------------------------------------------------------ explain
    def explain(self, X_query, target=None, k: int = 5, seed: int = 0):
        """Counterfactuals of one query (1-D: a Series or a 1-D array → one
        :class:`CounterfactualResult`) or of each row of a batch (2-D: a DataFrame or a 2-D
        array → a list). ``target`` is a class label of the model (``None``: the most probable
        other class); ``seed`` makes the results reproducible (row ``i`` of a batch uses the
        ``i``-th child of ``SeedSequence(seed)``)."""
        single = isinstance(X_query, pd.Series) or (
            not isinstance(X_query, pd.DataFrame) and np.ndim(X_query) == 1)
        if isinstance(X_query, pd.Series):
            X_query = X_query.to_frame().T
        X = self._encode(X_query)
        if k < 1:
            raise ConfigError(f"k={k!r} is not allowed: expected a positive integer")
        proba = self._predictor.predict_proba(X)
        out = []
        children = np.random.SeedSequence(seed).spawn(len(X))
        for i, x in enumerate(X):
            t = self._target_index(target, proba[i])
            rng = np.random.default_rng(children[i])
            exp = self.explainer.explain(x, t, k, rng)
            out.append(self._result(X_query, i, x, int(np.argmax(proba[i])), t, exp))
        return out[0] if single else out

    def _result(self, X_query, i, x, own, t, exp: Explanation) -> CounterfactualResult:
        cfs = exp.counterfactuals
        pred_idx = np.argmax(self._predictor.predict_proba(cfs), axis=1) if len(cfs) else \
            np.zeros(0, dtype=int)
        predicted = self.classes_[pred_idx] if len(cfs) else self.classes_[:0]
        decoded = self._decode(cfs) if len(cfs) or self.codec is None else self._decode(
            np.zeros((0, len(self.schema))))
        if isinstance(decoded, pd.DataFrame):
            decoded = decoded.reset_index(drop=True)
            decoded["predicted"] = predicted
        if isinstance(X_query, pd.DataFrame):
            query = X_query.iloc[i]
        else:
            q = np.asarray(X_query)
            query = q if q.ndim == 1 else q[i]
        history = pd.DataFrame({
            "generation": np.arange(len(exp.best_fitness)),
            "best": exp.best_fitness,
            "mean": exp.mean_fitness,
        })
        return CounterfactualResult(
            query=query, query_class=self.classes_[own], target=self.classes_[t],
            counterfactuals=decoded, predicted=predicted, reason=exp.reason,
            seconds=exp.seconds, history=history, explanation=exp,
        )


def explain(
    model,
    X_train,
    y_train,
    X_query,
    target=None,
    k: int = 5,
    seed: int = 0,
    **options,
):
    """One-shot form of :class:`CounterfactualExplainer` (``options``: its keyword arguments:
    ``schema``, ``categorical``, ``integer``, ``actionability``, ``constraints``, ``ga``,
    ``method``, ``time_limit``, ``feature_names``)."""
    return CounterfactualExplainer(model, X_train, y_train, **options).explain(
        X_query, target=target, k=k, seed=seed)
