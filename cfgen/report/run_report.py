"""``report.html`` of one run directory, built only from the files the run wrote.

:func:`write_run_report` reads ``summary.json``, ``config.yaml``, ``metrics.csv``,
``changes.csv``, ``queries.csv`` (when present), ``constraints.json`` and ``plots/*.png`` and
writes one self-contained page: the setup (dataset, model and its accuracy, method, bounds, seed),
the per-query results, the metric table with every metric's direction and meaning, and per query
the diff tables and the plots.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cfgen.report import html as H
from cfgen.report.legend import ARROW, meaning
from cfgen.report.render import fmt_num

REPORT_HTML = "report.html"
CHANGES = "changes.csv"
QUERIES = "queries.csv"
#: metrics shown first (the paper's, then the console's); the rest under "all metrics"
KEY_METRICS = (
    "perc_valid_cf_all",
    "nbr_valid_cf",
    "perc_actionable_cf_all",
    "distance_mh",
    "avg_nbr_changes_per_cf",
    "avg_nbr_changes",
    "count_diversity_all",
    "accuracy_knn_sklearn",
    "plausibility_nbr_cf",
    "runtime",
)
PLOT_RE = re.compile(r"^(?P<kind>[a-z]+)_q(?P<query>\d+)_to_(?P<target>.+)_c(?P<comb>\d+)\.png$")
PLOT_KINDS = {
    "changes": "what each counterfactual changes",
    "bounds": "class intervals with the query and its counterfactuals",
    "fitness": "search progress per generation",
    "pca": "training data, query, counterfactuals and search path (PCA)",
}


def none_text(v: Any) -> str:
    """``None`` as a person writes it (``none``), everything else as ``str``."""
    return "none" if v is None else str(v)


def _get(cfg: dict, key: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


@dataclass
class RunFiles:
    """What one run directory holds (absent files as empty frames / dicts)."""

    path: Path
    summary: dict[str, Any]
    config: dict[str, Any]
    metrics: pd.DataFrame
    changes: pd.DataFrame
    queries: pd.DataFrame
    constraints: dict[str, Any]
    plots: list[Path] = field(default_factory=list)

    @classmethod
    def read(cls, run_dir: str | Path) -> RunFiles:
        from omegaconf import OmegaConf

        from cfgen.changes import read_changes
        from cfgen.store import CONFIG, CONSTRAINTS, METRICS, SUMMARY

        d = Path(run_dir)
        summary = json.loads((d / SUMMARY).read_text()) if (d / SUMMARY).exists() else {}
        config: dict[str, Any] = {}
        for p in (d / CONFIG, d / ".hydra" / "config.yaml"):
            if p.exists():
                c = OmegaConf.to_container(OmegaConf.load(p), resolve=False)
                config = {str(k): v for k, v in c.items()} if isinstance(c, dict) else {}
                break
        metrics = pd.read_csv(d / METRICS) if (d / METRICS).exists() else pd.DataFrame()
        changes = read_changes(d / CHANGES) if (d / CHANGES).exists() else pd.DataFrame()
        queries = pd.read_csv(d / QUERIES) if (d / QUERIES).exists() else pd.DataFrame()
        cons = json.loads((d / CONSTRAINTS).read_text()) if (d / CONSTRAINTS).exists() else {}
        plots = sorted((d / "plots").glob("*.png")) if (d / "plots").is_dir() else []
        return cls(d, summary, config, metrics, changes, queries, cons, plots)

    @property
    def class_names(self) -> list[str]:
        names = self.summary.get("class_names") or self.constraints.get("class_names")
        return [str(n) for n in names] if names else []

    def class_name(self, index: Any) -> str:
        names = self.class_names
        try:
            return names[int(index)]
        except (ValueError, IndexError, TypeError):
            return str(index)


def setup_pairs(run: RunFiles) -> list[tuple[str, str]]:
    """The run's setup as (setting, value) rows."""
    s, c = run.summary, run.config
    ep = c.get("experiment_params") or {}
    model = c.get("model") or {}
    model_name = str(model.get("_target_", "")).rsplit(".", 1)[-1] or "model"
    acc = f"train {fmt_num(s.get('train_accuracy'))}, test {fmt_num(s.get('test_accuracy'))}"
    method = s.get("method") or _get(c, "method.name")
    target = s.get("method_target") or _get(c, "method._target_")
    bounds_mode = (
        s.get("bounds_mode")
        or run.constraints.get("mode")
        or _get(c, "method.bounds.mode")
        or _get(c, "constraints.mode")
    )
    uses = s.get("uses_bounds")
    settings = ", ".join(f"{k}={v}" for k, v in model.items() if k not in ("_target_", "n_jobs"))
    used = "" if uses is None else f"; used by the method: {'yes' if uses else 'no'}"
    pairs = [
        (
            "dataset",
            f"{s.get('dataset') or _get(c, 'dataset.name')}: {s.get('n_train', '?')} "
            f"train / {s.get('n_test', '?')} test rows"
            + (f", classes {', '.join(run.class_names)}" if run.class_names else ""),
        ),
        ("model", f"{model_name} ({settings})"),
        ("model accuracy", acc),
        ("method", f"{method}" + (f" ({target})" if target else "")),
        (
            "class bounds",
            f"{none_text(bounds_mode)}"
            + used
            + (
                f"; mined in {fmt_num(s.get('bounds_seconds'))} s"
                if s.get("bounds_seconds")
                else ""
            ),
        ),
        ("seed", none_text(ep.get("seed"))),
        ("counterfactuals requested (k)", none_text(ep.get("num_counterfactuals"))),
        ("queries", ", ".join(str(q) for q in s.get("queries", [])) or "?"),
        ("replications", none_text(ep.get("num_replications"))),
        ("actionability rules", ", ".join(map(str, ep.get("rules") or [])) or "none"),
        ("time limit per query (s)", none_text(_get(c, "method.time_limit"))),
        ("tasks", f"{s.get('n_tasks', '?')} ({s.get('n_failed', 0)} failed)"),
        ("metric definitions", none_text(s.get("metrics_compat"))),
        (
            "wall time (s)",
            fmt_num(s.get("wall_seconds"), 1)
            + ("" if s.get("report_seconds") is not None else " (before writing this page)"),
        ),
    ]
    return pairs


