"""Sweep forensics: which jobs of a multirun finished, which failed, and why.

A job counts as finished only when its run directory holds ``summary.json`` (written after its
results) and nothing recorded a failure. Everything else is failed (or still running), whatever
the scheduler says: hydra-submitit-launcher jobs whose experiment raised are COMPLETED for Slurm,
since the Python function returned a failed Hydra JobReturn. The evidence read, per job:

* the jobs the sweep planned (``multirun.yaml``, expanded the way Hydra's basic sweeper does);
* each run directory: ``summary.json``, ``.hydra/`` and ``job.json`` (written by
  :class:`cfgen.sweep.callback.SweepCallback` when it is registered: job number, Slurm ids,
  CPUs, status, error);
* submitit's folder (``.submitit/<job id>/``): the job's result pickle (an error traceback, or a
  Hydra JobReturn with its status) and, for jobs without a result, the Slurm state from ``sacct``.

Use::

    python -m cfgen.sweep MULTIRUN_DIR [--json]   # exit 0 only if every job finished

or register the callback (conf/config.yaml, ``hydra.callbacks``) to get the summary printed at
the end of every ``-m`` run, also when Hydra stops early because a job failed.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cfgen.errors import ConfigError

JOB_FILE = "job.json"
SUMMARY = "summary.json"  # cfgen.store.SUMMARY; not imported, to keep the Hydra callback light
SWEEP_SUMMARY = "sweep_summary.json"
#: Slurm states of jobs that may still produce results
ACTIVE_STATES = (
    "PENDING",
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "REQUEUED",
    "RESIZING",
    "SUSPENDED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "SIGNALING",
    "STAGE_OUT",
)


@dataclass
class JobReport:
    """One job of a sweep, as far as the files (and the scheduler) tell."""

    num: int | None
    status: str = "failed"  # finished | failed | running
    reason: str = ""
    overrides: list[str] = field(default_factory=list)
    run_dir: str | None = None
    scheduler_id: str | None = None
    scheduler_state: str | None = None
    validity: float | None = None
    n_tasks: int | None = None
    n_failed_tasks: int | None = None

    @property
    def finished(self) -> bool:
        return self.status == "finished"


# ----------------------------------------------------------------------------- evidence -------


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _one_line(text: Any, limit: int = 200) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def planned_jobs(sweep_dir: Path) -> dict[int, list[str]]:
    """Job number → overrides, as Hydra's basic sweeper expands ``multirun.yaml`` (else {})."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return {}
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from omegaconf import OmegaConf

        cfg = OmegaConf.load(path)
        hc = cfg.hydra
        if "BasicSweeper" not in str(hc.sweeper.get("_target_", "")):
            return {}
        params = [f"{k}={v}" for k, v in (hc.sweeper.get("params") or {}).items()]
        task = list(hc.overrides.task)
        parsed = OverridesParser.create().parse_overrides(params + task)
        batches = BasicSweeper.split_arguments(parsed, hc.sweeper.get("max_batch_size"))
        jobs = [job for batch in batches for job in batch]
        return {i: list(o) for i, o in enumerate(jobs)}
    except Exception:  # noqa: BLE001 - the plan is extra evidence, not required
        return {}


def _job_dir(top: Path) -> Path:
    """The run directory inside a sweep's top-level entry ``top``: ``top`` itself, or the
    directory below it holding ``job.json`` or ``.hydra/`` (an override such as
    ``method/ga=quick`` puts a ``/`` into Hydra's ``override_dirname``, nesting the run dir)."""
    if (top / JOB_FILE).is_file() or (top / ".hydra").is_dir():
        return top
    marks = sorted(top.rglob(JOB_FILE), key=lambda p: len(p.parts)) or sorted(
        top.rglob(".hydra"), key=lambda p: len(p.parts)
    )
    return marks[0].parent if marks else top


