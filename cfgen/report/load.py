"""Reading what runs wrote: finding finished run directories, their rows and their settings.

A *run* is one Hydra run directory (a multirun holds one per job). It counts as finished only
when ``summary.json`` exists; directories that look like runs without one are listed as skipped.
Each run contributes its ``metrics.csv`` rows, labelled with the run's dataset and *method label*.
By default (``label_by=None``) the label is ``method.name`` plus every override key (from each
run's ``.hydra/overrides.yaml``) whose value differs between runs of the same dataset, written
``key=value`` (``dpg_ga/population_size=20``), so a sweep never collapses into one row;
``label_by`` names the keys explicitly (their values joined by ``/``, e.g.
``("method.name", "constraints.mode")`` → ``dpg_ga/none``). ``RunSet.grouping`` says which.

Which methods used the class bounds comes from each run's ``summary.json`` (``uses_bounds``), or
else from the method class named by ``method_target`` / the config's ``method._target_``
(its ``needs_bounds``); nothing here knows a method by name.

Failures: a row whose ``error`` is non-empty or whose ``timed_out`` is true is a failed task. Its
count-like metrics (``perc_*``, ``nbr_*``) are 0 when the run left them empty (a method that failed
found nothing); a timed-out row keeps its runtime (the limit; the run's ``method.time_limit`` when
it left it empty); a crashed row's runtime is dropped (a crash is not a fast search); every other
metric of a failed row stays empty (undefined without counterfactuals).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from cfgen.store import CONFIG, METRICS, SUMMARY

#: columns of metrics.csv that identify a row rather than measure it
KEY_COLUMNS = ("method", "dataset", "query", "target", "combination", "replication")
#: columns that are neither keys nor metrics
INFO_COLUMNS = ("error", "timed_out", "reason", "generations", "final_fitness")
#: metric prefixes that count something: 0 for a failed task when the run left them empty
COUNT_PREFIXES = ("perc_", "nbr_")

DEFAULT_LABEL_BY = ("method.name",)
#: override keys never used as labels (bookkeeping; the method's name is the label's first part)
LABEL_EXCLUDE = (
    "method",
    "method.name",
    "experiment_params.max_workers",
    "experiment_params.resume",
    "logger",
    "output",
)


class ReportError(Exception):
    """Bad input to the report (no runs, unknown metric, ...): one line for the user."""


@dataclass
class Run:
    """One finished run directory."""

    path: Path
    dataset: str
    label: str  # the "method" column of every table
    method: str  # config method.name (what the run actually ran)
    summary: dict[str, Any]
    config: dict[str, Any]
    metrics: pd.DataFrame
    mtime: float = 0.0
    overrides: dict[str, str] = field(default_factory=dict)
    choices: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        """A dotted key of the run's resolved config (``None``-safe)."""
        node: Any = self.config
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    @property
    def queries(self) -> list[int]:
        return sorted(int(q) for q in self.metrics["query"].unique())

    @property
    def uses_bounds(self) -> bool:
        """The method searched with the mined class bounds (``summary.json`` ``uses_bounds``,
        else the ``needs_bounds`` of its ``_target_`` class; unknown: ``False``)."""
        known = self.uses_bounds_known
        return bool(known) if known is not None else False

    @property
    def uses_bounds_known(self) -> bool | None:
        v = self.summary.get("uses_bounds")
        if v is not None:
            return bool(v)
        target = self.summary.get("method_target") or self.get("method._target_")
        if not target:
            return None
        try:
            from hydra.utils import get_class

            needs = bool(getattr(get_class(str(target)), "needs_bounds", False))
        except Exception:  # noqa: BLE001 - an unimportable class: unknown
            return None
        mode = (
            self.summary.get("bounds_mode")
            or self.get("method.bounds.mode")
            or self.get("constraints.mode")
        )
        return needs and mode not in (None, "none")

    def value(self, key: str) -> str:
        """``key`` of this run as the override that set it, else the config group chosen, else
        the resolved config value (``none`` for a missing one)."""
        if key in self.overrides:
            return self.overrides[key]
        if key in self.choices:
            return str(self.choices[key])
        v = self.get(key)
        return "none" if v is None else str(v)


