"""Counterfactuals as diffs against their query, in the user's own values.

Everything here is built on one function, ``decode(X) -> DataFrame`` (the problem's codec: category
labels, integers as integers), so the Hydra run, the report and the library API show the same view.

``changes.csv`` layout (wide, one row per counterfactual)
--------------------------------------------------------
``query, method, combination, replication, target, cf, [role,] predicted, probability,
distance_mh, nbr_changes, changed, <feature 1>, …, <feature d>``: one cell per feature holding
``from → to`` (decoded) where the counterfactual changes it and nothing where it does not.

Why wide: the rows line up one-to-one (same keys, same order) with ``counterfactuals.csv``; the
header is the same for every run of a dataset (all features, schema order); a person reads a row
as "what this counterfactual changes" in a spreadsheet; ``changed`` lists the changed features
for filtering. The typed values themselves are in ``counterfactuals.csv`` (and the query's in
``queries.csv``); a long table (one row per changed feature) would repeat the per-counterfactual
columns on every line and lose counterfactuals that change nothing.

A feature counts as changed when ``|cf_j - x_j| > atol`` in the encoded space, the rule the
metrics use (``docs/metrics.md``), so ``nbr_changes`` averages to ``avg_nbr_changes_per_cf``
and ``distance_mh`` averages to the metric of the same name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import pandas as pd

from cfgen.schema import FeatureSchema

__all__ = [
    "ARROW",
    "Diff",
    "changed_mask",
    "diff_table",
    "fmt_value",
    "mh_distance",
    "query_frame",
    "read_changes",
    "run_changes",
]

ARROW = " → "
UNCHANGED = "-"
#: columns of changes.csv before the per-feature cells
KEYS = ("query", "method", "combination", "replication", "target", "cf")
CF_COLUMNS = ("role", "predicted", "probability", "distance_mh", "nbr_changes", "changed")
ROW_LABELS = {
    "predicted": "predicted",
    "probability": "probability",
    "distance_mh": "distance_mh",
    "nbr_changes": "nbr_changes",
}

Decode = Callable[[np.ndarray], pd.DataFrame]
Distance = Callable[[np.ndarray, np.ndarray], np.ndarray]


class ProblemLike(Protocol):
    """What :func:`run_changes` needs of a problem (``cfgen.problem.Problem`` or ``Dataset``)."""

    X_test: np.ndarray
    class_names: list[str]
    schema: FeatureSchema

    def decode(self, X: np.ndarray) -> pd.DataFrame: ...


def fmt_value(v: Any) -> str:
    """A decoded value as a person writes it: labels as they are, integers without ``.0``."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if f.is_integer() and abs(f) < 1e15:
            return str(int(f))
        if abs(f) >= 1e7 or abs(f) < 1e-4:
            return f"{f:.6g}"
        return np.format_float_positional(f, precision=6, unique=True, trim="-")
    return str(v)


def changed_mask(x: np.ndarray, cfs: np.ndarray, atol: float = 1e-9) -> np.ndarray:
    """(m, d) bool: feature j of counterfactual i differs from the query (encoded space)."""
    x = np.asarray(x, dtype=float).ravel()
    cfs = np.asarray(cfs, dtype=float).reshape(-1, x.size)
    return np.abs(cfs - x[None, :]) > atol


def mh_distance(schema: FeatureSchema, X_train: np.ndarray, atol: float = 1e-9) -> Distance:
    """Per-counterfactual ``MH(x, c) = r_N · Σ_N |Δ|/MAD + r_Q · h/|Q|`` (``docs/metrics.md``).

    The mean over a query's counterfactuals is ``distance_mh`` of ``metrics.csv`` (cfgen mode):
    continuous and integer features by MAD, categorical ones by the share that changed.
    """
    from cfgen.metrics import guarded_mad

    cat = schema.categorical
    cont = ~cat
    d = len(schema)
    mad = guarded_mad(np.asarray(X_train, dtype=float)[:, cont])
    r_n, r_q, n_q = cont.sum() / d, cat.sum() / d, int(cat.sum())

    def of(D: np.ndarray) -> np.ndarray:
        part = (np.abs(D[:, cont]) / mad).sum(axis=1)
        h = (np.abs(D[:, cat]) > atol).sum(axis=1) / n_q if n_q else np.zeros(len(D))
        return r_n * part + r_q * h

    def distance(x: np.ndarray, cfs: np.ndarray) -> np.ndarray:
        return of(np.asarray(cfs, dtype=float).reshape(-1, d) - np.asarray(x, dtype=float).ravel())

    def rows(X: np.ndarray, cfs: np.ndarray) -> np.ndarray:
        """Row ``i`` of ``cfs`` against row ``i`` of ``X``: many queries in one call."""
        return of(np.asarray(cfs, dtype=float).reshape(-1, d) - np.asarray(X, dtype=float))

    distance.rows = rows  # type: ignore[attr-defined]
    return distance


