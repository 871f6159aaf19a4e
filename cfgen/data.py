"""Datasets: reading, encoding, splitting, and the feature schema."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from cfgen.errors import ConfigError
from cfgen.schema import Feature, FeatureSchema, Kind, Rule

DATA_DIR_ENV = "CFGEN_DATA_DIR"
MAX_DECIMALS = 6


def default_data_dir() -> Path:
    """``../shared/datasets`` next to the project checkout."""
    return Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def data_dir() -> Path:
    """The directory holding the dataset CSVs: ``$CFGEN_DATA_DIR`` or the default."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else default_data_dir()


@dataclass
class Dataset:
    """Encoded train/test arrays (categoricals as integer codes, classes as 0..C-1)."""

    name: str
    schema: FeatureSchema
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    target_name: str

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def decode(self, X: np.ndarray) -> pd.DataFrame:
        """Rows back in the data's own terms: category strings, integers as integers."""
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

    def round(self, X: np.ndarray) -> np.ndarray:
        """Round encoded rows to the data's own precision (what a user would write down)."""
        X = np.array(X, dtype=float, copy=True)
        for j, f in enumerate(self.schema.features):
            X[:, j] = np.round(X[:, j], 0 if f.kind is not Kind.CONTINUOUS else f.decimals)
        return X


def decimals_of(values: np.ndarray) -> int:
    """Fewest decimals (<= MAX_DECIMALS) that represent every value."""
    values = values[np.isfinite(values)]
    for d in range(MAX_DECIMALS + 1):
        if np.allclose(np.round(values, d), values, rtol=0, atol=1e-9):
            return d
    return MAX_DECIMALS


def _read_frame(cfg) -> pd.DataFrame:
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
    if not cfg.file:
        raise ConfigError(f"dataset.file is missing for dataset.name={cfg.name!r} (source=csv)")
    path = data_dir() / cfg.file
    if not path.is_file():
        raise ConfigError(
            f"dataset.file={cfg.file!r}: no such file {path} "
            f"(set {DATA_DIR_ENV} to the directory holding the dataset CSVs)"
        )
    sep = "\t" if cfg.sep in ("TAB", "tab", "\\t") else cfg.sep
    return pd.read_csv(path, sep=sep)


def load_dataset(cfg) -> Dataset:
    """Read, clean, encode and split the dataset described by ``cfg`` (a DatasetConfig)."""
    frame = _read_frame(cfg)
    if cfg.target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:12])) + ("…" if frame.shape[1] > 12 else "")
        raise ConfigError(
            f"dataset.target={cfg.target!r} is not a column of {cfg.name} (columns: {shown})"
        )
    frame.columns = [str(c) for c in frame.columns]
    for key in ("drop", "categorical", "date_columns", "zero_as_missing"):
        unknown = [c for c in cfg[key] if c not in frame.columns]
        if unknown:
            raise ConfigError(f"dataset.{key} names unknown columns {unknown} in {cfg.name}")
    frame = frame.drop(columns=list(cfg.drop))
    for col in cfg.date_columns:
        parsed = pd.to_datetime(frame[col], dayfirst=True, errors="coerce")
        frame[col] = (parsed - pd.Timestamp("1970-01-01")).dt.days.astype(float)
    for col in cfg.zero_as_missing:
        frame.loc[frame[col] == 0, col] = np.nan

    y_raw = frame.pop(cfg.target)
    classes = np.unique(y_raw.dropna())
    if len(classes) < 2:
        raise ConfigError(
            f"dataset.target={cfg.target!r} has one class ({classes.tolist()}) in {cfg.name}: "
            "counterfactuals need at least two"
        )
    categorical = list(cfg.categorical) + [
        c for c in frame.columns
        if c not in cfg.categorical and not pd.api.types.is_numeric_dtype(frame[c])
    ]
    y = np.searchsorted(classes, y_raw.to_numpy())
    X_frame = frame.copy()
    cat_levels: dict[str, list[str]] = {}
    for col in categorical:
        values = X_frame[col]
        levels = sorted(values.dropna().astype(str).unique().tolist())
        cat_levels[col] = levels
        codes = pd.Categorical(values.astype(str).where(values.notna()), categories=levels).codes
        X_frame[col] = np.where(codes < 0, np.nan, codes).astype(float)

    X_all = X_frame.to_numpy(dtype=float)
    idx = np.arange(len(X_all))
    try:
        tr, te = train_test_split(
            idx, test_size=cfg.test_size, random_state=cfg.split_seed, stratify=y
        )
    except ValueError as exc:
        raise ConfigError(
            f"dataset.test_size={cfg.test_size}: cannot split {cfg.name}: {exc}"
        ) from None
    X_train, X_test, y_train, y_test = X_all[tr], X_all[te], y[tr], y[te]
    X_train, y_train, X_test, y_test = _handle_missing(cfg, X_train, y_train, X_test, y_test)

    integer_cols = cfg.integer
    features = []
    for j, name in enumerate(X_frame.columns):
        col = X_train[:, j]
        if name in cat_levels:
            kind = Kind.CATEGORICAL
        elif integer_cols is not None:
            kind = Kind.INTEGER if name in integer_cols else Kind.CONTINUOUS
        else:
            kind = Kind.INTEGER if np.all(col == np.round(col)) else Kind.CONTINUOUS
        features.append(
            Feature(
                name=name,
                kind=kind,
                low=float(np.min(col)),
                high=float(np.max(col)),
                categories=tuple(cat_levels.get(name, ())),
                rule=Rule(cfg.actionability.get(name, "none")),
                decimals=0 if kind is not Kind.CONTINUOUS else decimals_of(col),
            )
        )
    unknown = set(cfg.actionability) - set(X_frame.columns)
    if unknown:
        raise ConfigError(f"dataset.actionability names unknown features {sorted(unknown)}")
    return Dataset(
        name=cfg.name,
        schema=FeatureSchema(tuple(features)),
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        class_names=[str(c) for c in classes],
        target_name=cfg.target,
    )


def _handle_missing(cfg, X_train, y_train, X_test, y_test):
    """Drop rows with missing values, or impute with the training median."""
    if cfg.missing == "median":
        med = np.nanmedian(X_train, axis=0)
        integral = np.all(np.isnan(X_train) | (X_train == np.round(X_train)), axis=0)
        med = np.where(integral, np.floor(med), med)
        for X in (X_train, X_test):
            rows, cols = np.nonzero(np.isnan(X))
            X[rows, cols] = med[cols]
        return X_train, y_train, X_test, y_test
    keep_tr = ~np.isnan(X_train).any(axis=1)
    keep_te = ~np.isnan(X_test).any(axis=1)
    return X_train[keep_tr], y_train[keep_tr], X_test[keep_te], y_test[keep_te]
