"""Human-readable versions of the report tables (Markdown and LaTeX) and ``report.md``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cfgen.report.render import ARROW, fmt_num, fmt_p, latex, markdown, markdown_bold
from cfgen.report.stats import is_tie


def count(n: int, noun: str) -> str:
    """``1 dataset``, ``3 datasets``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def none_text(v) -> str:
    """A config value as text: ``None`` (or a missing float) as ``none``."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "none"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


if TYPE_CHECKING:
    from cfgen.report import Report


def _metric_header(m: str, direction: str) -> str:
    return f"{m} {ARROW[direction]}"


def comparison_frames(report: Report) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Wide comparison (dataset, method, n, failed, metric columns 'mean ± std') + bold mask."""
    comp = report.comparison.set_index(["dataset", "method", "metric"])
    runs = report.runs.set_index(["dataset", "method"]) if not report.runs.empty else None
    recs, bold = [], []
    for d in report.datasets:
        present = [m for m in report.methods if runs is not None and (d, m) in runs.index]
        for meth in present:
            assert runs is not None
            r = runs.loc[(d, meth)]
            failed = f"{int(r['n_failed'])}/{int(r['n_tasks'])}"
            if int(r["n_timed_out"]):
                failed += f" ({int(r['n_timed_out'])} t/o)"
            rec = {"dataset": d, "method": meth, "queries": int(r["n_queries"]), "failed": failed}
            mask = {"dataset": False, "method": False, "queries": False, "failed": False}
            for m in report.shown:
                key = (d, meth, m)
                dirn = _direction(report, m)
                head = _metric_header(m, dirn)
                if key not in comp.index:
                    rec[head], mask[head] = "–", False
                    continue
                c = comp.loc[key]
                rec[head] = (
                    fmt_num(c["mean"])
                    if not np.isfinite(c["std"])
                    else f"{fmt_num(c['mean'])} ± {fmt_num(c['std'])}"
                )
                others = [comp.loc[(d, o, m), "mean"] for o in present if (d, o, m) in comp.index]
                vals = np.array(others, float)
                vals = vals[np.isfinite(vals)]
                best = (vals.max() if dirn == "up" else vals.min()) if vals.size else np.nan
                mask[head] = bool(
                    vals.size > 1 and np.isfinite(c["mean"]) and is_tie(c["mean"], best)
                )
            recs.append(rec)
            bold.append(mask)
    frame = pd.DataFrame(recs)
    return frame, pd.DataFrame(bold, columns=frame.columns)


def _direction(report: Report, metric: str) -> str:
    from cfgen.report.tables import direction

    return direction(metric)


def summary_frame(report: Report) -> pd.DataFrame:
    """Metrics × pairs: 'wins–losses–ties (win rate)' of A over B across datasets."""
    s = report.summary
    pairs = list(dict.fromkeys(zip(s["method_a"], s["method_b"], strict=True)))
    recs = []
    for m, g in s.groupby("metric", sort=False):
        rec = {"metric": _metric_header(m, _direction(report, m))}
        for a, b in pairs:
            row = g[(g["method_a"] == a) & (g["method_b"] == b)]
            if row.empty:
                rec[f"{a} vs {b}"] = "–"
                continue
            r = row.iloc[0]
            rec[f"{a} vs {b}"] = (
                f"{int(r['wins'])}–{int(r['losses'])}–{int(r['ties'])} "
                f"({fmt_num(r['win_rate'], 2)})"
            )
        recs.append(rec)
    return pd.DataFrame(recs, columns=["metric", *[f"{a} vs {b}" for a, b in pairs]])


def winners_frame(report: Report) -> pd.DataFrame:
    """datasets × metrics grid of winner names (the heatmap as a table)."""
    w = report.winners
    if w.empty:
        return pd.DataFrame()
    grid = w.pivot(index="dataset", columns="metric", values="winner")
    grid = grid.reindex(columns=[m for m in report.shown if m in grid.columns]).fillna("")
    grid.columns = [_metric_header(m, _direction(report, m)) for m in grid.columns]
    return grid.reset_index()


def winner_counts_frame(report: Report) -> pd.DataFrame:
    wc = report.winner_counts.copy()
    wc["metric"] = [_metric_header(m, _direction(report, m)) for m in wc["metric"]]
    return wc


