"""The one object every method, the runner and the metrics work on: a :class:`Problem`.

A problem is the feature schema, one codec between the user's rows and the encoded search space,
the training (and test) arrays in that space, the fitted model, an estimator answering class
*indices* on encoded rows, its fast predictor, the single tree view (``trees``, ``None`` for
models that are not tree ensembles) and the class names. The Hydra app builds it from config
(:meth:`Problem.from_config`), the library API from a fitted model (:meth:`Problem.from_fitted`);
everything downstream is the same code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cfgen.errors import ConfigError
from cfgen.predictor import Predictor
from cfgen.schema import FeatureSchema

log = logging.getLogger(__name__)


class IndexModel:
    """A fitted model seen from the encoded space, answering class indices ``0..C-1``.

    ``decode`` (optional) turns encoded rows into what the model was fitted on (the user's
    DataFrame with category labels); ``columns`` wraps arrays in a DataFrame with the model's
    own column names (``feature_names_in_``) so scikit-learn never sees unnamed rows.
    """

    def __init__(
        self,
        model: Any,
        decode: Any = None,
        columns: Sequence[str] | None = None,
    ) -> None:
        self.model = model
        self.classes_ = np.arange(len(model.classes_))
        self._decode = decode
        self._columns = list(columns) if columns is not None else None
        self._lookup = {c: i for i, c in enumerate(np.asarray(model.classes_).tolist())}

    def _rows(self, X: np.ndarray) -> Any:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if self._decode is not None:
            return self._decode(X)
        if self._columns is not None:
            return pd.DataFrame(X, columns=self._columns)
        return X

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros((0, len(self.classes_)))
        return np.asarray(self.model.predict_proba(self._rows(X)), dtype=float)

    def predict(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0, dtype=int)
        labels = np.asarray(self.model.predict(self._rows(X))).tolist()
        return np.array([self._lookup[c] for c in labels], dtype=int)


@dataclass
class Problem:
    """Schema + codec + arrays + estimator + predictor + tree view + class names."""

    name: str
    schema: FeatureSchema
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    target_name: str
    model: Any  # the fitted model as built (config) or given (API)
    estimator: Any  # answers class indices on encoded rows (the model itself when it can)
    predictor: Predictor
    trees: Any  # cfgen.trees.TreeEnsemble | None
    codec: Any  # decode(X) -> DataFrame, encode(rows) -> ndarray
    trees_note: str = ""  # why ``trees`` is None (the tree view's one line)
    train_accuracy: float = float("nan")
    test_accuracy: float = float("nan")
    model_seconds: float = 0.0

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def d(self) -> int:
        return len(self.schema)

    def decode(self, X: np.ndarray) -> pd.DataFrame:
        """Encoded rows in the user's values (category labels, integers as integers)."""
        return self.codec.decode(np.atleast_2d(np.asarray(X, dtype=float)))

    def encode(self, rows: Any) -> np.ndarray:
        """The user's rows (DataFrame, Series or array) in the encoded space."""
        return np.asarray(self.codec.encode(rows), dtype=float)

    def round(self, X: np.ndarray) -> np.ndarray:
        """Encoded rows rounded to the data's own precision (what a user would write down)."""
        from cfgen.schema import Kind

        X = np.array(X, dtype=float, copy=True)
        for j, f in enumerate(self.schema.features):
            X[:, j] = np.round(X[:, j], 0 if f.kind is not Kind.CONTINUOUS else f.decimals)
        return X

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class indices by the model's own ``predict`` (the final word on validity)."""
        return np.asarray(self.estimator.predict(np.atleast_2d(X)), dtype=int)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_config(cls, dataset_cfg: Any, model_cfg: Any) -> Problem:
        """Load ``cfg.dataset``, build and fit ``cfg.model`` on its training split."""
        from cfgen.data import load_dataset
        from cfgen.models import build_estimator

        data = load_dataset(dataset_cfg)
        est = build_estimator(
            model_cfg, categorical=np.flatnonzero(data.schema.categorical).tolist()
        )
        start = time.perf_counter()
        try:
            est.fit(data.X_train, data.y_train)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"model: fitting {type(est).__name__} on {data.name} failed: "
                f"{str(exc).splitlines()[0]}"
            ) from None
        seconds = time.perf_counter() - start
        problem = cls._assemble(
            data.name,
            data.schema,
            data.X_train,
            data.y_train,
            data.X_test,
            data.y_test,
            list(data.class_names),
            data.target_name,
            est,
            codec=data,
            columns=None,
        )
        problem.model_seconds = seconds
        return problem

    @classmethod
    def from_fitted(
        cls,
        model: Any,
        X: Any,
        y: Any,
        *,
        categorical: Sequence[Any] | None = None,
        integer: Sequence[Any] | None = None,
        actionability: Mapping[str, str] | None = None,
        ranges: Mapping[str, Sequence[float]] | None = None,
        features_to_vary: Sequence[str] | None = None,
        feature_names: Sequence[str] | None = None,
        schema: FeatureSchema | None = None,
        name: str = "data",
    ) -> Problem:
        """A problem around a model the user fitted on ``X`` (DataFrame or array), ``y``.

        The schema is inferred by :class:`cfgen.codec.Codec` (the same inference as the Hydra
        app's) unless a ready ``schema`` for an encoded array is given.
        """
        from cfgen.models import check_classifier

        check_classifier(model, "model")
        X = _align_columns(model, X)
        codec, identity = _codec_for(
            X,
            schema,
            categorical=categorical,
            integer=integer,
            actionability=actionability,
            ranges=ranges,
            features_to_vary=features_to_vary,
            feature_names=feature_names,
        )
        X_enc = np.asarray(codec.encode(X), dtype=float)
        lookup = {c: i for i, c in enumerate(np.asarray(model.classes_).tolist())}
        try:
            y_idx = np.array([lookup[v] for v in np.asarray(y).tolist()], dtype=int)
        except KeyError as exc:
            raise ConfigError(
                f"y_train has a label {exc.args[0]!r} the model does not know "
                f"(classes: {list(lookup)})"
            ) from None
        if len(X_enc) != len(y_idx):
            raise ConfigError(f"X_train has {len(X_enc)} rows, y_train {len(y_idx)}")
        empty = np.zeros((0, X_enc.shape[1]))
        return cls._assemble(
            name,
            codec.schema,
            X_enc,
            y_idx,
            empty,
            np.zeros(0, dtype=int),
            [str(c) for c in lookup],
            "target",
            model,
            codec=codec,
            identity=identity,
            columns=getattr(model, "feature_names_in_", None),
        )

    @classmethod
    def _assemble(
        cls,
        name: str,
        schema: FeatureSchema,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_test: np.ndarray,
        y_test: np.ndarray,
        class_names: list[str],
        target_name: str,
        model: Any,
        *,
        codec: Any,
        identity: bool = True,
        columns: Any = None,
    ) -> Problem:
        from cfgen.models import check_classifier
        from cfgen.predictor import compile_predictor

        check_classifier(model, "model")
        trees, note = (
            tree_view(model)
            if identity
            else (None, "the model is called on the user's own rows, not the encoded ones")
        )
        natural = np.array_equal(np.asarray(model.classes_), np.arange(len(model.classes_)))
        if identity and natural and columns is None:
            estimator: Any = model
        else:
            estimator = IndexModel(
                model,
                decode=None if identity else codec.decode_fitted,
                columns=None if columns is None else [str(c) for c in columns],
            )
        predictor = compile_predictor(model if trees is not None else estimator)
        problem = cls(
            name,
            schema,
            X_train,
            y_train,
            X_test,
            y_test,
            class_names,
            target_name,
            model,
            estimator,
            predictor,
            trees,
            codec,
        )
        problem.trees_note = note
        problem.train_accuracy = _accuracy(estimator, X_train, y_train)
        problem.test_accuracy = _accuracy(estimator, X_test, y_test)
        return problem


class _Identity:
    """Encoded arrays given directly with a ready schema: encode/decode are the identity."""

    def __init__(self, schema: FeatureSchema) -> None:
        self.schema = schema
        self.names = schema.names

    def encode(self, X: Any) -> np.ndarray:
        return np.atleast_2d(np.asarray(X, dtype=float))

    def decode(self, X: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(np.atleast_2d(X), columns=self.schema.names)

    decode_fitted = encode


class _FittedCodec:
    """A :class:`cfgen.codec.Codec` whose ``decode_fitted`` gives rows in the dtypes the model
    was fitted on (what the user's model is called with)."""

    def __init__(self, codec: Any) -> None:
        self.codec = codec
        self.schema = codec.schema
        self.names = codec.names

    def encode(self, X: Any) -> np.ndarray:
        return self.codec.encode(X)

    def decode(self, X: np.ndarray) -> pd.DataFrame:
        return self.codec.decode(X)

    def decode_fitted(self, X: np.ndarray) -> pd.DataFrame:
        return self.codec.decode(X, as_fitted=True)


def _codec_for(X: Any, schema: FeatureSchema | None, **options: Any) -> tuple[Any, bool]:
    """The codec for the API's training rows, and whether encoded rows are the model's input."""
    from cfgen.codec import Codec

    if schema is not None:
        arr = np.asarray(X, dtype=float)
        if arr.ndim != 2 or arr.shape[1] != len(schema):
            raise ConfigError(
                f"X_train has shape {arr.shape}; the schema has {len(schema)} features"
            )
        rules = options.get("actionability")
        return _Identity(schema.with_rules(dict(rules)) if rules else schema), True
    codec = Codec.fit(X, **options)
    return _FittedCodec(codec), codec.identity


def _accuracy(estimator: Any, X: np.ndarray, y: np.ndarray) -> float:
    if len(X) == 0:
        return float("nan")
    return float(np.mean(np.asarray(estimator.predict(X)) == y))


def tree_view(model: Any) -> tuple[Any, str]:
    """The model's :class:`~cfgen.trees.TreeEnsemble` (``None`` if there is none) and, then,
    why not (the view's own one line: not a tree ensemble, categorical splits, ...)."""
    from cfgen.trees import TreeEnsemble, UnsupportedModel

    try:
        return TreeEnsemble.from_model(model), ""
    except UnsupportedModel as exc:
        return None, str(exc)


def _align_columns(model: Any, X: Any) -> Any:
    """Rows in the column order the model was fitted with (by name), or one clear line.

    scikit-learn itself refuses reordered columns; computing with them silently would explain a
    different model. A DataFrame with the same names in another order is reordered; different
    names are refused.
    """
    names = getattr(model, "feature_names_in_", None)
    if names is None or not isinstance(X, pd.DataFrame):
        return X
    names = [str(c) for c in names]
    have = [str(c) for c in X.columns]
    if have == names:
        return X
    if sorted(have) == sorted(names):
        return X[list(X.columns[[have.index(n) for n in names]])]
    missing = [n for n in names if n not in have]
    extra = [c for c in have if c not in names]
    raise ConfigError(
        f"X_train: columns {have} do not match the model's feature_names_in_ "
        f"{names} (missing {missing}, unexpected {extra})"
    )
