"""One schema inference and one codec between the user's rows and cfgen's encoded space.

Both entry points (``cfgen.data.load_dataset`` for Hydra runs, the library API for a fitted
model) build their :class:`~cfgen.schema.FeatureSchema` here, so a column gets the same kind,
categories and codes whichever way it came in. The rule, per feature column:

* **categorical** if named in ``categorical``, or boolean, or a pandas ``category``, or not
  numeric (text). Its codes ``0..n-1`` follow its *levels*: booleans ``False < True``; numbers
  sorted numerically (``2 < 10``, and integral floats become ints); a pandas ``category`` in its
  declared order; anything else sorted as strings. ``Feature.categories`` holds the labels
  (``str`` of each level); :meth:`Codec.decode` gives back the levels themselves (ints as ints,
  booleans as booleans).
* otherwise **integer** if named in ``integer`` (when given) or, when ``integer`` is None, when
  every value is a whole number; else **continuous**.

Ranges (``low``/``high``) and decimals are those observed in the rows the codec last saw
(:meth:`Codec.observe`: the training split for Hydra runs, ``X_train`` for the API).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from cfgen.errors import ConfigError
from cfgen.schema import RULE_NAMES, Feature, FeatureSchema, Kind, Rule

MAX_DECIMALS = 6
SHOW = 8  # values / names shown in an error line before "…"

_ID_NAME = re.compile(
    r"^(id|.*[_\s.-]id|id[_\s.-].*|index|identifier|unnamed:\s*\d+|row_?(id|num|number|no))$",
    re.IGNORECASE,
)
_ID_CAMEL = re.compile(r"^[A-Za-z]\w*[a-z](ID|Id)$")


def shown(items: Iterable[Any], limit: int = SHOW) -> str:
    """``a, b, c, …`` for an error line."""
    items = list(items)
    text = ", ".join(map(str, items[:limit]))
    return text + (f", … ({len(items)} in all)" if len(items) > limit else "")


def decimals_of(values: np.ndarray) -> int:
    """Fewest decimals (<= MAX_DECIMALS) that represent every finite value."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    for d in range(MAX_DECIMALS + 1):
        if np.allclose(np.round(values, d), values, rtol=0, atol=1e-9):
            return d
    return MAX_DECIMALS