def metric_frame(run: RunFiles, names: list[str]) -> pd.DataFrame:
    """metric, ↑/↓, mean, std, n (tasks), meaning, from summary.json's aggregates."""
    from cfgen.report.tables import direction

    agg = run.summary.get("metrics") or {}
    recs = []
    for m in names:
        a = agg.get(m) or {}
        recs.append(
            {
                "metric": m,
                "better": ARROW[direction(m)],
                "mean": fmt_num(a.get("mean")),
                "std": fmt_num(a.get("std")),
                "n": a.get("n", ""),
                "meaning": meaning(m) or "see docs/metrics.md",
            }
        )
    return pd.DataFrame(recs, columns=["metric", "better", "mean", "std", "n", "meaning"])


def query_frame(run: RunFiles) -> pd.DataFrame:
    """Per query × target, the console's table: the same metric names and scales."""
    from cfgen.console import CONSOLE_METRICS

    m = run.metrics
    if m.empty:
        return pd.DataFrame()
    shown = [(c, d) for c, d in CONSOLE_METRICS if c in m]
    failed = (
        (m["error"].notna() & m["error"].astype(str).ne(""))
        if "error" in m
        else pd.Series(False, index=m.index)
    )
    if "timed_out" in m:
        failed |= m["timed_out"].astype(str).str.lower().isin(("true", "1"))
    g = m.assign(_failed=failed).groupby(["query", "target"], sort=True)
    agg = g[[c for c, _ in shown]].mean()
    sizes, n_failed = g.size(), g["_failed"].sum()
    orig = {}
    if not run.queries.empty:
        orig = dict(zip(run.queries["query"], run.queries["predicted"].astype(str), strict=True))
    recs = []
    for (q, t), rec in agg.iterrows():
        row = {"query": int(q), "original": orig.get(q, ""), "target": run.class_name(t)}
        for c, dec in shown:
            v = float(rec[c])
            row[c] = (
                "–"
                if not np.isfinite(v)
                else (
                    (str(int(round(v))) if abs(v - round(v)) < 1e-9 else f"{v:.1f}")
                    if dec is None
                    else f"{v:.{dec}f}"
                )
            )
        row["tasks"] = int(sizes[(q, t)])
        row["failed"] = int(n_failed[(q, t)])
        recs.append(row)
    frame = pd.DataFrame(recs)
    if not orig:
        frame = frame.drop(columns="original")
    return frame


