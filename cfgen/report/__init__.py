"""Paper tables from run directories: ``python -m cfgen.report RUN_OR_MULTIRUN_DIR… [--out DIR]``.

Reads only what runs wrote (``metrics.csv``, ``summary.json``, ``config.yaml``; no tracking
server) and writes into a report directory:

=====================  ===========================================================================
``comparison.csv``     dataset × method × metric: mean, std, n, 95% CI over queries
``runs.csv``           dataset × method: queries, tasks, failures, time-outs, timings, run dir
``summary.csv``        per metric and pair of methods: wins / losses / ties over datasets, win rate
``winners.csv``        per dataset × metric: best method (or tie); ``winner_counts.csv`` totals
``winners.png``        the winner heatmap
``wilcoxon.csv``       per metric and pair: Wilcoxon over datasets, Holm-adjusted, rank-biserial
``wilcoxon_queries.csv`` per dataset, metric and pair: Wilcoxon over queries (n ≥ 6)
``*.md`` / ``*.tex``   the same tables as Markdown / LaTeX; ``report.md`` all of it on one page
``report.html``        all of it in one self-contained page (heatmap embedded, links to runs)
=====================  ===========================================================================

API::

    rep = build_report(["outputs/paper/2026-01-01_12-00-00"])
    paths = write_report(rep, "outputs/paper/2026-01-01_12-00-00/report")
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from cfgen.report.load import (
    ReportError,
    RunSet,
    fairness_checks,
    load_runs,
    metric_columns,
    order_methods,
    run_table,
)
from cfgen.report.load import (
    rows as collect_rows,
)
from cfgen.report.tables import (
    PAPER_METRICS,
    SECONDARY_METRICS,
    comparison,
    direction,
    method_pairs,
    query_means,
    query_test_counts,
    summary_table,
    wilcoxon_datasets,
    wilcoxon_queries,
    winner_counts,
    winners_table,
)

__all__ = [
    "PAPER_METRICS",
    "SECONDARY_METRICS",
    "Report",
    "ReportError",
    "build_report",
    "direction",
    "load_runs",
    "write_report",
]


@dataclass
class Report:
    """Every table of the report, as DataFrames (see the module docstring for the files)."""

    runset: RunSet
    rows: pd.DataFrame  # normalised metrics.csv rows of every run (common queries only)
    query_means: pd.DataFrame  # dataset × method × query
    runs: pd.DataFrame
    comparison: pd.DataFrame
    summary: pd.DataFrame
    winners: pd.DataFrame
    winner_counts: pd.DataFrame
    wilcoxon: pd.DataFrame
    wilcoxon_queries: pd.DataFrame
    query_test_counts: pd.DataFrame
    metrics: list[str]  # tested metrics (the Wilcoxon/Holm family)
    shown: list[str]  # metrics in the comparison table, summary and winners
    methods: list[str]
    datasets: list[str]
    reference: str | None
    alpha: float
    min_queries: int
    warnings: list[str] = field(default_factory=list)
    created: str = ""


def _tested_metrics(
    metrics: Sequence[str] | None, available: list[str], warnings: list[str]
) -> list[str]:
    """The metrics to test: those asked for (each must be in the runs: a typo fails loudly),
    else the paper's that the runs have (the others noted in ``warnings``)."""
    if metrics is not None:
        unknown = [m for m in metrics if m not in available]
        if unknown:
            shown_av = ", ".join(available[:25]) + (", …" if len(available) > 25 else "")
            raise ReportError(
                f"--metrics {','.join(unknown)}: not in the runs' metrics.csv; "
                f"available: {shown_av}"
            )
        return list(metrics)
    wanted = list(PAPER_METRICS)
    missing = [m for m in wanted if m not in available]
    if missing:
        warnings.append("metrics not in the runs' metrics.csv (left out): " + ", ".join(missing))
    return [m for m in wanted if m in available]


def _methods(
    runset: RunSet, rows: pd.DataFrame, reference: str | None, warnings: list[str]
) -> tuple[list[str], str | None]:
    """The methods with rows, the reference first, and the reference (``None``, every pair
    tested, when the one asked for did not run)."""
    present = set(rows["method"].unique())
    if reference is None:
        reference = runset.runs[0].label  # the first run's (a sweep's job 0)
    methods = order_methods([m for m in runset.methods if m in present], reference)
    if reference is not None and reference not in methods:
        if len(methods) > 1:
            warnings.append(
                f"reference method {reference!r} not among the runs' methods: every pair is tested"
            )
        reference = None
    return methods, reference


def _missing_runs(rows: pd.DataFrame, datasets: list[str], methods: list[str]) -> list[str]:
    """A warning per dataset lacking some method's run: its comparisons are then partial."""
    out = []
    for d in datasets:
        have = set(rows.loc[rows["dataset"] == d, "method"])
        lacking = [m for m in methods if m not in have]
        if lacking:
            out.append(f"{d}: no finished run for {', '.join(lacking)}")
    return out