def _plain(v: Any) -> Any:
    """numpy scalars to Python; integral floats to int (a level ``2.0`` is the level ``2``)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


@dataclass(frozen=True)
class Levels:
    """The categories of one categorical column, in code order."""

    values: tuple[Any, ...]  # the user's own values (typed)
    kind: str  # bool | number | text
    dtype: Any = None  # a pandas CategoricalDtype to decode into, else None

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(str(v) for v in self.values)


def infer_levels(values: pd.Series) -> Levels:
    """The one ordering rule for a categorical column (see the module docstring)."""
    dtype = values.dtype
    present = values.dropna()
    if isinstance(dtype, pd.CategoricalDtype):
        cats = [_plain(c) for c in dtype.categories]
        kind = "number" if pd.api.types.is_numeric_dtype(dtype.categories.dtype) else "text"
        return Levels(tuple(cats), kind, dtype)
    seen = pd.unique(present)
    inferred = pd.api.types.infer_dtype(present, skipna=True)
    if inferred == "boolean":
        return Levels(tuple(sorted({bool(v) for v in seen})), "bool")
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return Levels(tuple(_plain(v) for v in sorted(float(v) for v in seen)), "number")
    return Levels(tuple(sorted({str(v) for v in seen})), "text")


def _as_numbers(values: pd.Series) -> pd.Series | None:
    """The column as floats when every present value is a real number (no text, no bools)."""
    if pd.api.types.is_bool_dtype(values.dtype) or isinstance(values.dtype, pd.CategoricalDtype):
        return None
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype(float)
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return pd.to_numeric(values).astype(float)
    return None


class Codec:
    """The user's rows (DataFrame, Series or array) ↔ cfgen's encoded float array.

    Build one with :meth:`fit`; ``schema`` describes the encoded space, ``names`` the columns in
    order, :meth:`encode` / :meth:`decode` convert rows both ways.
    """

    def __init__(
        self, schema: FeatureSchema, levels: Mapping[str, Levels], dtypes: Mapping[str, Any]
    ) -> None:
        self.schema = schema
        self.names = schema.names
        self.levels = dict(levels)
        self.dtypes = dict(dtypes)  # each column's dtype as fitted

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        X: Any,
        *,
        categorical: Sequence[str | int] | None = None,
        integer: Sequence[str | int] | None = None,
        actionability: Mapping[str, str] | None = None,
        ranges: Mapping[str, Sequence[float]] | None = None,
        features_to_vary: Sequence[str] | None = None,
        feature_names: Sequence[str] | None = None,
        prefix: str = "",
        what: str = "X_train",
    ) -> Codec:
        """Infer the schema of ``X`` (see the module docstring) and fit the codes.

        ``prefix`` is put before argument names in error lines (``"dataset."`` for configs);
        ``what`` names the data in them. Missing values are allowed here (the caller imputes
        or drops them after :meth:`encode` with ``missing="keep"``); columns with none are not.
        """
        frame = _frame_of(X, feature_names, what)
        names = [str(c) for c in frame.columns]
        cat = set(_pick(categorical, names, f"{prefix}categorical"))
        ints = None if integer is None else set(_pick(integer, names, f"{prefix}integer"))
        features, levels, dtypes = [], {}, {}
        for name in names:
            col = frame[name]
            dtypes[name] = col.dtype
            if col.notna().sum() == 0:
                raise ConfigError(
                    f"{what} column {name!r} has no values (all {len(col)} rows are missing): "
                    f"drop it{' with dataset.drop=[' + name + ']' if prefix else ''}"
                )
            numbers = None if name in cat else _as_numbers(col)
            if numbers is None:
                if ints is not None and name in ints:
                    raise ConfigError(
                        f"{prefix}integer={sorted(ints)} is not allowed: {name!r} is categorical "
                        f"({'listed in ' + prefix + 'categorical' if name in cat else 'text'})"
                    )
                lv = infer_levels(col)
                levels[name] = lv
                features.append(
                    Feature(
                        name, Kind.CATEGORICAL, 0.0, len(lv.values) - 1.0, lv.labels, decimals=0
                    )
                )
                continue
            v = numbers.to_numpy()
            if np.isinf(v).any():
                raise ConfigError(f"{what} column {name!r} has infinite values: expected numbers")
            whole = bool(np.all(v[~np.isnan(v)] == np.round(v[~np.isnan(v)])))
            is_int = name in ints if ints is not None else whole
            kind = Kind.INTEGER if is_int else Kind.CONTINUOUS
            features.append(Feature(name, kind, 0.0, 0.0))
        schema = _apply_rules(
            FeatureSchema(tuple(features)), actionability, ranges, features_to_vary, prefix
        )
        codec = cls(schema, levels, dtypes)
        return codec.observe(codec.encode(frame, missing="keep", what=what))

    def observe(self, X: np.ndarray) -> Codec:
        """A copy whose ranges and decimals are those of the encoded rows ``X`` (NaN ignored)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        feats = []
        for j, f in enumerate(self.schema.features):
            col = X[:, j][~np.isnan(X[:, j])]
            if len(col) == 0:
                feats.append(f)
                continue
            dec = decimals_of(col) if f.kind is Kind.CONTINUOUS else 0
            feats.append(replace(f, low=float(col.min()), high=float(col.max()), decimals=dec))
        return Codec(FeatureSchema(tuple(feats)), self.levels, self.dtypes)

    # ------------------------------------------------------------------ properties
    @property
    def identity(self) -> bool:
        """True when the encoded space *is* the user's space: every column numeric, and every
        categorical already the codes ``0..n-1`` (a model fitted on the user's rows can then be
        compiled directly)."""
        return all(
            lv.kind == "number"
            and lv.dtype is None
            and list(lv.values) == list(range(len(lv.values)))
            for lv in self.levels.values()
        )

    # ------------------------------------------------------------------ encoding
    def to_frame(self, X: Any, what: str = "query rows") -> pd.DataFrame:
        """``X`` as a DataFrame with exactly :attr:`names`, in order (reordered by name)."""
        if isinstance(X, pd.Series):
            X = X.to_frame().T
        elif isinstance(X, Mapping):
            X = pd.DataFrame([X])
        if isinstance(X, pd.DataFrame):
            cols = [str(c) for c in X.columns]
            if (
                not set(self.names) & set(cols)
                and isinstance(X.columns, pd.RangeIndex)
                and len(cols) == len(self.names)
            ):
                return pd.DataFrame(X.to_numpy(), columns=self.names, index=X.index)
            missing = [n for n in self.names if n not in cols]
            if missing:
                raise ConfigError(
                    f"{what} lack the columns {shown(missing)} (expected: {shown(self.names)})"
                )
            out = X.copy()
            out.columns = cols
            return out[self.names]
        arr = np.asarray(X, dtype=object)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != len(self.names):
            raise ConfigError(
                f"{what} have shape {arr.shape}: expected rows of "
                f"{len(self.names)} values ({shown(self.names)})"
            )
        return pd.DataFrame(arr, columns=self.names).infer_objects()

    def encode(self, X: Any, *, missing: str = "error", what: str = "query rows") -> np.ndarray:
        """Rows → encoded float array ``(n, d)``. ``missing="keep"`` leaves NaN where a value
        is missing (for the caller to impute); ``"error"`` refuses them."""
        frame = self.to_frame(X, what)
        out = np.empty((len(frame), len(self.names)))
        for j, name in enumerate(self.names):
            col = frame[name]
            if name in self.levels:
                out[:, j] = self._codes(name, col, what)
            else:
                num = pd.to_numeric(col, errors="coerce").astype(float)
                bad = num.isna() & col.notna()
                if bad.any():
                    raise ConfigError(
                        f"{what} column {name!r} has a non-numeric value "
                        f"{col[bad].iloc[0]!r}: expected a number"
                    )
                out[:, j] = num.to_numpy()
        if missing == "error" and np.isnan(out).any():
            cols = [self.names[j] for j in np.unique(np.nonzero(np.isnan(out))[1])]
            raise ConfigError(f"{what} have missing values in {shown(cols)}: impute them first")
        return out

    def _codes(self, name: str, col: pd.Series, what: str) -> np.ndarray:
        lv = self.levels[name]
        codes = np.full(len(col), np.nan)
        present = col.notna().to_numpy()
        if lv.kind == "number":
            keys = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
            known = np.asarray(lv.values, dtype=float)
            order = np.argsort(known, kind="stable")  # a pandas category may not be sorted
            pos = np.clip(np.searchsorted(known[order], keys), 0, len(known) - 1)
            idx = order[pos]
            hit = known[idx] == keys
        else:
            lookup = {lbl: i for i, lbl in enumerate(lv.labels)}
            if lv.kind == "bool":
                lookup.update(
                    {
                        "true": lookup.get("True", -1),
                        "false": lookup.get("False", -1),
                        "1": lookup.get("True", -1),
                        "0": lookup.get("False", -1),
                    }
                )
            keys_s = [str(_plain(v)) for v in col.to_numpy(dtype=object)]
            idx = np.array([lookup.get(k, lookup.get(k.lower(), -1)) for k in keys_s], dtype=int)
            hit = idx >= 0
        unknown = present & ~hit
        if unknown.any():
            raise ConfigError(
                f"{what} column {name!r} has a category not seen in training: "
                f"{col[unknown].iloc[0]!r} (known: {shown(lv.labels)})"
            )
        codes[present] = idx[present]
        return codes

    # ------------------------------------------------------------------ decoding
    def decode(self, X: np.ndarray, *, as_fitted: bool = False) -> pd.DataFrame:
        """Encoded rows → the user's values: category levels (ints as ints, booleans as
        booleans), integers as ``int64``, continuous as floats. ``as_fitted=True`` also casts
        each numeric column back to the dtype it had when fitted (for feeding the user's model).
        """
        X = np.atleast_2d(np.asarray(X, dtype=float))
        cols: dict[str, Any] = {}
        for j, f in enumerate(self.schema.features):
            col = X[:, j]
            if f.kind is Kind.CATEGORICAL:
                cols[f.name] = self._levels_of(f.name, col)
            elif f.kind is Kind.INTEGER:
                cols[f.name] = np.rint(col).astype(np.int64)
            else:
                cols[f.name] = col.copy()
        frame = pd.DataFrame(cols, columns=self.names)
        if as_fitted:
            for name, dt in self.dtypes.items():
                if name not in self.levels and pd.api.types.is_numeric_dtype(dt):
                    frame[name] = frame[name].astype(dt)
        return frame

    def _levels_of(self, name: str, codes: np.ndarray) -> Any:
        lv = self.levels[name]
        idx = np.clip(np.rint(codes), 0, len(lv.values) - 1).astype(int)
        if lv.dtype is not None:
            return pd.Categorical.from_codes(idx, dtype=lv.dtype)
        if lv.kind == "bool":
            return np.asarray(lv.values, dtype=bool)[idx]
        if lv.kind == "number":
            ints = all(isinstance(v, int) for v in lv.values)
            return np.asarray(lv.values, dtype=np.int64 if ints else float)[idx]
        arr = np.empty(len(lv.values), dtype=object)
        arr[:] = lv.values
        return arr[idx]


