"""Datasets: finding and reading the file, cleaning, encoding (cfgen.codec) and splitting.

Every bad input ends in one :class:`~cfgen.errors.ConfigError` line naming the ``dataset.*`` key
and what is allowed (the CLI prints it and exits 2). Each kept row carries its *source row id*
(its 0-based position among the file's data rows) through cleaning and splitting.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from sklearn.model_selection import train_test_split

from cfgen.codec import (
    MAX_DECIMALS,
    Codec,
    decimals_of,
    id_like_columns,
    infer_levels,
    shown,
    stray_text_cells,
)
from cfgen.datasets import (
    DATA_DIR_ENV,
    HERE,
    SOURCES,
    missing_file_message,
    register_resolvers,
    shipped_file,
)
from cfgen.errors import ConfigError
from cfgen.schema import FeatureSchema, Kind

__all__ = [
    "DATA_DIR_ENV",
    "MAX_DECIMALS",
    "Dataset",
    "data_dir",
    "decimals_of",
    "load_dataset",
    "load_queries",
    "queries_frame",
    "resolve_target",
    "shipped_dir",
]

log = logging.getLogger(__name__)
register_resolvers()


def default_data_dir() -> Path:
    """``../shared/datasets`` next to the project checkout (the development copy of every file,
    shipped or not); tests/conftest.py points ``$CFGEN_DATA_DIR`` here when it is unset."""
    return Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def data_dir() -> Path:
    """``$CFGEN_DATA_DIR``, or :func:`default_data_dir`. Runs without the variable read the
    shipped copies (:func:`resolve_file`), not this directory."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else default_data_dir()


def shipped_dir() -> Path:
    """Where the packaged ``<name>.csv.gz`` copies live."""
    return HERE


@dataclass
class Dataset:
    """Encoded train/test arrays (categoricals as integer codes, classes as 0..C-1).

    ``row_id_train`` / ``row_id_test`` give each row's source row id; ``codec`` converts between
    the user's values and the encoded space (None for a dataset built from a ready schema).
    """

    name: str
    schema: FeatureSchema
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    target_name: str
    row_id_train: np.ndarray | None = None
    row_id_test: np.ndarray | None = None
    codec: Codec | None = field(default=None, repr=False)
    source_rows: int | None = None  # data rows in the source file

    def __post_init__(self) -> None:
        if self.row_id_train is None:
            self.row_id_train = np.arange(len(self.X_train), dtype=np.int64)
        if self.row_id_test is None:
            self.row_id_test = np.arange(
                len(self.X_train), len(self.X_train) + len(self.X_test), dtype=np.int64
            )
        if self.source_rows is None:
            self.source_rows = len(self.X_train) + len(self.X_test)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def decode(self, X: np.ndarray) -> pd.DataFrame:
        """Rows back in the data's own terms: category values, integers as integers."""
        if self.codec is not None:
            frame = self.codec.decode(X)
            for f in self.schema.features:
                if f.kind is Kind.CONTINUOUS:
                    frame[f.name] = np.round(frame[f.name].to_numpy(dtype=float), f.decimals)
            return frame
        X = np.atleast_2d(X)
        cols: dict[str, object] = {}
        for j, f in enumerate(self.schema.features):
            col = X[:, j]
            if f.kind is Kind.CATEGORICAL:
                cols[f.name] = np.asarray(f.categories, dtype=object)[col.astype(int)]
            elif f.kind is Kind.INTEGER:
                cols[f.name] = np.round(col).astype(np.int64)
            else:
                cols[f.name] = np.round(col, f.decimals)
        return pd.DataFrame(cols, columns=self.schema.names)

    def encode(self, rows: Any) -> np.ndarray:
        """The user's rows (DataFrame, Series, array) → encoded array, reordered by name."""
        if self.codec is None:
            return np.atleast_2d(np.asarray(rows, dtype=float))
        return self.codec.encode(rows)

    def round(self, X: np.ndarray) -> np.ndarray:
        """Round encoded rows to the data's own precision (what a user would write down)."""
        X = np.array(X, dtype=float, copy=True)
        for j, f in enumerate(self.schema.features):
            X[:, j] = np.round(X[:, j], 0 if f.kind is not Kind.CONTINUOUS else f.decimals)
        return X