def _run_dirs(sweep_dir: Path) -> dict[int, Path]:
    """Job number → run directory, for every run directory the sweep has made so far."""
    found: dict[int, Path] = {}
    for top in sorted(p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        d = _job_dir(top)
        num = None
        job = _read_json(d / JOB_FILE)
        if job and job.get("num") is not None:
            num = int(job["num"])
        elif (d / ".hydra" / "hydra.yaml").is_file():
            try:
                from omegaconf import OmegaConf

                num = int(OmegaConf.load(d / ".hydra" / "hydra.yaml").hydra.job.num)
            except Exception:  # noqa: BLE001
                num = None
        if num is None:
            head = top.name.split("_", 1)[0]
            num = int(head) if head.isdigit() else None
        if num is not None and num not in found:
            found[num] = d
    return found


@dataclass
class _Submitted:
    job_id: str
    num: int | None
    overrides: list[str]
    result: tuple[str, Any] | None  # ("success", JobReturn) / ("error", traceback) / None
    folder: Path | None = None

    def log_error(self) -> str | None:
        """The job's last error line in its stderr log (cfgen's own one-line error first)."""
        if self.folder is None:
            return None
        for log_file in sorted(self.folder.glob(f"{self.job_id}_*_log.err")):
            try:
                lines = [ln.strip() for ln in log_file.read_text(errors="replace").splitlines()]
            except OSError:
                continue
            mine = [ln for ln in lines if ln.startswith("cfgen: error:")]
            errors = mine or [ln for ln in lines if "error" in ln.lower()]
            if errors:
                return _one_line(errors[-1])
        return None


def _submitit_jobs(sweep_dir: Path) -> list[_Submitted]:
    """The jobs submitit launched for this sweep (``.submitit/<job id>/``)."""
    root = sweep_dir / ".submitit"
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        job_id = folder.name
        num, overrides = None, []
        sub = folder / f"{job_id}_submitted.pkl"
        if not sub.is_file():
            continue  # e.g. the array's own folder, holding only the submission script
        if sub.is_file():
            try:
                with sub.open("rb") as fh:
                    delayed = pickle.load(fh)
                args = delayed.args  # (overrides, "hydra.sweep.dir", job_num, job_id, state)
                overrides, num = list(args[0]), int(args[2])
            except Exception:  # noqa: BLE001
                pass
        result = None
        pickles = sorted(folder.glob(f"{job_id}_*_result.pkl"))
        if pickles:
            try:
                with pickles[0].open("rb") as fh:
                    result = pickle.load(fh)
            except Exception as exc:  # noqa: BLE001
                result = ("error", f"unreadable result pickle: {exc}")
        out.append(_Submitted(job_id, num, overrides, result, folder))
    return out


def slurm_states(job_ids: list[str], timeout: float = 15.0) -> dict[str, str]:
    """Slurm state per job id (``sacct``; empty when Slurm is not there or does not answer)."""
    job_ids = [j for j in job_ids if re.fullmatch(r"\d+(_\d+)?", j)]
    if not job_ids or shutil.which("sacct") is None:
        return {}
    try:
        proc = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    states = {}
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 2 and parts[0]:
            states[parts[0]] = parts[1].strip()
    return states


def _alive_here(job: dict) -> bool:
    """Whether the job's process (recorded in job.json, still RUNNING) lives on this host."""
    if job.get("status") != "RUNNING" or job.get("host") != socket.gethostname():
        return False
    try:
        pid = int(job["pid"])
        if pid == os.getpid():  # the job ran in this very process (basic launcher) and is over
            return False
        os.kill(pid, 0)
    except (KeyError, OSError, TypeError, ValueError):
        return False
    return True


def _job_return_error(jr: Any) -> str | None:
    """The error of a Hydra JobReturn with status FAILED (None if it completed)."""
    status = getattr(getattr(jr, "status", None), "name", None)
    if status == "COMPLETED":
        return None
    value = getattr(jr, "_return_value", None)
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {_one_line(value)}"
    return f"Hydra job status {status or 'unknown'}"


# ------------------------------------------------------------------------------ summary -------


def _identify(
    rep: JobReport, sub: _Submitted | None, run_dir: Path | None, job: dict | None
) -> None:
    """Scheduler id, overrides and run directory of one job, from whatever holds them."""
    if sub is not None:
        rep.scheduler_id = sub.job_id
        rep.overrides = rep.overrides or sub.overrides
    if job:
        rep.scheduler_id = rep.scheduler_id or job.get("scheduler_id")
        rep.overrides = rep.overrides or list(job.get("overrides") or [])
    if run_dir is not None:
        rep.run_dir = str(run_dir)
        if not rep.overrides and (run_dir / ".hydra" / "overrides.yaml").is_file():
            try:
                from omegaconf import OmegaConf

                rep.overrides = list(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))
            except Exception:  # noqa: BLE001
                pass


def _recorded_error(sub: _Submitted | None, job: dict | None) -> str | None:
    """What failed, from the most to the least specific evidence (None: nothing recorded)."""
    if job and job.get("status") == "FAILED":
        return job.get("error") or "the Hydra job failed"
    if sub is not None and sub.result is not None:
        kind, value = sub.result
        return f"job raised: {_one_line(value)}" if kind == "error" else _job_return_error(value)
    return None


def _failure_reason(
    rep: JobReport, state: str, sub: _Submitted | None, run_dir: Path | None, job: dict | None
) -> str:
    """Why a job without results (and without a recorded error) counts as failed."""
    if state:
        reason = f"Slurm state {rep.scheduler_state}"
        if state == "COMPLETED":
            reason += f", but no {SUMMARY} (reported COMPLETED, results missing)"
        logged = sub.log_error() if sub is not None else None
        if logged and not state.startswith("CANCELLED"):
            reason += f"; log: {logged}"
        return reason
    if job and job.get("status") == "RUNNING":
        return f"started on {job.get('host', '?')} but ended without {SUMMARY}"
    if run_dir is not None:
        return f"no {SUMMARY} in its run directory"
    return "never started (no run directory)"


