"""``python -m cfgen.sweep MULTIRUN_DIR [--json] [--no-scheduler]``: the sweep summary."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from cfgen.errors import ConfigError
from cfgen.sweep.forensics import format_summary, summarize, write_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cfgen.sweep",
        description="Which jobs of a cfgen multirun finished and which failed "
                    "(exit 0 only if all finished).")
    parser.add_argument("sweep_dir", type=Path, help="the multirun directory (hydra.sweep.dir)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-scheduler", action="store_true",
                        help="do not ask Slurm (sacct) about jobs without results")
    args = parser.parse_args(argv)
    try:
        reports = summarize(args.sweep_dir, query_scheduler=not args.no_scheduler)
    except ConfigError as exc:
        print(f"cfgen.sweep: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([asdict(r) for r in reports], indent=2))
    else:
        print(format_summary(args.sweep_dir, reports))
    write_summary(args.sweep_dir, reports)
    return 0 if reports and all(r.finished for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