# ----------------------------------------------------------------------------- reading


def _opt(cfg: Any, key: str, default: Any) -> Any:
    """A dataset key that older configs may lack (see cfgen.config.DatasetConfig)."""
    value = cfg.get(key, default) if hasattr(cfg, "get") else getattr(cfg, key, default)
    return default if value is None and default is not None else value


def resolve_file(cfg: Any) -> Path:
    """The file ``dataset.file`` means.

    A value with a directory part (``data/x.csv``, ``/abs/x.csv``, ``./x.csv``) is a path. A bare
    name is looked up in ``$CFGEN_DATA_DIR`` when that is set (``<name>`` or ``<name>.gz``),
    else among the shipped copies; failing that, in the current directory.
    """
    file = None if OmegaConf.is_config(cfg) and OmegaConf.is_missing(cfg, "file") else cfg.file
    name = cfg.name
    if not file:
        raise ConfigError(
            f"dataset.file is missing for dataset.name={name!r} (source=csv): "
            "expected dataset.file=path/to/data.csv"
        )
    given = Path(str(file)).expanduser()
    if given.is_absolute() or len(given.parts) > 1:
        if not given.is_file():
            raise ConfigError(f"dataset.file={str(file)!r}: no such file {given.resolve()}")
        return given
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        base = Path(env).expanduser()
        for candidate in (base / given, base / f"{given}.gz"):
            if candidate.is_file():
                return candidate
    else:
        packaged = shipped_file(str(given))
        if packaged is not None:
            return packaged
    if given.is_file():
        return given
    if env:
        known = SOURCES.get(str(name))
        extra = f"; {name} comes from {known.url}" if known and not known.shipped else ""
        raise ConfigError(
            f"dataset.file={str(file)!r}: no such file {Path(env) / given} (set "
            f"{DATA_DIR_ENV} to the directory holding the dataset CSVs, or give "
            f"dataset.file a path){extra}"
        )
    if str(name) in SOURCES:
        raise ConfigError(missing_file_message(str(name), str(file)))
    raise ConfigError(
        f"dataset.file={str(file)!r}: no such file {given.resolve()} (give a path, "
        f"or set {DATA_DIR_ENV} to the directory holding it)"
    )


def _separator(sep: str) -> str:
    return "\t" if sep in ("TAB", "tab", "\\t", "\t") else sep


def _read_csv(cfg: Any, path: Path) -> pd.DataFrame:
    """pandas.read_csv with every failure as one line naming the file and dataset.sep."""
    key = f"dataset.file={str(cfg.file)!r}"
    opener: Callable[..., Any] = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(8192)
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc}") from None
    if not head.strip():
        raise ConfigError(f"{key}: the file {path} is empty: expected a header line and rows")
    if b"\x00" in head:
        raise ConfigError(f"{key}: {path} is not a text CSV file (it holds binary data)")
    sep = _separator(str(cfg.sep))
    encoding = str(_opt(cfg, "encoding", "utf-8"))
    try:
        frame = pd.read_csv(
            path, sep=sep, engine="python" if len(sep) > 1 else "c", encoding=encoding
        )
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{key}: {path} is not {encoding} text ({exc.reason}): set "
            "dataset.encoding to the file's encoding (e.g. latin-1)"
        ) from None
    except pd.errors.EmptyDataError:
        raise ConfigError(
            f"{key}: the file {path} is empty: expected a header line and rows"
        ) from None
    except pd.errors.ParserError as exc:
        raise ConfigError(f"{key}: {_parser_message(exc, cfg.sep)}") from None
    if len(frame) == 0:
        raise ConfigError(f"{key}: {path} has a header but no data rows")
    return frame