def _job_report(
    num: int,
    planned: list[str],
    sub: _Submitted | None,
    run_dir: Path | None,
    states: dict[str, str],
) -> JobReport:
    rep = JobReport(num=num, overrides=list(planned))
    job = _read_json(run_dir / JOB_FILE) if run_dir else None
    _identify(rep, sub, run_dir, job)
    error = _recorded_error(sub, job)
    if sub is not None and sub.result is None and rep.scheduler_id in states:
        rep.scheduler_state = states[rep.scheduler_id]
    summary = _read_json(run_dir / SUMMARY) if run_dir else None
    if summary is not None and error is None:
        rep.status = "finished"
        rep.validity = summary.get("validity")
        rep.n_tasks = summary.get("n_tasks")
        rep.n_failed_tasks = summary.get("n_failed")
        if rep.n_tasks and rep.n_failed_tasks:
            rep.reason = f"{rep.n_failed_tasks} of {rep.n_tasks} tasks failed"
        return rep
    state = (rep.scheduler_state or "").split()[0] if rep.scheduler_state else ""
    if error is None and state in ACTIVE_STATES:
        rep.status, rep.reason = "running", f"Slurm state {rep.scheduler_state}"
    elif error is None and not state and job and _alive_here(job):
        rep.status, rep.reason = "running", f"process {job.get('pid')} is still running"
    else:
        rep.status = "failed"
        rep.reason = error or _failure_reason(rep, state, sub, run_dir, job)
    return rep


def summarize(sweep_dir: str | Path, query_scheduler: bool = True) -> list[JobReport]:
    """One report per job of the sweep in ``sweep_dir``, in job-number order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ConfigError(f"{sweep_dir} is not a directory: expected a multirun directory")
    planned = planned_jobs(sweep_dir)
    run_dirs = _run_dirs(sweep_dir)
    submitted = _submitit_jobs(sweep_dir)
    by_num: dict[int, _Submitted] = {s.num: s for s in submitted if s.num is not None}
    pending_ids = [s.job_id for s in submitted if s.result is None]
    states = slurm_states(pending_ids) if query_scheduler else {}
    reports = [
        _job_report(num, planned.get(num, []), by_num.get(num), run_dirs.get(num), states)
        for num in sorted(set(planned) | set(run_dirs) | set(by_num))
    ]
    for sub in submitted:  # submitit jobs whose submission pickle could not be read
        if sub.num is not None or (
            sub.result and sub.result[0] == "success" and _job_return_error(sub.result[1]) is None
        ):
            continue
        reports.append(
            JobReport(
                num=None,
                scheduler_id=sub.job_id,
                status="failed",
                reason="unknown job (unreadable submission pickle)",
            )
        )
    return reports


def _shown(run_dir: str, sweep_dir: str | Path) -> str:
    """A run directory as shown: relative to the sweep (nested ones keep their parent)."""
    try:
        return str(Path(run_dir).relative_to(sweep_dir))
    except ValueError:
        return Path(run_dir).name


def format_summary(sweep_dir: str | Path, reports: list[JobReport]) -> str:
    """A few lines for humans: one per job, failed ones named again at the end."""
    n = len(reports)
    done = sum(r.finished for r in reports)
    failed = [r for r in reports if r.status == "failed"]
    running = [r for r in reports if r.status == "running"]
    head = f"sweep {sweep_dir}: {n} job{'s' if n != 1 else ''}, {done} finished"
    head += f", {len(failed)} failed" + (f", {len(running)} still running" if running else "")
    lines = [head]
    for r in reports:
        name = _shown(r.run_dir, sweep_dir) if r.run_dir else " ".join(r.overrides) or "?"
        num = f"#{r.num}" if r.num is not None else "#?"
        extra = f" validity {r.validity:.3f}" if r.validity is not None else ""
        sched = f" [{r.scheduler_id}]" if r.scheduler_id else ""
        reason = f" — {r.reason}" if r.reason else ""
        lines.append(
            f"  {num:>4} {r.status.upper() if not r.finished else r.status:9} "
            f"{name}{sched}{extra}{reason}"
        )
    if failed:
        lines.append(
            "failed jobs: "
            + ", ".join(f"#{r.num}" if r.num is not None else str(r.scheduler_id) for r in failed)
        )
    return "\n".join(lines)


def write_summary(sweep_dir: str | Path, reports: list[JobReport]) -> Path | None:
    """``sweep_summary.json`` in the sweep directory (None if it cannot be written)."""
    path = Path(sweep_dir) / SWEEP_SUMMARY
    data = {
        "sweep_dir": str(sweep_dir),
        "n_jobs": len(reports),
        "n_finished": sum(r.finished for r in reports),
        "failed": [r.num for r in reports if r.status == "failed"],
        "running": [r.num for r in reports if r.status == "running"],
        "jobs": [asdict(r) for r in reports],
    }
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError:
        return None
    return path


def report(sweep_dir: str | Path, stream=None, query_scheduler: bool = True) -> list[JobReport]:
    """Summarize, print, and write ``sweep_summary.json``; returns the reports."""
    reports = summarize(sweep_dir, query_scheduler=query_scheduler)
    print(format_summary(sweep_dir, reports), file=stream or sys.stdout, flush=True)
    write_summary(sweep_dir, reports)
    return reports