@dataclass
class Diff:
    """One query's counterfactuals against the query, decoded.

    ``cfs`` and ``query`` hold the decoded values (``decode``'s output); ``changed`` is the
    encoded-space change mask; the optional per-counterfactual columns are what the model says
    (``predicted`` class name and its ``probability``), ``distance`` (``distance_mh``) and
    ``roles``.
    """

    query: pd.Series
    cfs: pd.DataFrame
    changed: np.ndarray
    predicted: list[str] | None = None
    probability: np.ndarray | None = None
    distance: np.ndarray | None = None
    roles: list[str] | None = None
    query_predicted: str | None = None
    query_probability: float | None = None

    @classmethod
    def build(
        cls,
        x: np.ndarray,
        cfs: np.ndarray,
        decode: Decode,
        *,
        predict_proba: Callable[[np.ndarray], np.ndarray] | None = None,
        class_names: Sequence[str] | None = None,
        distance: Distance | None = None,
        roles: Sequence[str] | None = None,
        atol: float = 1e-9,
    ) -> Diff:
        """From encoded arrays: ``x`` (d,), ``cfs`` (m, d)."""
        x = np.asarray(x, dtype=float).ravel()
        cfs = np.asarray(cfs, dtype=float).reshape(-1, x.size)
        both = decode(np.vstack([x[None, :], cfs])).reset_index(drop=True)
        predicted = probability = None
        q_pred = q_prob = None
        if predict_proba is not None:
            P = np.asarray(predict_proba(np.vstack([x[None, :], cfs])), dtype=float)
            idx = P.argmax(axis=1)
            names = (
                [str(c) for c in class_names]
                if class_names is not None
                else [str(i) for i in range(P.shape[1])]
            )
            q_pred, q_prob = names[int(idx[0])], float(P[0, idx[0]])
            predicted = [names[int(i)] for i in idx[1:]]
            probability = P[np.arange(1, len(P)), idx[1:]]
        return cls(
            query=both.iloc[0],
            cfs=both.iloc[1:].reset_index(drop=True),
            changed=changed_mask(x, cfs, atol),
            predicted=predicted,
            probability=probability,
            distance=None if distance is None or not len(cfs) else np.asarray(distance(x, cfs)),
            roles=list(roles) if roles else None,
            query_predicted=q_pred,
            query_probability=q_prob,
        )

    @property
    def features(self) -> list[str]:
        return [str(c) for c in self.cfs.columns]

    @property
    def n_changes(self) -> np.ndarray:
        return self.changed.sum(axis=1)

    def changed_features(self) -> list[str]:
        """Features some counterfactual changes, in schema order."""
        mask = np.asarray(self.changed, dtype=bool).reshape(-1, len(self.features))
        return [f for j, f in enumerate(self.features) if mask[:, j].any()]

    def wide(self) -> pd.DataFrame:
        """One row per counterfactual: ``cf``, model columns, then ``from → to`` per feature."""
        m = len(self.cfs)
        out: dict[str, Any] = {"cf": np.arange(m)}
        if self.roles:
            out["role"] = self.roles[:m]
        if self.predicted is not None:
            out["predicted"] = self.predicted
            out["probability"] = self.probability
        if self.distance is not None:
            out["distance_mh"] = self.distance
        out["nbr_changes"] = self.n_changes
        names = self.features
        changed = np.asarray(self.changed, dtype=bool).reshape(m, len(names))
        # the same cell builders as run_changes (changes.csv), for one query
        out["changed"] = _changed_names(changed, names)
        query, one = [self.query.iloc[j] for j in range(len(names))], np.zeros(m, dtype=np.int64)
        for j, name in enumerate(names):
            out[name] = _cells(self.cfs.iloc[:, j], [query[j]], one, changed[:, j])
        return pd.DataFrame(out)

    def to_frame(self, only_changes: bool = True, mark: str = UNCHANGED) -> pd.DataFrame:
        """The counterfactuals' decoded values; with ``only_changes`` unchanged cells are
        ``mark``. Model columns (``predicted``, ``probability``) are appended when known."""
        frame = self.cfs.copy()
        if only_changes:
            frame = frame.astype(object)
            for j, name in enumerate(self.features):
                frame[name] = [v if self.changed[i, j] else mark for i, v in enumerate(frame[name])]
        if self.predicted is not None:
            frame["predicted"] = self.predicted
            frame["probability"] = self.probability
        return frame

    def table(self, mark: str = UNCHANGED) -> pd.DataFrame:
        """Transposed diff: changed features as rows, the query and each counterfactual as
        columns (``-``: unchanged), then predicted / probability / distance_mh / nbr_changes."""
        return diff_table(
            self.wide(),
            query_predicted=self.query_predicted,
            query_probability=self.query_probability,
            mark=mark,
        )

    def text(self, max_width: int = 24) -> str:
        """The transposed diff as aligned plain text (long labels shortened with ``…``)."""
        return text_table(self.table(), max_width=max_width)

    def __str__(self) -> str:
        if not len(self.cfs):
            return "no counterfactuals"
        return self.text()