def _parser_message(exc: Exception, sep: str) -> str:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
    if found:
        want, line, got = found.groups()
        return (
            f"line {line} has {got} fields but the header has {want} (dataset.sep={sep!r}): "
            "fix that row, or set dataset.sep to the file's separator"
        )
    return f"cannot parse it as CSV with dataset.sep={sep!r}: {str(exc).splitlines()[0]}"


def _read_frame(cfg: Any) -> pd.DataFrame:
    if cfg.source == "sklearn":
        from sklearn import datasets

        loader = getattr(datasets, f"load_{cfg.name}", None)
        if loader is None:
            raise ConfigError(
                f"dataset.name={cfg.name!r} is not a scikit-learn dataset (dataset.source=sklearn)"
            )
        bunch = loader(as_frame=True)
        frame = bunch.frame
        names = getattr(bunch, "target_names", None)
        if names is not None and "target" in frame.columns:
            frame["target"] = np.asarray(names, dtype=object)[frame["target"].to_numpy()]
        return frame
    return _read_csv(cfg, resolve_file(cfg))


# ----------------------------------------------------------------------------- checks


def _names(values: Any) -> list[str]:
    return [str(v) for v in (values or [])]


def _check_target_column(cfg: Any, frame: pd.DataFrame) -> None:
    cols = list(frame.columns)
    if OmegaConf.is_config(cfg) and OmegaConf.is_missing(cfg, "target"):
        raise ConfigError(
            f"dataset.target is missing: name the label column, e.g. "
            f"dataset.target={cols[-1]} (columns: {shown(cols, 12)})"
        )
    if str(cfg.target) not in cols:
        hint = (
            f" (the file has one column: is dataset.sep={cfg.sep!r} its separator?)"
            if len(cols) == 1
            else ""
        )
        raise ConfigError(
            f"dataset.target={cfg.target!r} is not a column of {cfg.name} "
            f"(columns: {shown(cols, 12)}){hint}"
        )


def _check_columns(cfg: Any, frame: pd.DataFrame) -> None:
    """Every list key names columns of the file; none names the target or a dropped column."""
    cols = list(frame.columns)
    target = str(cfg.target)
    lists = {
        key: _names(cfg[key]) for key in ("drop", "categorical", "date_columns", "zero_as_missing")
    }
    lists["integer"] = _names(cfg.integer)
    lists["features_to_vary"] = _names(_opt(cfg, "features_to_vary", None))
    lists["actionability"] = _names(cfg.actionability)
    lists["ranges"] = _names(_opt(cfg, "ranges", {}))
    for key, names in lists.items():
        unknown = [c for c in names if c not in cols]
        if unknown:
            raise ConfigError(
                f"dataset.{key} names unknown columns {unknown} in {cfg.name} "
                f"(columns: {shown(cols, 12)})"
            )
        if target in names and key != "drop":
            raise ConfigError(
                f"dataset.{key}={names} is not allowed: {target!r} is the target "
                "(dataset.target), not a feature; the target is always the class "
                "label"
            )
    if target in lists["drop"]:
        raise ConfigError(
            f"dataset.drop={lists['drop']} is not allowed: it drops the target "
            f"dataset.target={target!r}"
        )
    for key, names in lists.items():
        clash = [c for c in names if c in lists["drop"]] if key != "drop" else []
        if clash:
            rest = [c for c in names if c not in lists["drop"]]
            raise ConfigError(
                f"dataset.drop={lists['drop']} is not allowed: {shown(clash)} "
                f"{'is' if len(clash) == 1 else 'are'} also in dataset.{key}; "
                f"remove {'it' if len(clash) == 1 else 'them'} there too "
                f"(dataset.{key}={_override_value(key, rest)})"
            )


def _override_value(key: str, names: list[str]) -> str:
    if key in ("actionability", "ranges"):
        return "{" + ",".join(f"{n}:..." for n in names) + "}"
    return "[" + ",".join(names) + "]"