@dataclass
class RunSet:
    """Every run read, plus what was skipped and why (warnings are shown in the report)."""

    runs: list[Run]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)
    grouping: str = ""  # how runs were labelled (shown in the report and by the CLI)
    label_keys: list[str] = field(default_factory=list)

    @property
    def datasets(self) -> list[str]:
        return sorted({r.dataset for r in self.runs})

    @property
    def methods(self) -> list[str]:
        return order_methods([r.label for r in self.runs])


def order_methods(labels: Iterable[str], reference: str | None = None) -> list[str]:
    """``reference`` first, then the labels in the order given (the runs' order: a sweep's job
    order), each once."""
    seen = list(dict.fromkeys(labels))
    return ([reference] if reference in seen else []) + [m for m in seen if m != reference]


# ------------------------------------------------------------------------------------ discovery


def _natural(p: Path) -> list:
    """Path parts with digit runs as numbers: job 2 before job 10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(p))]


def find_run_dirs(paths: Sequence[str | Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Finished run dirs (holding summary.json) under ``paths``, and unfinished ones skipped."""
    finished: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for p in map(Path, paths):
        if not p.exists():
            raise ReportError(f"{p} does not exist")
        if not p.is_dir():
            raise ReportError(f"{p} is not a directory (expected a run or multirun directory)")
        found = {s.parent for s in p.rglob(SUMMARY)}
        candidates = {m.parent for m in p.rglob(METRICS)} | {
            h.parent for h in p.rglob(".hydra") if h.is_dir() and (h / "config.yaml").exists()
        }
        # a multirun root holds .hydra-less multirun.yaml; its jobs are the candidates
        for c in sorted(candidates - found):
            if c.name == "report" or any(f == c or f in c.parents for f in found):
                continue
            skipped.append((c, "unfinished: no summary.json"))
        finished.extend(sorted(found, key=_natural))
    seen: set[Path] = set()
    unique = []
    for d in finished:
        if d.resolve() not in seen:
            seen.add(d.resolve())
            unique.append(d)
    return unique, skipped


def _read_config(run_dir: Path) -> dict[str, Any]:
    from omegaconf import OmegaConf

    for path in (run_dir / CONFIG, run_dir / ".hydra" / "config.yaml"):
        if path.exists():
            try:
                cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
            except Exception:  # noqa: BLE001 - unreadable config: label falls back to summary
                continue
            return {str(k): v for k, v in cfg.items()} if isinstance(cfg, dict) else {}
    return {}


def _bool_column(col: pd.Series) -> pd.Series:
    if col.dtype == bool:
        return col
    return col.astype(str).str.strip().str.lower().isin(("true", "1", "1.0", "yes"))