def build_report(
    paths: Sequence[str | Path],
    metrics: Sequence[str] | None = None,
    reference: str | None = None,
    label_by: Sequence[str] | None = None,
    alpha: float = 0.05,
    min_queries: int = 6,
    all_pairs: bool = False,
) -> Report:
    """Read the runs under ``paths`` and compute every table.

    ``metrics``: the tested metrics (default: the paper's eight, those present in the runs);
    ``reference``: the method tested against every other one (default: the first run's method
    label; ``all_pairs`` tests every pair); ``label_by``: config keys naming a "method"
    (default ``None``: the method's name plus every swept override key, see
    :func:`cfgen.report.load.load_runs`).
    """
    runset = load_runs(paths, label_by)
    if not runset.runs:
        where = ", ".join(str(p) for p in paths)
        raise ReportError(f"no finished runs (directories with summary.json) under {where}")
    rows = collect_rows(runset, common_queries=True)
    available = metric_columns(rows)
    warnings = list(runset.warnings)
    tested = _tested_metrics(metrics, available, warnings)
    shown = tested + [m for m in SECONDARY_METRICS if m in available and m not in tested]
    methods, reference = _methods(runset, rows, reference, warnings)
    datasets = sorted(rows["dataset"].unique())
    warnings += fairness_checks(runset.runs)
    warnings += _missing_runs(rows, datasets, methods)

    qm = query_means(rows, available)
    comp = comparison(qm, available)
    pairs = method_pairs(methods, reference, all_pairs)
    winners = winners_table(comp, shown, methods)
    wq = wilcoxon_queries(qm, tested, pairs, min_queries, alpha)
    return Report(
        runset=runset,
        rows=rows,
        query_means=qm,
        runs=run_table(runset, rows),
        comparison=comp,
        summary=summary_table(comp, shown, methods),
        winners=winners,
        winner_counts=winner_counts(winners, methods),
        wilcoxon=wilcoxon_datasets(comp, tested, pairs, alpha),
        wilcoxon_queries=wq,
        query_test_counts=query_test_counts(wq, alpha),
        metrics=tested,
        shown=shown,
        methods=methods,
        datasets=datasets,
        reference=reference,
        alpha=alpha,
        min_queries=min_queries,
        warnings=warnings,
        created=_dt.datetime.now().isoformat(timespec="seconds"),
    )


def optimum_table(report: Report) -> pd.DataFrame:
    """The "closest ÷ optimum" table when an ``exact`` run is among the runs (else empty)."""
    from cfgen.report.optimum import closest_over_optimum

    rows = report.rows
    if "exact" not in set(rows["method"]) or "distance_mixed_min" not in rows:
        return pd.DataFrame()
    return closest_over_optimum(rows, distance="distance_mixed_min")


def write_report(report: Report, out_dir: str | Path, plot: bool = True) -> dict[str, Path]:
    """Write every table (CSV, Markdown, LaTeX), the heatmap and ``report.md``; return paths."""
    from cfgen.report import markdown as md
    from cfgen.report.render import markdown as render_markdown

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    def csv(name: str, frame: pd.DataFrame) -> None:
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False, float_format="%.10g", lineterminator="\n")
        written[f"{name}.csv"] = path

    csv("comparison", report.comparison)
    csv("runs", report.runs)
    csv("summary", report.summary)
    csv("winners", report.winners)
    csv("winner_counts", report.winner_counts)
    csv("wilcoxon", report.wilcoxon)
    csv("wilcoxon_queries", report.wilcoxon_queries)
    csv("query_means", report.query_means)
    optimum = optimum_table(report)
    if not optimum.empty:
        csv("closest_over_optimum", optimum)
    if plot and not report.winners.empty:
        from cfgen.report.plots import winner_heatmap

        written["winners.png"] = winner_heatmap(
            report.winners, report.methods, report.shown, out / "winners.png"
        )
    for name, (text_md, text_tex) in md.sections(report).items():
        (out / f"{name}.md").write_text(text_md)
        (out / f"{name}.tex").write_text(text_tex)
        written[f"{name}.md"] = out / f"{name}.md"
        written[f"{name}.tex"] = out / f"{name}.tex"
    image = "winners.png" if "winners.png" in written else None
    text = md.full_report(report, image=image)
    if not optimum.empty:
        text += (
            "\n## Closest counterfactual ÷ proven optimum\n\nPer dataset and method, over the "
            "tasks whose query the `exact` run solved to proven optimality: the closest "
            "returned counterfactual's distance (`distance_mixed_min`: MAD-scaled L1 plus 1 "
            "per changed categorical) divided by the optimum (↓, 1 is the optimum).\n\n"
            + render_markdown(optimum)
            + "\n"
        )
    (out / "report.md").write_text(text)
    written["report.md"] = out / "report.md"
    from cfgen.report.sweep_html import report_html

    (out / "report.html").write_text(
        report_html(report, out, written.get("winners.png")), encoding="utf-8"
    )
    written["report.html"] = out / "report.html"
    (out / "warnings.txt").write_text("".join(w + "\n" for w in report.warnings))
    written["warnings.txt"] = out / "warnings.txt"
    return written