def _coerce_numeric(cfg: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns with stray text cells: fail naming the cell, or set them missing."""
    stray = stray_text_cells(frame, skip=[*_names(cfg.categorical), str(cfg.target)])
    if not stray:
        return frame
    if not _opt(cfg, "coerce_numeric", False):
        name, cells = next(iter(stray.items()))
        more = f" and {len(cells) - 1} more" if len(cells) > 1 else ""
        raise ConfigError(
            f"dataset: column {name!r} of {cfg.name} is numeric but row {cells.index[0]} holds "
            f"{cells.iloc[0]!r}{more}: fix the file, set dataset.coerce_numeric=true to treat "
            f"such cells as missing, or list {name!r} in dataset.categorical"
        )
    frame = frame.copy()
    for name, cells in stray.items():
        frame[name] = pd.to_numeric(frame[name], errors="coerce")
        log.warning(
            "dataset.coerce_numeric: %d non-numeric cell(s) of column %r set to missing "
            "(first: row %s = %r)",
            len(cells),
            name,
            cells.index[0],
            cells.iloc[0],
        )
    return frame


def _clean(cfg: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """drop, date columns, zeros as missing, stray text, ids: the frame the codec will see."""
    frame = frame.drop(columns=_names(cfg.drop))
    for col in _names(cfg.date_columns):
        parsed = pd.to_datetime(frame[col], dayfirst=True, errors="coerce")
        frame[col] = (parsed - pd.Timestamp("1970-01-01")).dt.days.astype(float)
    for col in _names(cfg.zero_as_missing):
        frame[col] = frame[col].mask(frame[col] == 0)
    frame = _coerce_numeric(cfg, frame)
    if _opt(cfg, "drop_id_columns", False):
        keep = {
            str(cfg.target),
            *_names(cfg.categorical),
            *_names(cfg.integer),
            *_names(cfg.actionability),
            *_names(_opt(cfg, "ranges", {})),
            *_names(_opt(cfg, "features_to_vary", None)),
            *_names(cfg.date_columns),
        }
        ids = id_like_columns(frame, skip=keep)
        for name, why in ids.items():
            log.info(
                "dataset %s: dropped id-like column %r (%s); keep it with "
                "dataset.drop_id_columns=false",
                cfg.name,
                name,
                why,
            )
        frame = frame.drop(columns=list(ids))
    return frame


def _target(cfg: Any, y_raw: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Class indices 0..C-1 (the codec's ordering rule) and the class names."""
    missing = y_raw.isna()
    if missing.any():
        rows = shown(y_raw.index[missing].tolist(), 5)
        raise ConfigError(
            f"dataset.target={cfg.target!r} has {int(missing.sum())} missing "
            f"labels in {cfg.name} (rows {rows}): every row needs a class; remove "
            "those rows from the file"
        )
    levels = infer_levels(y_raw)
    if len(levels.values) < 2:
        raise ConfigError(
            f"dataset.target={cfg.target!r} has one class ({list(levels.labels)}) in {cfg.name}: "
            "counterfactuals need at least two"
        )
    codec = Codec(FeatureSchema(()), {"y": levels}, {})
    y = codec._codes("y", y_raw.reset_index(drop=True), f"dataset.target={cfg.target!r}")
    return y.astype(int), list(levels.labels)


# ----------------------------------------------------------------------------- loading


def load_dataset(cfg: Any) -> Dataset:
    """Read, clean, encode and split the dataset described by ``cfg`` (a DatasetConfig)."""
    frame = _read_frame(cfg)
    frame.columns = [str(c) for c in frame.columns]
    frame = frame.reset_index(drop=True)
    _check_target_column(cfg, frame)
    y, class_names = _target(cfg, frame[str(cfg.target)])
    _check_columns(cfg, frame)
    frame = _clean(cfg, frame).drop(columns=[str(cfg.target)])
    if frame.shape[1] == 0:
        raise ConfigError(
            f"dataset {cfg.name} has no feature columns left besides the target "
            f"dataset.target={cfg.target!r} (check dataset.drop)"
        )
    codec = Codec.fit(
        frame,
        categorical=_names(cfg.categorical),
        integer=None if cfg.integer is None else _names(cfg.integer),
        actionability=dict(cfg.actionability),
        ranges={k: list(v) for k, v in dict(_opt(cfg, "ranges", {})).items()},
        features_to_vary=_opt(cfg, "features_to_vary", None),
        prefix="dataset.",
        what=str(cfg.name),
    )
    X_all = codec.encode(frame, missing="keep", what=str(cfg.name))
    idx = np.arange(len(X_all))
    try:
        tr, te = train_test_split(
            idx, test_size=cfg.test_size, random_state=cfg.split_seed, stratify=y
        )
    except ValueError as exc:
        raise ConfigError(
            f"dataset.test_size={cfg.test_size}: cannot split {cfg.name}: {exc}"
        ) from None
    parts = _handle_missing(cfg, codec, (X_all[tr], y[tr], tr), (X_all[te], y[te], te))
    (X_train, y_train, id_train), (X_test, y_test, id_test) = parts
    codec = codec.observe(X_train)
    return Dataset(
        name=str(cfg.name),
        schema=codec.schema,
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        class_names=class_names,
        target_name=str(cfg.target),
        row_id_train=id_train.astype(np.int64),
        row_id_test=id_test.astype(np.int64),
        codec=codec,
        source_rows=len(X_all),
    )


Split = tuple[np.ndarray, np.ndarray, np.ndarray]


def _handle_missing(cfg: Any, codec: Codec, train: Split, test: Split) -> tuple[Split, Split]:
    """Drop rows with missing values, or impute: training median (floored for whole-number
    columns), most frequent training code for categoricals."""
    X_train, X_test = train[0], test[0]
    nan_cols = [
        codec.names[j]
        for j in np.nonzero(np.isnan(X_train).any(axis=0) | np.isnan(X_test).any(axis=0))[0]
    ]
    if not nan_cols:
        return train, test
    if cfg.missing == "median":
        empty = [codec.names[j] for j in np.nonzero(np.isnan(X_train).all(axis=0))[0]]
        if empty:
            raise ConfigError(
                f"dataset.missing=median: column {shown(empty)} of {cfg.name} has "
                "no values in the training split: drop it with dataset.drop"
            )
        fill = np.nanmedian(X_train, axis=0)
        integral = np.all(np.isnan(X_train) | (X_train == np.round(X_train)), axis=0)
        fill = np.where(integral, np.floor(fill), fill)
        for j, f in enumerate(codec.schema.features):
            if f.kind is Kind.CATEGORICAL:
                col = X_train[:, j][~np.isnan(X_train[:, j])].astype(int)
                fill[j] = float(np.bincount(col).argmax())
        for X in (X_train, X_test):
            rows, cols = np.nonzero(np.isnan(X))
            X[rows, cols] = fill[cols]
        return train, test
    out = []
    for X, y, ids in (train, test):
        keep = ~np.isnan(X).any(axis=1)
        out.append((X[keep], y[keep], ids[keep]))
    kept_tr, kept_te = out
    dropped = len(X_train) + len(X_test) - len(kept_tr[0]) - len(kept_te[0])
    log.info(
        "dataset.missing=drop: %d rows with missing values dropped (columns %s)",
        dropped,
        shown(nan_cols),
    )
    if len(np.unique(kept_tr[1])) < 2 or len(kept_te[0]) == 0:
        raise ConfigError(
            f"dataset.missing=drop leaves {len(kept_tr[0])} training and {len(kept_te[0])} test "
            f"rows of {cfg.name} (missing values in {shown(nan_cols)}): use dataset.missing=median"
            " or drop those columns with dataset.drop"
        )
    return kept_tr, kept_te


# ----------------------------------------------------------------------------- queries


def resolve_target(
    value: Any, class_names: Sequence[str], key: str = "experiment_params.target_class"
) -> int | None:
    """``target_class`` as a class index: None, an index ``0..C-1`` or a class name."""
    names = [str(c) for c in class_names]
    if value is None:
        return None
    if (
        isinstance(value, (int, np.integer))
        and not isinstance(value, bool)
        and 0 <= int(value) < len(names)
    ):
        return int(value)
    if isinstance(value, str) and value in names:
        return names.index(value)
    raise ConfigError(
        f"{key}={value!r} is not allowed: expected null, a class index "
        f"0..{len(names) - 1} or a class name ({shown(names)})"
    )


def load_queries(
    spec: Any, data: Dataset, *, key: str = "experiment_params.queries", sep: str = ","
) -> tuple[np.ndarray, np.ndarray]:
    """The rows to explain: ``spec`` is a CSV path (rows in the data's own values; columns
    matched by name, extra ones such as the target ignored) or a list of source row ids.

    Returns the encoded rows ``(n, d)`` and their source row ids (``-1`` for rows from a CSV).
    """
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"{key}={str(spec)!r}: no such file {path.resolve()}: expected a "
                "CSV of rows or a list of source row ids"
            )
        try:
            frame = pd.read_csv(path, sep=_separator(sep))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{key}={str(spec)!r}: cannot read it as CSV: {str(exc).splitlines()[0]}"
            ) from None
        if len(frame) == 0:
            raise ConfigError(f"{key}={str(spec)!r} has no rows")
        frame.columns = [str(c) for c in frame.columns]
        if data.codec is None:
            raise ConfigError(
                f"{key}={str(spec)!r}: rows from a file need a dataset read by "
                "cfgen.data.load_dataset (this one has no codec)"
            )
        X = data.codec.encode(frame, what=f"{key}={str(spec)!r} rows")
        return X, np.full(len(X), -1, dtype=np.int64)
    return _rows_by_id(list(spec), data, key)