def wilcoxon_frame(report: Report) -> pd.DataFrame:
    w = report.wilcoxon
    return pd.DataFrame(
        {
            "metric": [
                _metric_header(m, d) for m, d in zip(w["metric"], w["direction"], strict=True)
            ],
            "A vs B": [f"{a} vs {b}" for a, b in zip(w["method_a"], w["method_b"], strict=True)],
            "datasets": w["n_datasets"].astype(int),
            "median diff": [fmt_num(v) for v in w["median_diff"]],
            "W": [fmt_num(v, 1) for v in w["statistic"]],
            "p": [fmt_p(v) for v in w["p"]],
            "p Holm": [fmt_p(v) for v in w["p_holm"]],
            "r (rank-biserial)": [fmt_num(v, 2) for v in w["effect_size"]],
            "better": [
                _better(b, s, c, n, mp)
                for b, s, c, n, mp in zip(
                    w["better"],
                    w["significant"],
                    w["can_be_significant"],
                    w["n_datasets"],
                    w["min_p_holm"],
                    strict=True,
                )
            ],
        }
    )


def _better(b: str, significant: bool, possible: bool, n: int, min_p_holm: float) -> str:
    """The ``better`` cell: the winner, ``(winner)`` when not significant, and a plain statement
    when the number of pairs can never reach significance whatever the data."""
    if significant:
        return b
    if not possible:
        return f"cannot be significant (n = {int(n)}: smallest p Holm {min_p_holm:.3g})"
    return f"({b})" if b else "–"


def needed_pairs(m: int, alpha: float) -> int:
    """Smallest n for which m exact two-sided Wilcoxon tests can reach Holm p < alpha."""
    from cfgen.report.tables import min_p

    n = 1
    while max(m, 1) * min_p(n) >= alpha:
        n += 1
    return n


def wilcoxon_queries_frame(report: Report) -> pd.DataFrame:
    w = report.wilcoxon_queries
    if w.empty:
        return pd.DataFrame(
            columns=[
                "dataset",
                "metric",
                "A vs B",
                "queries",
                "p",
                "p Holm",
                "r (rank-biserial)",
                "better",
            ]
        )
    return pd.DataFrame(
        {
            "dataset": w["dataset"],
            "metric": [
                _metric_header(m, d) for m, d in zip(w["metric"], w["direction"], strict=True)
            ],
            "A vs B": [f"{a} vs {b}" for a, b in zip(w["method_a"], w["method_b"], strict=True)],
            "queries": w["n_queries"].astype(int),
            "median diff": [fmt_num(v) for v in w["median_diff"]],
            "p": [fmt_p(v) for v in w["p"]],
            "p Holm": [fmt_p(v) for v in w["p_holm"]],
            "r (rank-biserial)": [fmt_num(v, 2) for v in w["effect_size"]],
            "better": [
                "–" if not t else _better(b, s, c, n, mp)
                for b, s, t, c, n, mp in zip(
                    w["better"],
                    w["significant"],
                    w["tested"],
                    w["can_be_significant"],
                    w["n_queries"],
                    w["min_p_holm"],
                    strict=True,
                )
            ],
        }
    )


def query_counts_frame(report: Report) -> pd.DataFrame:
    """Metrics × pairs: 'A better / B better / n.s.' datasets in the per-query tests."""
    q = report.query_test_counts
    if q.empty:
        return pd.DataFrame(columns=["metric"])
    pairs = list(dict.fromkeys(zip(q["method_a"], q["method_b"], strict=True)))
    recs = []
    for m, g in q.groupby("metric", sort=False):
        rec = {"metric": _metric_header(m, _direction(report, m))}
        for a, b in pairs:
            row = g[(g["method_a"] == a) & (g["method_b"] == b)]
            r = row.iloc[0] if len(row) else None
            rec[f"{a} vs {b}"] = (
                "–"
                if r is None or not r["tested"]
                else f"{int(r['a_better'])} / {int(r['b_better'])} / {int(r['not_significant'])}"
            )
        recs.append(rec)
    return pd.DataFrame(recs, columns=["metric", *[f"{a} vs {b}" for a, b in pairs]])