def _normalise(frame: pd.DataFrame, run: Run) -> pd.DataFrame:
    """Keys as ints, ``error`` as str, ``failed`` / ``timed_out`` as bools, failure fills."""
    f = frame.copy()
    for col in ("target", "combination", "replication"):
        if col not in f:
            f[col] = 0
    missing = [c for c in ("query",) if c not in f]
    if missing:
        raise ReportError(f"{run.path / METRICS} has no {missing[0]!r} column")
    for col in ("query", "target", "combination", "replication"):
        f[col] = pd.to_numeric(f[col], errors="coerce").fillna(-1).astype(int)
    errors = f["error"] if "error" in f else pd.Series([None] * len(f), index=f.index)
    f["error"] = pd.Series(["" if pd.isna(v) else str(v) for v in errors], index=f.index, dtype=str)
    f["timed_out"] = _bool_column(f["timed_out"]) if "timed_out" in f else False
    f["failed"] = (f["error"].str.len() > 0) | f["timed_out"]
    f["dataset"] = run.dataset
    f["method"] = run.label
    # metric columns: numeric, failures filled where a failure has an obvious value
    for col in metric_columns(f):
        f[col] = pd.to_numeric(f[col], errors="coerce").astype(float)
        if col.startswith(COUNT_PREFIXES):
            f.loc[f["failed"] & f[col].isna(), col] = 0.0
    # a task that crashed has no meaningful search time: it must not look like the fastest
    crashed = f["error"].str.len() > 0
    if "runtime" in f:
        f.loc[crashed & ~f["timed_out"], "runtime"] = np.nan
    limit = run.get("method.time_limit")
    if "runtime" in f and limit is not None:
        f.loc[f["timed_out"] & f["runtime"].isna(), "runtime"] = float(limit)
    # both accountings of time: search only, and search + bound mining amortised per query
    if "runtime" in f:
        extra = 0.0
        if run.uses_bounds:
            n_q = max(1, f["query"].nunique())
            extra = float(run.summary.get("bounds_seconds") or 0.0) / n_q
        f["runtime_with_bounds"] = f["runtime"] + extra
    return f


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """Columns of a metrics frame that hold metrics (numeric, not keys or bookkeeping)."""
    skip = set(KEY_COLUMNS) | set(INFO_COLUMNS) | {"failed"}
    out = []
    for col in frame.columns:
        if col in skip:
            continue
        if pd.api.types.is_bool_dtype(frame[col]):
            continue
        if pd.api.types.is_numeric_dtype(frame[col]) or frame[col].isna().all():
            out.append(col)
    return out


def _read_yaml(path: Path) -> Any:
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception:  # noqa: BLE001 - unreadable Hydra file: no auto labels from it
        return None