def _rows_by_id(ids: list[Any], data: Dataset, key: str) -> tuple[np.ndarray, np.ndarray]:
    if not ids:
        raise ConfigError(f"{key}=[] is not allowed: expected a CSV path or at least one row id")
    bad = [i for i in ids if not isinstance(i, (int, np.integer)) or isinstance(i, bool)]
    if bad:
        raise ConfigError(
            f"{key}={ids} is not allowed: {bad[0]!r} is not a row id (expected "
            "0-based data-row positions of the source file)"
        )
    dup = sorted({int(i) for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"{key}={ids} is not allowed: {dup} listed more than once")
    n = int(data.source_rows or 0)
    where = {int(r): ("test", j) for j, r in enumerate(np.asarray(data.row_id_test))}
    where.update({int(r): ("train", j) for j, r in enumerate(np.asarray(data.row_id_train))})
    rows = []
    for i in ids:
        if not 0 <= int(i) < n:
            raise ConfigError(
                f"{key}: row id {i} is out of range: {data.name} has {n} data rows (0..{n - 1})"
            )
        if int(i) not in where:
            raise ConfigError(
                f"{key}: row {i} of {data.name} was dropped while cleaning (it has "
                "missing values and dataset.missing=drop): pick another row or "
                "set dataset.missing=median"
            )
        part, j = where[int(i)]
        rows.append((data.X_test if part == "test" else data.X_train)[j])
    return np.vstack(rows).astype(float), np.asarray(ids, dtype=np.int64)


def queries_frame(
    data: Dataset,
    X: np.ndarray,
    row_ids: Sequence[int],
    predict_proba: Callable[[np.ndarray], np.ndarray],
) -> pd.DataFrame:
    """``queries.csv``: query id, source row id (empty for rows given as a CSV), the row in
    the data's own values, the model's predicted class and its probability for every class."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    proba = np.asarray(predict_proba(X), dtype=float)
    ids = pd.array([None if int(r) < 0 else int(r) for r in row_ids], dtype="Int64")
    meta = pd.DataFrame({"query": np.arange(len(X)), "row_id": ids})
    frame = data.decode(X).reset_index(drop=True)
    frame["predicted"] = [data.class_names[int(c)] for c in np.argmax(proba, axis=1)]
    frame["probability"] = proba.max(axis=1) if len(proba) else np.zeros(0)
    for c, name in enumerate(data.class_names):
        frame[f"proba_{name}"] = proba[:, c]
    return pd.concat([meta, frame], axis=1)