# ----------------------------------------------------------------------------- helpers


def _frame_of(X: Any, feature_names: Sequence[str] | None, what: str) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        frame = X
    else:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ConfigError(f"{what}: expected a 2-D array or DataFrame, got shape {arr.shape}")
        names = (
            list(feature_names)
            if feature_names is not None
            else [f"x{j}" for j in range(arr.shape[1])]
        )
        if len(names) != arr.shape[1]:
            raise ConfigError(f"feature_names has {len(names)} names for {arr.shape[1]} columns")
        frame = pd.DataFrame(arr, columns=names)
        if arr.dtype == object:
            frame = frame.infer_objects()
    names = [str(c) for c in frame.columns]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{what} has duplicate column names {shown(dup)}")
    if len(frame) == 0 or not names:
        raise ConfigError(f"{what} is empty ({len(frame)} rows, {len(names)} columns)")
    if names != list(frame.columns):
        frame = frame.set_axis(names, axis=1)
    return frame


def _pick(given: Sequence[str | int] | None, names: list[str], key: str) -> list[str]:
    """Column names from names or (API) integer positions; unknown ones → one line."""
    out: list[str] = []
    for g in given or ():
        if str(g) in names:
            out.append(str(g))
        elif isinstance(g, (int, np.integer)) and not isinstance(g, bool):
            if not 0 <= g < len(names):
                raise ConfigError(f"{key}: column index {g} is out of range 0..{len(names) - 1}")
            out.append(names[int(g)])
        else:
            raise ConfigError(f"{key} names an unknown column {g!r} (columns: {shown(names)})")
    return out