def read_overrides(run_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The run's command-line overrides (``.hydra/overrides.yaml``: ``key=value``, ``+``/``++``
    prefixes dropped) and the config groups Hydra chose (``hydra.runtime.choices``)."""
    over: dict[str, str] = {}
    items = (
        _read_yaml(run_dir / ".hydra" / "overrides.yaml")
        if (run_dir / ".hydra" / "overrides.yaml").exists()
        else None
    )
    for item in items or []:
        key, sep, value = str(item).partition("=")
        if sep and not key.startswith("~"):
            over[key.lstrip("+")] = value
    choices: dict[str, str] = {}
    hy = (
        _read_yaml(run_dir / ".hydra" / "hydra.yaml")
        if (run_dir / ".hydra" / "hydra.yaml").exists()
        else None
    )
    if isinstance(hy, dict):
        ch = ((hy.get("hydra") or {}).get("runtime") or {}).get("choices") or {}
        choices = {str(k): str(v) for k, v in ch.items() if not str(k).startswith("hydra")}
    return over, choices


def read_run(run_dir: Path, label_by: Sequence[str] | None = DEFAULT_LABEL_BY) -> Run:
    """One finished run: summary, config, normalised metrics rows; labelled by ``label_by``
    (``None``: the method's name only; :func:`load_runs` then adds the swept keys)."""
    summary = json.loads((run_dir / SUMMARY).read_text())
    config = _read_config(run_dir)
    metrics_path = run_dir / METRICS
    if not metrics_path.exists():
        raise ReportError(f"{run_dir} has summary.json but no metrics.csv")
    frame = pd.read_csv(metrics_path)
    method = (config.get("method") or {}).get("name") or summary.get("method")
    if method is None and "method" in frame and len(frame):
        method = str(frame["method"].iloc[0])
    dataset = None
    if "dataset" in frame and len(frame) and frame["dataset"].notna().any():
        dataset = str(frame["dataset"].dropna().iloc[0])
    dataset = dataset or summary.get("dataset") or (config.get("dataset") or {}).get("name")
    if method is None or dataset is None:
        raise ReportError(f"{run_dir}: cannot tell its method/dataset (no config.yaml, summary)")
    over, choices = read_overrides(run_dir)
    run = Run(
        run_dir,
        str(dataset),
        str(method),
        str(method),
        summary,
        config,
        frame,
        mtime=os.path.getmtime(run_dir / SUMMARY),
        overrides=over,
        choices=choices,
    )
    parts = []
    for key in label_by or ("method.name",):
        value = run.get(key)
        if value is None and key == "method.name":
            value = method
        parts.append(str(value))
    run.label = "/".join(parts)
    run.metrics = _normalise(frame, run)
    return run


def swept_keys(runs: Sequence[Run]) -> list[str]:
    """Override keys whose value differs between two runs of the same dataset (first seen order).

    Keys that only change with the dataset (``dataset=…``, the paper forest) are not swept in
    this sense: they are the dataset dimension of every table.
    """
    keys = list(dict.fromkeys(k for r in runs for k in r.overrides))
    by_dataset: dict[str, list[Run]] = {}
    for r in runs:
        by_dataset.setdefault(r.dataset, []).append(r)
    out = []
    for k in keys:
        if k in LABEL_EXCLUDE or k.startswith(("hydra.", "logger.", "output.")):
            continue
        if any(len({r.value(k) for r in group}) > 1 for group in by_dataset.values()):
            out.append(k)
    return out


def _short_keys(keys: Sequence[str]) -> dict[str, str]:
    """The last part of each dotted key, or the whole key where two would collide."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last, strict=True)}


def _relabel(run: Run, label: str) -> None:
    run.label = label
    run.metrics = run.metrics.assign(method=label)


def load_runs(paths: Sequence[str | Path], label_by: Sequence[str] | None = None) -> RunSet:
    """Every finished run under ``paths`` (run or multirun dirs, searched recursively).

    ``label_by=None`` labels by the method's name plus the swept override keys (see the module
    docstring). Two runs with the same dataset and label: the newer (summary.json mtime) wins,
    with a warning.
    """
    dirs, skipped = find_run_dirs(paths)
    read: list[Run] = []
    for d in dirs:
        try:
            read.append(read_run(d, label_by))
        except (ValueError, OSError, json.JSONDecodeError) as exc:
            skipped.append((d, f"unreadable: {exc}"))
    label_keys = list(label_by) if label_by else ["method.name"]
    if label_by is None:
        auto = swept_keys(read)
        short = _short_keys(auto)
        for r in read:
            if auto:
                _relabel(r, "/".join([r.method, *(f"{short[k]}={r.value(k)}" for k in auto)]))
        label_keys += auto
        grouping = "method label = method.name" + (
            " + swept " + ", ".join(auto) + " (from each run's .hydra/overrides.yaml)"
            if auto
            else " (no key other than the dataset differs between runs)"
        )
    else:
        grouping = "method label = " + " / ".join(label_by) + " (--label-by)"
    runs: dict[tuple[str, str], Run] = {}
    warnings: list[str] = []
    for run in read:
        key = (run.dataset, run.label)
        old = runs.get(key)
        if old is not None:
            keep, drop = (run, old) if run.mtime >= old.mtime else (old, run)
            warnings.append(
                f"{run.dataset} × {run.label}: two runs, using the newer {keep.path} "
                f"(ignoring {drop.path}); --label-by KEY tells them apart"
            )
            runs[key] = keep
        else:
            runs[key] = run
    unknown = [r for r in runs.values() if r.uses_bounds_known is None]
    if unknown:
        warnings.append(
            f"{len(unknown)} run(s) do not say whether their method used the class "
            "bounds (no uses_bounds in summary.json, no method._target_): "
            "runtime_with_bounds = runtime for them (e.g. "
            f"{unknown[0].path})"
        )
    for path, why in skipped:
        warnings.append(f"skipped {path}: {why}")
    return RunSet(
        list(runs.values()), skipped, warnings, [Path(p) for p in paths], grouping, label_keys
    )


# ------------------------------------------------------------------------------------ fairness

#: settings that must agree across the methods compared on one dataset
SAME_SETTINGS = (
    "dataset",
    "model",
    "experiment_params.seed",
    "experiment_params.num_counterfactuals",
    "experiment_params.target_class",
    "experiment_params.rules",
    "experiment_params.num_combinations_to_test",
    "method.time_limit",
)


def fairness_checks(runs: Sequence[Run]) -> list[str]:
    """Per dataset: the compared methods saw the same queries, forest, k, rules and time limit."""
    problems: list[str] = []
    by_dataset: dict[str, list[Run]] = {}
    for r in runs:
        by_dataset.setdefault(r.dataset, []).append(r)
    for dataset, group in sorted(by_dataset.items()):
        if len(group) < 2:
            continue
        group = sorted(group, key=lambda r: r.label)
        first = group[0]
        for key in SAME_SETTINGS:
            values = {r.label: r.get(key) for r in group}
            if any(v != values[first.label] for v in values.values()):
                shown = ", ".join(f"{lbl}={v!r}" for lbl, v in values.items())
                problems.append(f"{dataset}: {key} differs between methods ({shown})")
        accs = {r.label: r.summary.get("test_accuracy") for r in group}
        known = [a for a in accs.values() if a is not None]
        if known and any(not math.isclose(a, known[0], rel_tol=1e-12) for a in known):
            problems.append(
                f"{dataset}: test accuracy differs between methods ({accs}): "
                "not the same fitted forest"
            )
        queries = {r.label: set(r.queries) for r in group}
        common = set.intersection(*queries.values())
        for lbl, qs in queries.items():
            extra = qs - common
            if extra:
                problems.append(
                    f"{dataset}: {lbl} explained {len(extra)} queries the others did "
                    f"not ({sorted(extra)[:5]}…): compared on the {len(common)} "
                    "common queries"
                )
    return problems


def rows(runset: RunSet, common_queries: bool = True) -> pd.DataFrame:
    """All runs' normalised metric rows; by default only queries every method explained."""
    if not runset.runs:
        return pd.DataFrame()
    frames = []
    by_dataset: dict[str, list[Run]] = {}
    for r in runset.runs:
        by_dataset.setdefault(r.dataset, []).append(r)
    for group in by_dataset.values():
        keep = set.intersection(*(set(r.queries) for r in group)) if common_queries else None
        for r in group:
            f = r.metrics
            if keep is not None:
                f = f[f["query"].isin(keep)]
            frames.append(f)
    out = pd.concat(frames, ignore_index=True, sort=False)
    return out


def run_table(runset: RunSet, frame: pd.DataFrame) -> pd.DataFrame:
    """Per dataset × method: queries, tasks, failures, time-outs, timings, where the run is."""
    recs = []
    for r in runset.runs:
        f = frame[(frame["dataset"] == r.dataset) & (frame["method"] == r.label)]
        recs.append(
            {
                "dataset": r.dataset,
                "method": r.label,
                "n_queries": int(f["query"].nunique()),
                "n_tasks": len(f),
                "n_failed": int(f["failed"].sum()),
                "n_timed_out": int(f["timed_out"].sum()),
                "n_errors": int((f["error"].str.len() > 0).sum()),
                "time_limit": r.get("method.time_limit"),
                "k": r.get("experiment_params.num_counterfactuals"),
                "replications": r.get("experiment_params.num_replications"),
                "test_accuracy": r.summary.get("test_accuracy"),
                "model_seconds": r.summary.get("model_seconds"),
                "bounds_seconds": r.summary.get("bounds_seconds") if r.uses_bounds else 0.0,
                "wall_seconds": r.summary.get("wall_seconds"),
                "run_dir": str(r.path),
            }
        )
    if not recs:
        return pd.DataFrame()
    out = pd.DataFrame(recs)
    methods = order_methods(out["method"])
    out["_m"] = out["method"].map({m: i for i, m in enumerate(methods)})
    return out.sort_values(["dataset", "_m"]).drop(columns="_m").reset_index(drop=True)