def diff_table(
    wide: pd.DataFrame,
    *,
    query_predicted: str | None = None,
    query_probability: float | None = None,
    mark: str = UNCHANGED,
) -> pd.DataFrame:
    """Rows of :meth:`Diff.wide` (or of ``changes.csv`` for one query) as the transposed view.

    Index: the features some counterfactual changes (in column order), then the model rows;
    columns: ``query``, ``cf 0`` …; every cell a string.
    """
    features = [c for c in wide.columns if c not in KEYS and c not in CF_COLUMNS]
    cols = (
        ["query"] + [f"cf {int(c)}" for c in wide["cf"]]
        if "cf" in wide
        else ["query"] + [f"cf {i}" for i in range(len(wide))]
    )
    # plain Python over the (few) cells: per-column pandas string work cost ~10 ms a table
    rows: dict[str, list[str]] = {}
    cells_by_feature = wide[features].to_numpy(dtype=object).T if features else []
    for f, column in zip(features, cells_by_feature, strict=True):
        if not any(_filled(v) for v in column):
            continue
        cells = [v if isinstance(v, str) else "" for v in column]
        q = next((c.split(ARROW, 1)[0] for c in cells if ARROW in c), "")
        rows[f] = [q] + [c.split(ARROW, 1)[1] if ARROW in c else mark for c in cells]
    if "role" in wide and any(_filled(v) for v in wide["role"].tolist()):
        rows["role"] = [""] + [fmt_value(v) for v in wide["role"].tolist()]
    if "predicted" in wide:
        rows["predicted"] = [query_predicted or ""] + [
            fmt_value(v) for v in wide["predicted"].tolist()
        ]
    if "probability" in wide:
        q = "" if query_probability is None else f"{query_probability:.3f}"
        rows["probability"] = [q] + [f"{float(v):.3f}" for v in wide["probability"].tolist()]
    if "distance_mh" in wide:
        rows["distance_mh"] = [""] + [f"{float(v):.3f}" for v in wide["distance_mh"].tolist()]
    if "nbr_changes" in wide:
        rows["nbr_changes"] = [""] + [str(int(v)) for v in wide["nbr_changes"].tolist()]
    return pd.DataFrame.from_dict(rows, orient="index", columns=cols)