def _apply_rules(
    schema: FeatureSchema,
    actionability: Mapping[str, str] | None,
    ranges: Mapping[str, Sequence[float]] | None,
    features_to_vary: Sequence[str] | None,
    prefix: str,
) -> FeatureSchema:
    """Actionability rules, permitted ranges and ``features_to_vary`` onto the schema."""
    names = schema.names
    rules: dict[str, str] = {}
    for name, rule in dict(actionability or {}).items():
        if name not in names:
            raise ConfigError(
                f"{prefix}actionability names an unknown feature {name!r} "
                f"(features: {shown(names)})"
            )
        if rule not in RULE_NAMES:
            raise ConfigError(
                f"{prefix}actionability.{name}={rule!r} is not allowed: expected "
                f"one of {', '.join(RULE_NAMES)}"
            )
        rules[name] = rule
    if features_to_vary is not None:
        vary = [str(v) for v in features_to_vary]
        if not vary:
            raise ConfigError(
                f"{prefix}features_to_vary=[] is not allowed: expected null (all "
                "features) or at least one feature"
            )
        unknown = [v for v in vary if v not in names]
        if unknown:
            raise ConfigError(
                f"{prefix}features_to_vary names unknown features {shown(unknown)} "
                f"(features: {shown(names)})"
            )
        rules.update({n: Rule.NO_CHANGE.value for n in names if n not in vary})
    permitted = _ranges(schema, ranges, prefix)
    feats = tuple(
        replace(f, rule=Rule(rules.get(f.name, f.rule.value)), permitted=permitted.get(f.name))
        for f in schema.features
    )
    return FeatureSchema(feats)