def _plots_for(run: RunFiles, query: int, comb: int) -> list[tuple[str, Path]]:
    out = []
    for p in run.plots:
        mt = PLOT_RE.match(p.name)
        if mt and int(mt["query"]) == query and int(mt["comb"]) == comb:
            out.append((mt["kind"], p))
    order = list(PLOT_KINDS)
    return sorted(out, key=lambda kp: (order.index(kp[0]) if kp[0] in order else 99, kp[1].name))


#: query sections (query × target × combination) report.html shows when the run's config.yaml
#: does not say (``output.report_queries``)
REPORT_QUERIES = 20


def report_queries(run: RunFiles) -> int:
    """How many query sections the page shows: ``output.report_queries`` of the run's config."""
    v = _get(run.config, "output.report_queries", REPORT_QUERIES)
    try:
        return max(0, int(v))
    except (TypeError, ValueError):
        return REPORT_QUERIES


def query_sections(run: RunFiles, max_sections: int | None = None) -> list[str]:
    """Per query × target × combination: diff tables (one per replication) and the plots.

    At most ``max_sections`` sections (default: :func:`report_queries`), the first ones in
    ``changes.csv``'s order, then a line saying how many sections and queries are left out; the
    rows are grouped once, so the cost follows what is shown, not the size of the run."""
    from cfgen.changes import diff_table

    if max_sections is None:
        max_sections = report_queries(run)
    ch = run.changes
    parts: list[str] = []
    qinfo = run.queries.set_index("query") if not run.queries.empty else None
    keys: list[tuple[int, str, int]] = []
    groups: dict[tuple[int, str, int], dict[int, np.ndarray]] = {}
    if not ch.empty:
        cols = ["query", "target", "combination", "replication"]
        index = ch[cols].astype({"query": int, "target": str, "combination": int})
        keys = list(
            dict.fromkeys(
                zip(
                    index["query"].tolist(),
                    index["target"].tolist(),
                    index["combination"].tolist(),
                    strict=True,
                )
            )
        )
        shown_keys = set(keys[:max_sections])
        for (q, t, c, r), pos in index.groupby(cols, sort=False).indices.items():
            key = (int(q), str(t), int(c))
            if key in shown_keys:
                groups.setdefault(key, {})[int(r)] = pos
    elif not run.metrics.empty:  # nothing found anywhere: still list the queries
        keys = list(
            dict.fromkeys(
                (int(q), run.class_name(t), int(c))
                for q, t, c in zip(
                    run.metrics["query"],
                    run.metrics["target"],
                    run.metrics["combination"],
                    strict=True,
                )
            )
        )
    shown, left = keys[:max_sections], keys[max_sections:]
    if left:
        n_left_queries = len({q for q, _, _ in left} - {q for q, _, _ in shown})
        parts.append(
            f"<p class='warn'>Showing the first {len(shown)} of {len(keys)} query sections "
            f"(query × target × combination): {len(left)} more sections"
            + (
                f", {n_left_queries} {'query' if n_left_queries == 1 else 'queries'} "
                "of them not shown at all,"
                if n_left_queries
                else ""
            )
            + " are left out of this page. <code>changes.csv</code> has every counterfactual "
            "of every query (and <code>metrics.csv</code> every task); "
            "<code>output.report_queries</code> sets how many sections the page shows.</p>"
        )
    for q, target, comb in shown:
        qp = qprob = None
        if qinfo is not None and q in qinfo.index:
            qp, qprob = str(qinfo.loc[q, "predicted"]), float(qinfo.loc[q, "probability"])
        head = (
            f"Query {q}: "
            + (f"predicted {qp} ({qprob:.3f}) → " if qp else "")
            + f"target {target}"
            + (f", combination {comb}" if comb else "")
        )
        parts.append(f'<h3 id="q{q}-{H.esc(target)}-c{comb}">{H.esc(head)}</h3>')
        by_rep = groups.get((q, target, comb), {})
        reps = sorted(by_rep)
        if not reps:
            parts.append(
                "<p>No counterfactual found for this target.</p>"
                if (run.path / CHANGES).exists()
                else "<p>This run has no changes.csv (written before diffs were): see "
                "counterfactuals.csv.</p>"
            )
        for i, rep in enumerate(reps):
            rows = ch.iloc[by_rep[rep]].reset_index(drop=True)
            table = H.diff_html(diff_table(rows, query_predicted=qp, query_probability=qprob))
            title = (
                f"replication {rep}: {len(rows)} counterfactual(s); only the changed "
                "features are listed (- : unchanged)"
            )
            if i == 0:
                parts.append(f"<p>{H.esc(title)}</p>{table}")
            else:
                parts.append(f"<details><summary>{H.esc(title)}</summary>{table}</details>")
        for kind, path in _plots_for(run, q, comb):
            mt = PLOT_RE.match(path.name)
            if mt and mt["target"] != _slug(target):
                continue
            parts.append(H.figure(path, f"{kind}: {PLOT_KINDS.get(kind, '')} ({path.name})"))
    return parts