def _filled(v: Any) -> bool:
    """A cell with text (``.fillna("").astype(str).str.len() > 0`` for one value)."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return False
    return str(v) != ""


def shorten(s: str, width: int) -> str:
    return s if len(s) <= width else s[: max(width - 1, 1)] + "…"


def text_table(table: pd.DataFrame, max_width: int = 24, index_name: str = "") -> str:
    """A string DataFrame (index = row labels) as aligned text; cells cut to ``max_width``."""
    head = [index_name] + [str(c) for c in table.columns]
    body = [
        [str(i)] + [shorten(str(v), max_width) for v in row]
        for i, row in zip(table.index, table.itertuples(index=False), strict=True)
    ]
    widths = [max(len(r[k]) for r in [head, *body]) for k in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if k == 0 else c.rjust(w)
            for k, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(head), *(line(r) for r in body)])


# ------------------------------------------------------------------------------ run files


def _roles(result: Any) -> list[str] | None:
    exp = getattr(result, "explanation", None)
    roles = getattr(exp, "roles", None) if exp is not None else getattr(result, "roles", None)
    return list(roles) if roles else None


def run_changes(
    problem: ProblemLike,
    tasks: Sequence[Any],
    results: Sequence[Any],
    predict_proba: Callable[[np.ndarray], np.ndarray],
    method: str,
    distance: Distance | None = None,
    atol: float = 1e-9,
) -> pd.DataFrame:
    """``changes.csv`` of a run: every task's counterfactuals as diffs, in task order.

    ``tasks`` are :class:`cfgen.plan.Task` (``index, query, target, combination, replication``),
    ``results`` have ``index``, ``counterfactuals`` and optionally ``roles``.

    All tasks at once: the counterfactuals are stacked, predicted and decoded in one call each,
    and every feature column is formatted only where it changes (each distinct value once); the
    rows are those :meth:`Diff.wide` gives task by task (the same text, byte for byte).
    """
    d = len(problem.schema)
    by_index = {r.index: r for r in results}
    owners, sets, role_sets = [], [], []
    for t in tasks:
        r = by_index.get(t.index)
        if r is None or len(r.counterfactuals) == 0:
            continue
        owners.append(t)
        sets.append(np.asarray(r.counterfactuals, dtype=float).reshape(-1, d))
        role_sets.append(_roles(r))
    if not owners:
        cols = [
            *KEYS,
            "predicted",
            "probability",
            "distance_mh",
            "nbr_changes",
            "changed",
            *problem.schema.names,
        ]
        return pd.DataFrame(columns=cols)
    counts = np.array([len(c) for c in sets])
    n = int(counts.sum())
    cfs = np.vstack(sets)
    task_q = np.array([int(t.query) for t in owners], dtype=np.int64)
    row_q = np.repeat(task_q, counts)
    queries, q_pos = np.unique(task_q, return_inverse=True)
    row_qpos = np.repeat(q_pos, counts)
    X = np.asarray(problem.X_test, dtype=float)[queries].reshape(-1, d)
    Xr = X[row_qpos]
    changed = np.abs(cfs - Xr) > atol
    names = np.asarray([str(c) for c in problem.class_names], dtype=object)
    out: dict[str, Any] = {
        "query": row_q,
        "method": method,
        "combination": np.repeat(np.array([t.combination for t in owners], dtype=np.int64), counts),
        "replication": np.repeat(np.array([t.replication for t in owners], dtype=np.int64), counts),
        "target": np.repeat(
            np.asarray(problem.class_names, dtype=object)[[int(t.target) for t in owners]], counts
        ),
        "cf": np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts),
    }
    has_roles = [bool(rs) for rs in role_sets]
    if any(has_roles):
        role_col = np.full(n, np.nan, dtype=object)
        for start, m, rs in zip(np.cumsum(counts) - counts, counts, role_sets, strict=True):
            if rs:
                if len(rs) < m:  # Diff.wide cannot take fewer roles than counterfactuals
                    raise ValueError(f"{len(rs)} roles for {m} counterfactuals")
                role_col[start : start + m] = rs[:m]
        out["role"] = role_col
    P = np.asarray(predict_proba(cfs), dtype=float)
    idx = P.argmax(axis=1)
    out["predicted"] = names[idx]
    out["probability"] = P[np.arange(n), idx]
    if distance is not None:
        out["distance_mh"] = _row_distance(distance, Xr, cfs, counts)
    out["nbr_changes"] = changed.sum(axis=1)
    features = [str(f) for f in problem.schema.names]
    out["changed"] = _changed_names(changed, features)
    decoded = problem.decode(cfs).reset_index(drop=True)
    q_decoded = problem.decode(X).reset_index(drop=True)
    q_rows = _row_values(q_decoded)
    for j, name in enumerate(decoded.columns):
        out[str(name)] = _cells(
            decoded.iloc[:, j], [row[j] for row in q_rows], row_qpos, changed[:, j]
        )
    frame = pd.DataFrame(out)
    if any(has_roles) and not has_roles[0]:
        # as the task-by-task concat did: the first block had no role column, so role came last
        frame = frame[[c for c in frame.columns if c != "role"] + ["role"]]
    return frame


def _row_distance(distance: Distance, Xr: np.ndarray, cfs: np.ndarray, counts: np.ndarray):
    """``distance(x, cfs)`` for every task; one call when it is :func:`mh_distance`'s (row-wise)."""
    batched = getattr(distance, "rows", None)
    if batched is not None:
        return np.asarray(batched(Xr, cfs), dtype=float)
    starts = np.cumsum(counts) - counts
    return np.concatenate(
        [
            np.asarray(distance(Xr[s], cfs[s : s + m]), dtype=float)
            for s, m in zip(starts, counts, strict=True)
        ]
    )