def runs_frame(report: Report) -> pd.DataFrame:
    r = report.runs
    return pd.DataFrame(
        {
            "dataset": r["dataset"],
            "method": r["method"],
            "queries": r["n_queries"].astype(int),
            "tasks": r["n_tasks"].astype(int),
            "failed": r["n_failed"].astype(int),
            "timed out": r["n_timed_out"].astype(int),
            "test acc.": [fmt_num(v) for v in r["test_accuracy"]],
            "bounds s": [fmt_num(v) for v in r["bounds_seconds"]],
            "wall s": [fmt_num(v, 1) for v in r["wall_seconds"]],
        }
    )


def sections(report: Report) -> dict[str, tuple[str, str]]:
    """name → (Markdown, LaTeX) for every table file of the report."""
    comp, bold = comparison_frames(report)
    out: dict[str, tuple[str, str]] = {}
    out["comparison"] = (
        markdown(markdown_bold(comp, bold)),
        latex(
            comp,
            caption="Mean ± std over queries per dataset and method (best in bold; "
            "failed: failed/total tasks, t/o: over the time limit).",
            label="tab:comparison",
            bold=bold,
            group_column="dataset",
        ),
    )
    s = summary_frame(report)
    out["summary"] = (
        markdown(s),
        latex(
            s,
            caption="Wins–losses–ties of A over B across "
            "datasets (win rate: wins / (wins + losses)).",
            label="tab:wins",
        ),
    )
    w = winners_frame(report)
    wc = winner_counts_frame(report)
    out["winners"] = (
        markdown(w) + "\n" + markdown(wc),
        latex(w, caption="Best method per dataset and metric.", label="tab:winners")
        + latex(
            wc, caption="Datasets won outright per metric and method.", label="tab:winner-counts"
        ),
    )
    wx = wilcoxon_frame(report)
    out["wilcoxon"] = (
        markdown(wx),
        latex(
            wx,
            caption="Wilcoxon signed-rank tests over datasets (two-sided), Holm-adjusted across "
            "the metrics; median diff and r oriented so positive favours A.",
            label="tab:wilcoxon",
        ),
    )
    wq = wilcoxon_queries_frame(report)
    out["wilcoxon_queries"] = (
        markdown(wq),
        latex(
            wq,
            caption=f"Per-dataset Wilcoxon signed-rank tests over queries (n ≥ "
            f"{report.min_queries}), Holm-adjusted across the metrics.",
            label="tab:wilcoxon-queries",
            group_column="dataset",
        ),
    )
    rf = runs_frame(report)
    out["runs"] = (
        markdown(rf),
        latex(
            rf, caption="Runs: queries, tasks, failures.", label="tab:runs", group_column="dataset"
        ),
    )
    return out


def _setup_lines(report: Report) -> list[str]:
    r = report.runs
    lines = [
        f"- {count(len(report.runset.runs), 'run')}: {count(len(report.datasets), 'dataset')} × "
        f"{count(len(report.methods), 'method')} ({', '.join(report.methods)})",
        f"- grouping: {report.runset.grouping}",
        "- tests: "
        + (
            f"{report.reference} against every other method"
            if report.reference
            else "every pair of methods"
        ),
        "- read from: " + ", ".join(f"`{p}`" for p in report.runset.roots),
    ]
    if not r.empty:
        q = sorted(set(int(v) for v in r["n_queries"]))
        ks = sorted({none_text(v) for v in r["k"]})
        reps = sorted({none_text(v) for v in r["replications"]})
        limits = sorted({none_text(v) for v in r["time_limit"]})
        lines += [
            f"- queries per dataset: {', '.join(map(str, q))} (the same queries for every "
            "method); k = "
            + ", ".join(ks)
            + "; replications: "
            + ", ".join(reps)
            + "; time limit per query (s): "
            + ", ".join(limits),
            f"- tasks: {int(r['n_tasks'].sum())}, failed: {int(r['n_failed'].sum())} "
            f"(over the time limit: {int(r['n_timed_out'].sum())}, errors: "
            f"{int(r['n_errors'].sum())})",
        ]
    lines.append(
        f"- tested metrics (Holm family): {', '.join(report.metrics)}; alpha = {report.alpha}"
    )
    return lines