def _slug(name: str) -> str:
    from cfgen.plots.run import slug

    return slug(name)


def run_report_html(run_dir: str | Path, max_sections: int | None = None) -> str:
    """The HTML text of a run's report (``max_sections``: see :func:`query_sections`)."""
    run = RunFiles.read(run_dir)
    s = run.summary
    title = f"cfgen run: {s.get('dataset', '?')} · {s.get('method', '?')}"
    body = [
        "<nav><a href='#setup'>Setup</a><a href='#results'>Results</a>"
        "<a href='#metrics'>Metrics</a><a href='#queries'>Queries</a></nav>",
        "<h2 id='setup'>Setup</h2>",
        H.kv_table(setup_pairs(run)),
    ]
    qf = query_frame(run)
    body += [
        "<h2 id='results'>Results per query</h2>",
        "<p>Mean over the tasks of each query and target (replications × combinations); "
        "the same metric names and scales as <code>metrics.csv</code>, "
        "<code>summary.json</code> and the console.</p>",
        H.table(qf) if not qf.empty else "<p>No tasks.</p>",
    ]
    agg = s.get("metrics") or {}
    key = [m for m in KEY_METRICS if m in agg]
    rest = [m for m in agg if m not in key]
    body += [
        "<h2 id='metrics'>Metrics</h2>",
        "<p>Mean, standard deviation and number of tasks with a value (from "
        "<code>summary.json</code>); ↑ larger is better, ↓ smaller is better; definitions "
        "in <code>docs/metrics.md</code>.</p>",
        H.table(metric_frame(run, key)),
    ]
    if rest:
        body.append(
            f"<details><summary>all {len(agg)} metrics</summary>"
            f"{H.table(metric_frame(run, rest))}</details>"
        )
    body += ["<h2 id='queries'>Counterfactuals per query</h2>"]
    if not run.plots:
        body.append("<p>No plots in this run (rerun with <code>output.plots=true</code>).</p>")
    body += query_sections(run, max_sections)
    cfg_text = (run.path / "config.yaml").read_text() if (run.path / "config.yaml").exists() else ""
    if cfg_text:
        body.append(
            f"<details><summary>config.yaml</summary><pre>{H.esc(cfg_text)}</pre></details>"
        )
    files = sorted(p.name for p in run.path.iterdir() if p.is_file())
    body.append(
        f"<p class='sub'>Run directory <code>{H.esc(run.path)}</code>: "
        f"{H.esc(', '.join(files))}</p>"
    )
    nq = len(s.get("queries", []))
    return H.page(
        title,
        body,
        subtitle=f"{nq} {'query' if nq == 1 else 'queries'}, {s.get('n_tasks', '?')} tasks",
    )


def write_run_report(run_dir: str | Path, max_sections: int | None = None) -> Path:
    """Write ``<run_dir>/report.html`` from the run's files; return its path.

    ``max_sections``: query sections shown (default ``output.report_queries`` of the run's
    config, else :data:`REPORT_QUERIES`)."""
    import os

    path = Path(run_dir) / REPORT_HTML
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(run_report_html(run_dir, max_sections), encoding="utf-8")
    os.replace(tmp, path)
    return path
