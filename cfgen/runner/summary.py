"""The per-combination console table printed at the end of a run."""

from __future__ import annotations

from typing import Sequence

from cfgen.plan import Combinations, Task
from cfgen.runner.task import TaskResult


def combination_table(
    tasks: Sequence[Task],
    results: Sequence[TaskResult],
    combinations: Combinations | None = None,
    k: int | None = None,
) -> str:
    """Per actionability combination: tasks, failed, success rate (≥ 1 counterfactual),
    complete rate (k counterfactuals) and mean counterfactuals per task."""
    by_index = {r.index: r for r in results}
    rows: dict[int, dict] = {}
    for t in tasks:
        r = by_index.get(t.index)
        row = rows.setdefault(t.combination, {"tasks": 0, "failed": 0, "success": 0,
                                              "complete": 0, "cfs": 0})
        row["tasks"] += 1
        if r is None or r.error is not None:
            row["failed"] += 1
            continue
        n = r.explanation.n_found
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
        cells = [str(c), str(n), str(row["failed"]), f"{row['success'] / n:.3f}",
                 f"{row['complete'] / n:.3f}" if k is not None else "-",
                 f"{row['cfs'] / n:.2f}"]
        if combinations is not None:
            cells.append(combinations.label(c))
        lines.append(cells)
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(header)]

    def fmt(cells: list[str]) -> str:
        last_left = combinations is not None
        return "  ".join(c.ljust(w) if i == len(cells) - 1 and last_left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    return "\n".join([fmt(header), *(fmt(r) for r in lines)])