def _changed_names(changed: np.ndarray, features: list[str]) -> np.ndarray:
    """``"a; b"`` per row: the changed features' names, each distinct change pattern built once."""
    if not len(changed):
        return np.zeros(0, dtype=object)
    patterns, inverse = np.unique(changed, axis=0, return_inverse=True)
    text = np.array(
        ["; ".join(f for f, c in zip(features, p, strict=True) if c) for p in patterns],
        dtype=object,
    )
    return text[np.asarray(inverse).ravel()]


def _row_values(frame: pd.DataFrame) -> list[list[Any]]:
    """Each row's values as ``frame.iloc[i]`` holds them (one Series, common dtype)."""
    return [list(frame.iloc[i]) for i in range(len(frame))]


def _cells(
    column: pd.Series, query_values: list[Any], row_qpos: np.ndarray, changed: np.ndarray
) -> np.ndarray:
    """One feature's ``from → to`` cells (empty where unchanged), each distinct text built once."""
    cells = np.full(len(column), "", dtype=object)
    rows = np.flatnonzero(changed)
    if not len(rows):
        return cells
    q_text = [fmt_value(v) for v in query_values]
    values = column.iloc[rows].tolist()
    memo: dict[tuple[int, Any, type], str] = {}
    texts = []
    for qp, v in zip(row_qpos[rows].tolist(), values, strict=True):
        key = (qp, v, type(v))
        try:
            t = memo.get(key)
        except TypeError:  # unhashable value
            t = None
            key = None  # type: ignore[assignment]
        if t is None:
            t = f"{q_text[qp]}{ARROW}{fmt_value(v)}"
            if key is not None:
                memo[key] = t
        texts.append(t)
    cells[rows] = texts
    return cells


def query_frame(
    problem: ProblemLike,
    queries: Sequence[int],
    predict_proba: Callable[[np.ndarray], np.ndarray],
) -> pd.DataFrame:
    """``queries.csv``: each explained test row decoded, with the model's class and probability."""
    queries = [int(q) for q in queries]
    X = problem.X_test[queries] if queries else np.zeros((0, len(problem.schema)))
    frame = problem.decode(X).reset_index(drop=True)
    P = np.asarray(predict_proba(X), dtype=float) if len(X) else np.zeros((0, 1))
    idx = P.argmax(axis=1) if len(X) else np.zeros(0, dtype=int)
    meta = pd.DataFrame(
        {
            "query": queries,
            "predicted": [problem.class_names[int(i)] for i in idx],
            "probability": P[np.arange(len(idx)), idx] if len(idx) else np.zeros(0),
        }
    )
    return pd.concat([meta, frame], axis=1)


def read_changes(path) -> pd.DataFrame:
    """``changes.csv`` back, every feature cell as text (``from → to`` or empty)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in ("query", "combination", "replication", "cf", "nbr_changes"):
        if col in frame:
            frame[col] = pd.to_numeric(frame[col]).astype(int)
    for col in ("probability", "distance_mh"):
        if col in frame:
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame
