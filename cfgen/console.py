"""What a run prints: the per-query table, the per-combination table, diff tables, phases.

The per-query table uses the metric names of ``metrics.csv``, ``summary.json`` and the report,
with the same scale (a count is a count, a share a share), so a number can be looked up.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import textwrap
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from cfgen.changes import diff_table, text_table

__all__ = ["CONSOLE_METRICS", "Phase", "combination_table", "console_table", "diff_tables", "phase"]

log = logging.getLogger("cfgen")

#: (metrics.csv column, decimals) shown per query and target; ``None`` decimals: a count
CONSOLE_METRICS: tuple[tuple[str, int | None], ...] = (
    ("nbr_valid_cf", None),
    ("distance_mh", 3),
    ("avg_nbr_changes_per_cf", 2),
    ("runtime", 3),
)


def _count(v: float) -> str:
    """A mean of counts: ``5`` when whole, else one decimal (``4.7``)."""
    if not np.isfinite(v):
        return "–"
    return str(int(round(v))) if abs(v - round(v)) < 1e-9 else f"{v:.1f}"


def console_table(
    data: Any, metrics: pd.DataFrame, *, estimator: Any = None, k: int | None = None
) -> str:
    """Per query and target: original and target class, then :data:`CONSOLE_METRICS` (mean over
    replications and combinations), a ``failed`` column when a task failed, and a legend line.

    ``data`` has ``X_test`` and ``class_names`` (a ``Problem`` or ``Dataset``); ``estimator``
    answers class indices (default ``data.estimator``).
    """
    if metrics.empty:
        return "(no tasks)"
    est = estimator if estimator is not None else data.estimator
    orig = np.asarray(est.predict(data.X_test[metrics["query"].to_numpy()]))
    names = [str(c) for c in data.class_names]
    m = metrics.assign(
        _orig=[names[int(c)] for c in orig], _target=[names[int(c)] for c in metrics["target"]]
    )
    failed = (m["error"].notna() & (m["error"].astype(str) != "")) if "error" in m else False
    if "timed_out" in m:
        failed = failed | m["timed_out"].astype(bool)
    m = m.assign(_failed=failed)
    shown = [(c, d) for c, d in CONSOLE_METRICS if c in m]
    g = m.groupby(["query", "_orig", "_target"], sort=True)
    agg = g[[c for c, _ in shown]].mean()
    n = g.size()
    nf = g["_failed"].sum()
    header = ["query", "original", "target", *(c for c, _ in shown)]
    if nf.any():
        header.append("failed")
    rows = []
    for key, rec in agg.iterrows():
        q, o, t = key
        cells = [str(q), str(o), str(t)]
        for c, dec in shown:
            v = float(rec[c])
            cells.append(
                _count(v) if dec is None else ("–" if not np.isfinite(v) else f"{v:.{dec}f}")
            )
        if nf.any():
            cells.append(f"{int(nf[key])}/{int(n[key])}")
        rows.append(cells)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    reps = int(n.max())
    legend = (
        f"mean over {reps} task(s) per row (replications × combinations)"
        + (f"; k = {k} requested" if k is not None else "")
        + "; nbr_valid_cf: valid counterfactuals found (count); distance_mh ↓: mixed "
        "MAD/Hamming distance to the query; avg_nbr_changes_per_cf ↓: features changed "
        "(count); runtime: search seconds (docs/metrics.md)"
    )
    return "\n".join([*lines, *textwrap.wrap(legend, 100)])


def combination_table(
    tasks: Sequence[Any],
    results: Sequence[Any],
    combinations: Any = None,
    k: int | None = None,
) -> str:
    """Per actionability combination: tasks, failed, success rate (≥ 1 counterfactual),
    complete rate (k counterfactuals) and mean counterfactuals per task."""
    by_index = {r.index: r for r in results}
    rows: dict[int, dict] = {}
    for t in tasks:
        r = by_index.get(t.index)
        row = rows.setdefault(
            t.combination, {"tasks": 0, "failed": 0, "success": 0, "complete": 0, "cfs": 0}
        )
        row["tasks"] += 1
        if r is None or r.error is not None:
            row["failed"] += 1
            continue
        n = len(r.counterfactuals)
        row["cfs"] += n
        row["success"] += n > 0
        row["complete"] += k is not None and n >= k
    if not rows:
        return "(no tasks)"
    header = ["combination", "tasks", "failed", "success", "complete", "mean_cfs"]
    if combinations is not None:
        header.append("rules")
    lines = []
    for c in sorted(rows):
        row = rows[c]
        n = row["tasks"]
        cells = [
            str(c),
            str(n),
            str(row["failed"]),
            f"{row['success'] / n:.3f}",
            f"{row['complete'] / n:.3f}" if k is not None else "-",
            f"{row['cfs'] / n:.2f}",
        ]
        if combinations is not None:
            cells.append(combinations.label(c))
        lines.append(cells)
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(header)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == len(cells) - 1 and combinations is not None else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([fmt(header), *(fmt(r) for r in lines)])


# ------------------------------------------------------------------------------ diff tables


def diff_groups(changes: pd.DataFrame, show: int) -> Iterator[tuple[tuple, pd.DataFrame, int]]:
    """The first ``show`` queries of ``changes.csv`` rows: per query × target × combination,
    the first replication's rows, and how many replications there were."""
    if changes.empty or show <= 0:
        return
    queries = list(dict.fromkeys(int(q) for q in changes["query"]))[:show]
    sub = changes[changes["query"].isin(queries)]
    for key, g in sub.groupby(["query", "target", "combination"], sort=False):
        reps = sorted(int(r) for r in g["replication"].unique())
        yield key, g[g["replication"] == reps[0]], len(reps)


def diff_tables(
    changes: pd.DataFrame, show: int = 3, queries: pd.DataFrame | None = None, max_width: int = 22
) -> str:
    """Up to ``show`` queries as compact diff tables: the changed features only (``-`` where a
    counterfactual leaves it), one column per counterfactual. ``queries`` (``queries.csv``)
    adds the query's own predicted class and probability."""
    blocks = []
    qinfo = queries.set_index("query") if queries is not None and len(queries) else None
    n_queries = changes["query"].nunique() if len(changes) else 0
    for (q, target, comb), g, n_reps in diff_groups(changes, show):
        qp = qprob = None
        if qinfo is not None and q in qinfo.index:
            qp, qprob = str(qinfo.loc[q, "predicted"]), float(qinfo.loc[q, "probability"])
        table = diff_table(g.reset_index(drop=True), query_predicted=qp, query_probability=qprob)
        rep = int(g["replication"].iloc[0])
        head = (
            f"query {q} → {target} (combination {comb}, replication {rep}"
            + (f" of {n_reps}" if n_reps > 1 else "")
            + f"): {len(g)} counterfactual(s)"
        )
        blocks.append(head + "\n" + text_table(table, max_width=max_width, index_name="feature"))
    if not blocks:
        return ""
    more = n_queries - min(show, n_queries)
    tail = f"(+ {more} more queries) " if more > 0 else ""
    return "\n\n".join(blocks) + f"\n{tail}every counterfactual is in changes.csv"


# ------------------------------------------------------------------------------ phases


@dataclass
class Phase:
    """A named step of a run with an optional item count; see :func:`phase`."""

    name: str
    total: int | None = None
    done: int = 0
    started: float = field(default_factory=time.perf_counter)
    _bar: Any = None
    _last_log: float = 0.0
    _logger: logging.Logger = log
    every: float = 5.0  # seconds between progress lines when there is no terminal bar

    def advance(self, n: int = 1) -> None:
        """``n`` more items of this phase are done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.perf_counter()
        if now - self._last_log >= self.every:
            self._last_log = now
            of = f"/{self.total}" if self.total is not None else ""
            self._logger.info("%s: %d%s", self.name, self.done, of)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


@contextlib.contextmanager
def phase(
    name: str,
    total: int | None = None,
    *,
    logger: logging.Logger | None = None,
    bar: bool | None = None,
) -> Iterator[Phase]:
    """Show that a step is running: ``with phase("metrics", total=n) as p: … p.advance()``.

    On a terminal (``bar=None``: stderr is a TTY) a tqdm bar named ``name``; otherwise log lines:
    ``name …`` at the start, ``name: i/n`` at most every 5 s, ``name done (n items, s)`` at the
    end (also when the step raises, then ``name failed``).
    """
    lg = logger or log
    use_bar = sys.stderr.isatty() if bar is None else bar
    p = Phase(name, total, _logger=lg)
    p._last_log = p.started
    if use_bar:
        from tqdm import tqdm

        p._bar = tqdm(total=total, desc=name, leave=False, dynamic_ncols=True)
    lg.info("%s …", name)
    ok = False
    try:
        yield p
        ok = True
    finally:
        if p._bar is not None:
            p._bar.close()
        items = f"{p.done} items, " if p.done or total else ""
        lg.info("%s %s (%s%.1f s)", name, "done" if ok else "failed", items, p.seconds)
