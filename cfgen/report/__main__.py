"""``python -m cfgen.report RUN_OR_MULTIRUN_DIR… [--out DIR]``: the paper tables from run dirs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cfgen.report.load import ReportError

EPILOG = """\
examples:
  python -m cfgen.report outputs/paper/latest
  python -m cfgen.report outputs/multirun/2026-01-01/12-00-00 --out /tmp/report --no-plot
  python -m cfgen.report RUNS --label-by method.name,constraints.mode   # an ablation
  python -m cfgen.report outputs/paper/latest --doc docs/paper.md         # refresh the doc
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m cfgen.report",
        description="Comparison tables, win counts, winner heatmap and Wilcoxon/Holm tests from "
        "the files runs wrote (metrics.csv, summary.json, config.yaml).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "dirs",
        nargs="+",
        metavar="RUN_OR_MULTIRUN_DIR",
        help="run or multirun directories (searched recursively for finished runs)",
    )
    ap.add_argument(
        "--out", metavar="DIR", help="report directory (default: report/ under the first directory)"
    )
    ap.add_argument(
        "--metrics",
        metavar="M1,M2",
        help="tested metrics (default: the paper's eight present in the runs)",
    )
    ap.add_argument(
        "--reference",
        default=None,
        help="method label tested against every other one (default: the first run's)",
    )
    ap.add_argument("--all-pairs", action="store_true", help="test every pair of methods")
    ap.add_argument(
        "--label-by",
        default=None,
        metavar="KEY1,KEY2",
        help="config keys that name a method in the tables (default: method.name "
        "plus every override key that differs between runs of a dataset)",
    )
    ap.add_argument("--alpha", type=float, default=0.05, help="significance level (0.05)")
    ap.add_argument(
        "--min-queries",
        type=int,
        default=6,
        help="per-dataset tests over queries need at least this many (6)",
    )
    ap.add_argument("--no-plot", action="store_true", help="skip the heatmap PNG")
    ap.add_argument(
        "--doc",
        metavar="PATH",
        help="also fill the generated block of this Markdown file (docs/paper.md)",
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from cfgen.report import build_report, write_report

    out = Path(args.out) if args.out else Path(args.dirs[0]) / "report"
    metrics = [m for m in args.metrics.split(",") if m] if args.metrics else None
    try:
        if not 0 < args.alpha < 1:
            raise ReportError(f"--alpha {args.alpha}: expected a value in (0, 1)")
        report = build_report(
            args.dirs,
            metrics=metrics,
            reference=args.reference,
            label_by=([k for k in args.label_by.split(",") if k] if args.label_by else None),
            alpha=args.alpha,
            min_queries=args.min_queries,
            all_pairs=args.all_pairs,
        )
        written = write_report(report, out, plot=not args.no_plot)
    except ReportError as exc:
        print(f"cfgen.report: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"grouping: {report.runset.grouping}")
    from cfgen.report.markdown import count

    print(
        f"{count(len(report.runset.runs), 'run')}: {count(len(report.datasets), 'dataset')} × "
        f"{count(len(report.methods), 'method')} ({', '.join(report.methods)}); "
        f"{len(report.rows)} tasks, {int(report.rows['failed'].sum())} failed"
    )
    print(f"report written to {out}/")
    for name in (
        "report.html",
        "report.md",
        "comparison.csv",
        "summary.csv",
        "winners.csv",
        "winners.png",
        "wilcoxon.csv",
        "wilcoxon_queries.csv",
    ):
        if name in written:
            print(f"  {written[name]}")
    print("  (+ the same tables as .md and .tex, runs.csv, winner_counts.csv, warnings.txt)")
    if args.doc:
        from cfgen.report.doc import DocError, fill_doc

        try:
            print(f"tables written into {fill_doc(out, args.doc)}")
        except DocError as exc:
            print(f"cfgen.report: error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