def _ranges(
    schema: FeatureSchema, ranges: Mapping[str, Sequence[float]] | None, prefix: str
) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for name, bounds in dict(ranges or {}).items():
        key = f"{prefix}ranges.{name}"
        if name not in schema.names:
            raise ConfigError(
                f"{prefix}ranges names an unknown feature {name!r} "
                f"(features: {shown(schema.names)})"
            )
        if schema.features[schema.index(name)].kind is Kind.CATEGORICAL:
            raise ConfigError(
                f"{key} is not allowed: {name!r} is categorical; a range needs a "
                "numeric feature (use actionability or features_to_vary)"
            )
        try:
            lo, hi = (float(b) for b in bounds)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{key}={list(bounds) if isinstance(bounds, Iterable) else bounds!r}"
                " is not allowed: expected [low, high]"
            ) from None
        if not lo <= hi:
            raise ConfigError(f"{key}=[{lo:g}, {hi:g}] is not allowed: expected low <= high")
        out[name] = (lo, hi)
    return out


def stray_text_cells(frame: pd.DataFrame, skip: Iterable[str] = ()) -> dict[str, pd.Series]:
    """Text cells in columns that are otherwise numbers (more than half their present cells).

    Returns ``{column: the offending cells (index = row)}``; such a column would otherwise
    silently become a categorical of its string values.
    """
    out = {}
    skip = set(skip)
    for name in frame.columns:
        col = frame[name]
        if (
            name in skip
            or pd.api.types.is_numeric_dtype(col.dtype)
            or pd.api.types.is_bool_dtype(col.dtype)
        ):
            continue
        present = col.dropna()
        num = pd.to_numeric(present, errors="coerce")
        if len(present) and num.notna().sum() * 2 > len(present) and num.isna().any():
            out[str(name)] = present[num.isna()]
    return out


def id_like_columns(frame: pd.DataFrame, skip: Iterable[str] = ()) -> dict[str, str]:
    """Columns that identify rows rather than describe them: ``{column: why}``.

    A column is id-like when it has a distinct value in every row and either its name looks like
    an id (``id``, ``customer_id``, ``userId``, ``index``, ``Unnamed: 0``...), or it is a run of
    consecutive integers (a row counter), or it is text (a name per row is no category).
    """
    out = {}
    skip = set(skip)
    n = len(frame)
    for name in frame.columns:
        col = frame[name]
        if str(name) in skip or n < 3 or col.isna().any() or col.nunique() != n:
            continue
        numbers = _as_numbers(col)
        if _ID_NAME.match(str(name)) or _ID_CAMEL.match(str(name)):
            out[str(name)] = "a distinct value per row and an id-like name"
        elif numbers is not None:
            v = numbers.to_numpy()
            if np.all(v == np.round(v)) and v.max() - v.min() == n - 1:
                out[str(name)] = "consecutive integers, one per row"
        elif (
            not pd.api.types.is_bool_dtype(col.dtype)
            and pd.to_numeric(col, errors="coerce").notna().sum() * 2 <= n
        ):
            out[str(name)] = "a distinct text value per row"
    return out
