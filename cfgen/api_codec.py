"""The library API's schema inference and codec (temporary home: the data room's one codec,
``cfgen.codec``, replaces it so the API and the Hydra app infer schemas the same way)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cfgen.data import decimals_of as _decimals
from cfgen.errors import ConfigError
from cfgen.schema import Feature, FeatureSchema, Kind, Rule


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


class _Identity:
    """Encoded arrays given directly with a ready schema: encode/decode are the identity."""

    def __init__(self, schema: FeatureSchema, names: list[str] | None) -> None:
        self.schema = schema
        self.names = names or schema.names

    def encode(self, X: Any) -> np.ndarray:
        return np.atleast_2d(np.asarray(X, dtype=float))

    def decode(self, X: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(np.atleast_2d(X), columns=self.schema.names)


def codec_for(X: Any, categorical: Any, integer: Any, actionability: Any, feature_names: Any,
              schema: FeatureSchema | None) -> tuple[Any, bool]:
    """The codec for the API's training rows, and whether encoded rows are the model's input."""
    if schema is not None:
        arr = np.asarray(X, dtype=float)
        if arr.ndim != 2 or arr.shape[1] != len(schema):
            raise ConfigError(f"X_train has shape {arr.shape}; the schema has {len(schema)} "
                              "features")
        sch = schema.with_rules(dict(actionability)) if actionability else schema
        names = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
        return _Identity(sch, names), True
    codec = _Codec(X, categorical, integer, actionability, feature_names)
    return codec, codec.identity