def legend_table(report: Report) -> pd.DataFrame:
    """metric, ↑/↓, meaning for every metric the report shows."""
    from cfgen.report.legend import legend_frame

    return legend_frame(report.shown)


def _power_note(report: Report) -> str:
    """How many datasets a test needs before it can be significant at all."""
    m = len(report.metrics)
    need = needed_pairs(m, report.alpha)
    have = len(report.datasets)
    text = (
        f"An exact two-sided test over n pairs cannot give p below 2/2^n, so with {m} "
        f"metrics in the Holm family at alpha = {report.alpha} it needs n ≥ {need} "
        "datasets with a value for both methods"
    )
    if have < need:
        text += (
            f": with {have} dataset(s) no test here can be significant, whatever the "
            "data (the table says so)"
        )
    return text + "."


def full_report(report: Report, image: str | None = "winners.png", heading: str = "#") -> str:
    """Every table on one Markdown page (``heading`` is the top level's ``#`` prefix)."""
    h1, h2 = heading, heading + "#"
    secs = sections(report)
    parts = [
        f"{h1} Counterfactual methods compared\n",
        f"Generated by `python -m cfgen.report` on {report.created}.\n",
        "\n".join(_setup_lines(report)) + "\n",
        f"{h2} Comparison\n",
        "Mean ± standard deviation over queries (replications averaged per query first); "
        "the best mean per dataset and metric in bold. `failed`: failed / total tasks "
        "(`t/o`: over the time limit). 95% confidence intervals are in `comparison.csv`. "
        "`runtime` is search time only; `runtime_with_bounds` adds the class-bound mining "
        "time spread over the run's queries (only for methods whose summary.json says "
        "`uses_bounds`).\n",
        secs["comparison"][0],
        f"{h2} Metrics\n",
        "What each column measures (↑ larger is better, ↓ smaller is better; definitions "
        "in `docs/metrics.md`).\n",
        markdown(legend_table(report)),
    ]
    if len(report.methods) < 2:
        parts += [
            "Only one method: nothing to compare (no win counts, winners or tests).\n",
            f"{h2} Runs\n",
            secs["runs"][0],
            f"{h2} Checks\n",
            "\n".join(f"- {w}" for w in report.warnings) + "\n"
            if report.warnings
            else "No warnings.\n",
        ]
        return "\n".join(parts)
    parts += [
        f"{h2} Win counts\n",
        "Per metric and pair of methods A vs B: on how many datasets A's mean beats B's "
        "(wins–losses–ties); the win rate wins / (wins + losses) leaves ties out.\n",
        secs["summary"][0],
        f"{h2} Best method per dataset\n",
    ]
    if image:
        parts.append(f"![winner per dataset and metric]({image})\n")
    parts += [
        secs["winners"][0],
        f"{h2} Wilcoxon signed-rank tests over datasets\n",
        "Paired by dataset (one mean per dataset and method), two-sided, zero differences "
        "dropped; `p Holm` is Holm-adjusted across the metrics within each pair; `median "
        "diff` and `r` (matched-pairs rank-biserial) are oriented so that positive favours "
        "A; `better` is in parentheses when not significant at "
        f"alpha = {report.alpha} after Holm. {_power_note(report)}\n",
        secs["wilcoxon"][0],
        f"{h2} Per-dataset tests over queries\n",
        f"Within each dataset, paired by query (n ≥ {report.min_queries} queries with a "
        "value for both methods), Holm-adjusted across the metrics within the dataset: "
        "number of datasets where A is significantly better / B is significantly better / "
        "no significant difference (– : no dataset had enough queries). Every test is in "
        "`wilcoxon_queries.csv`. With "
        f"{len(report.metrics)} metrics per family a test needs at least "
        f"{needed_pairs(len(report.metrics), report.alpha)} queries before it can be "
        "significant at all.\n",
        markdown(query_counts_frame(report)),
        f"{h2} Runs\n",
        secs["runs"][0],
        f"{h2} Checks\n",
    ]
    if report.warnings:
        parts.append("\n".join(f"- {w}" for w in report.warnings) + "\n")
    else:
        parts.append(
            "Same queries, forest, k, rules and time limit for every method on every "
            "dataset; no run skipped.\n"
        )
    return "\n".join(parts)
