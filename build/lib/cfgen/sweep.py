"""Sweep summary: which jobs of a multirun finished, which failed, and why.

A job counts as finished only when its run directory holds ``summary.json`` (written after its
results) and nothing recorded a failure. Everything else is failed (or still running), whatever
the scheduler says: hydra-submitit-launcher jobs whose experiment raised are COMPLETED for Slurm,
since the Python function returned a failed Hydra JobReturn. The evidence read, per job:

* the jobs the sweep planned (``multirun.yaml``, expanded the way Hydra's basic sweeper does);
* each run directory: ``summary.json``, ``.hydra/`` and ``job.json`` (written by
  :class:`SweepCallback` when it is registered: job number, Slurm ids, CPUs, status, error);
* submitit's folder (``.submitit/<job id>/``): the job's result pickle (an error traceback, or a
  Hydra JobReturn with its status) and, for jobs without a result, the Slurm state from ``sacct``.

Use::

    python -m cfgen.sweep MULTIRUN_DIR [--json]   # exit 0 only if every job finished

or register the callback (conf/config.yaml, ``hydra.callbacks``) to get the summary printed at
the end of every ``-m`` run, also when Hydra stops early because a job failed.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cfgen.errors import ConfigError

JOB_FILE = "job.json"
SUMMARY = "summary.json"  # cfgen.store.SUMMARY; not imported, to keep the Hydra callback light
SWEEP_SUMMARY = "sweep_summary.json"
#: Slurm states of jobs that may still produce results
ACTIVE_STATES = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING",
                 "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT")


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


def _run_dirs(sweep_dir: Path) -> dict[int, Path]:
    """Job number → run directory, for every run directory the sweep has made so far."""
    found: dict[int, Path] = {}
    for d in sorted(p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
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
            head = d.name.split("_", 1)[0]
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
            capture_output=True, text=True, timeout=timeout, check=False)
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
        pid = int(job.get("pid"))
        if pid == os.getpid():  # the job ran in this very process (basic launcher) and is over
            return False
        os.kill(pid, 0)
    except (OSError, TypeError, ValueError):
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


def summarize(sweep_dir: str | Path, query_scheduler: bool = True) -> list[JobReport]:
    """One report per job of the sweep in ``sweep_dir``, in job-number order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ConfigError(f"{sweep_dir} is not a directory: expected a multirun directory")
    planned = planned_jobs(sweep_dir)
    run_dirs = _run_dirs(sweep_dir)
    submitted = _submitit_jobs(sweep_dir)
    by_num: dict[int, _Submitted] = {s.num: s for s in submitted if s.num is not None}
    unmatched = [s for s in submitted if s.num is None]
    nums = sorted(set(planned) | set(run_dirs) | set(by_num))

    pending_ids = [s.job_id for s in submitted if s.result is None]
    states = slurm_states(pending_ids) if query_scheduler else {}

    reports = []
    for num in nums:
        rep = JobReport(num=num, overrides=planned.get(num, []))
        sub = by_num.get(num)
        if sub is not None:
            rep.scheduler_id = sub.job_id
            rep.overrides = rep.overrides or sub.overrides
        run_dir = run_dirs.get(num)
        job = _read_json(run_dir / JOB_FILE) if run_dir else None
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

        # what failed, from the most to the least specific evidence
        error = None
        if job and job.get("status") == "FAILED":
            error = job.get("error") or "the Hydra job failed"
        if sub is not None and sub.result is not None and error is None:
            kind, value = sub.result
            if kind == "error":
                error = f"job raised: {_one_line(value)}"
            else:
                error = _job_return_error(value)
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
            reports.append(rep)
            continue
        state = (rep.scheduler_state or "").split()[0] if rep.scheduler_state else ""
        if error is None and state in ACTIVE_STATES:
            rep.status, rep.reason = "running", f"Slurm state {rep.scheduler_state}"
        elif error is None and not state and job and _alive_here(job):
            rep.status, rep.reason = "running", f"process {job.get('pid')} is still running"
        else:
            rep.status = "failed"
            if error:
                rep.reason = error
            elif state:
                rep.reason = f"Slurm state {rep.scheduler_state}"
                if state == "COMPLETED":
                    rep.reason += f", but no {SUMMARY} (reported COMPLETED, results missing)"
                logged = sub.log_error() if sub is not None else None
                if logged and not state.startswith("CANCELLED"):
                    rep.reason += f"; log: {logged}"
            elif job and job.get("status") == "RUNNING":
                rep.reason = f"started on {job.get('host', '?')} but ended without {SUMMARY}"
            elif run_dir is not None:
                rep.reason = f"no {SUMMARY} in its run directory"
            else:
                rep.reason = "never started (no run directory)"
        reports.append(rep)
    for sub in unmatched:  # submitit jobs whose submission pickle could not be read
        rep = JobReport(num=None, scheduler_id=sub.job_id, status="failed",
                        reason="unknown job (unreadable submission pickle)")
        if sub.result and sub.result[0] == "success" and _job_return_error(sub.result[1]) is None:
            continue
        reports.append(rep)
    return reports


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
        name = Path(r.run_dir).name if r.run_dir else " ".join(r.overrides) or "?"
        num = f"#{r.num}" if r.num is not None else "#?"
        extra = f" validity {r.validity:.3f}" if r.validity is not None else ""
        sched = f" [{r.scheduler_id}]" if r.scheduler_id else ""
        reason = f" — {r.reason}" if r.reason else ""
        lines.append(f"  {num:>4} {r.status.upper() if not r.finished else r.status:9} "
                     f"{name}{sched}{extra}{reason}")
    if failed:
        lines.append("failed jobs: " + ", ".join(
            f"#{r.num}" if r.num is not None else str(r.scheduler_id) for r in failed))
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


# ---------------------------------------------------------------------------- callback --------

try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover - hydra is a dependency
    _HydraCallback = object


def _scheduler_id() -> str | None:
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")


class SweepCallback(_HydraCallback):
    """Hydra callback: records each multirun job in ``job.json``; prints the sweep summary.

    Register it in ``conf/config.yaml``::

        hydra:
          callbacks:
            sweep_summary:
              _target_: cfgen.sweep.SweepCallback

    The summary is printed at the end of every ``-m`` run; when Hydra stops early (a job failed
    or was cancelled, so ``on_multirun_end`` never comes) it is printed on exit, to stderr.
    """

    def __init__(self, summary: bool = True, query_scheduler: bool = True) -> None:
        self.summary = summary
        self.query_scheduler = query_scheduler
        self._sweep_dir: str | None = None
        self._reported = False

    # -- in the parent (the process that runs `python -m cfgen -m ...`) ----------------------

    def on_multirun_start(self, config, **kwargs: Any) -> None:
        self._sweep_dir = str(config.hydra.sweep.dir)
        self._reported = False
        if self.summary:
            atexit.register(self._report_on_exit)

    def on_multirun_end(self, config, **kwargs: Any) -> None:
        if self.summary and self._sweep_dir and not self._reported:
            self._reported = True
            report(self._sweep_dir, query_scheduler=self.query_scheduler)

    def _report_on_exit(self) -> None:
        if self._reported or not self._sweep_dir or not Path(self._sweep_dir).is_dir():
            return
        self._reported = True
        try:
            print("cfgen: the sweep stopped early; what its jobs left:", file=sys.stderr)
            report(self._sweep_dir, stream=sys.stderr, query_scheduler=self.query_scheduler)
        except Exception as exc:  # noqa: BLE001 - never mask the real exit
            print(f"cfgen: could not summarize {self._sweep_dir}: {exc}", file=sys.stderr)

    # -- in each job (on the Slurm node for submitit_slurm) ---------------------------------

    @staticmethod
    def _job_file(config) -> Path | None:
        try:
            from hydra.types import RunMode

            if config.hydra.mode != RunMode.MULTIRUN:
                return None
            return Path(config.hydra.runtime.output_dir) / JOB_FILE
        except Exception:  # noqa: BLE001
            return None

    def on_job_start(self, config, **kwargs: Any) -> None:
        path = self._job_file(config)
        if path is None:
            return
        from cfgen.launcher import resolve_workers, usable_cpus

        try:
            num = int(config.hydra.job.num)
        except Exception:  # noqa: BLE001
            num = None
        info = {
            "num": num,
            "overrides": list(config.hydra.overrides.task),
            "status": "RUNNING",
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "scheduler_id": _scheduler_id(),
            "slurm_cpus_per_task": os.environ.get("SLURM_CPUS_PER_TASK"),
            "usable_cpus": usable_cpus(),
            "default_max_workers": resolve_workers(None, 1 << 30),
            "started": time.time(),
        }
        _write_json(path, info)

    def on_job_end(self, config, job_return=None, **kwargs: Any) -> None:
        path = self._job_file(config)
        if path is None:
            return
        info = _read_json(path) or {}
        status = getattr(getattr(job_return, "status", None), "name", "UNKNOWN")
        info.update(status=status, ended=time.time())
        if status != "COMPLETED":
            info["error"] = _job_return_error(job_return)
        _write_json(path, info)


def _write_json(path: Path, obj: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass


# ------------------------------------------------------------------ Slurm launcher check ------

#: words of an sbatch error → the hydra.launcher key it is about
_SBATCH_KEYS = (
    ("partition", "partition"),
    ("account", "account"),
    ("qos", "qos"),
    ("time limit", "timeout_min"),
    ("memory", "mem_gb"),
    ("mem", "mem_gb"),
    ("cpu", "cpus_per_task"),
    ("processor", "cpus_per_task"),
    ("gres", "gres"),
    ("gpu", "gpus_per_node"),
    ("feature", "constraint"),
    ("constraint", "constraint"),
)
_RESOURCE_KEYS = ("cpus_per_task", "mem_gb", "mem_per_cpu", "gpus_per_node", "gres",
                  "constraint", "nodes", "tasks_per_node")
_BASE_KEYS = ("submitit_folder", "timeout_min", "cpus_per_task", "gpus_per_node",
              "tasks_per_node", "mem_gb", "nodes", "name", "stderr_to_stdout")


def sbatch_script(launcher: dict, folder: str | Path) -> str:
    """The sbatch script hydra-submitit-launcher would submit for these ``hydra.launcher`` keys."""
    import submitit

    params = {k: v for k, v in launcher.items()
              if k not in ("_target_", "submitit_folder", "max_num_timeout")}
    params = {k if k in _BASE_KEYS else f"slurm_{k}": v for k, v in params.items()}
    executor = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
    executor.update_parameters(**params)
    return executor._executor._make_submission_file_text("true", "precheck")


def check_slurm_launcher(launcher: dict, timeout: float = 30.0) -> None:
    """Ask Slurm (``sbatch --test-only``, nothing is queued) whether it accepts these settings.

    Raises ConfigError with sbatch's own error, naming the ``hydra.launcher`` key it is about.
    """
    import tempfile

    if shutil.which("sbatch") is None:
        raise ConfigError("hydra/launcher=submitit_slurm needs Slurm, but sbatch is not on PATH "
                          "(use hydra/launcher=submitit_local or basic on this machine)")
    with tempfile.TemporaryDirectory(prefix="cfgen-sbatch-") as tmp:
        launcher = dict(launcher, name=str(launcher.get("name") or "cfgen"))
        script = Path(tmp) / "check.sh"
        script.write_text(sbatch_script(launcher, tmp))
        try:
            proc = subprocess.run(["sbatch", "--test-only", str(script)], capture_output=True,
                                  text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ConfigError(f"hydra/launcher=submitit_slurm: sbatch --test-only did not answer "
                              f"in {timeout:.0f} s (is slurmctld up?)") from None
    if proc.returncode == 0:
        return
    out = (proc.stderr or "") + "\n" + (proc.stdout or "")
    unreachable = [ln.strip() for ln in out.splitlines()
                   if "fatal:" in ln or "unable to contact" in ln.lower()]
    if unreachable:
        raise ConfigError(f"hydra/launcher=submitit_slurm: Slurm is not reachable from this "
                          f"machine: {unreachable[-1]}")
    errors = [ln.strip() for ln in out.splitlines() if "error" in ln.lower()]
    message = errors[0] if errors else _one_line(out) or f"sbatch exit code {proc.returncode}"
    low = message.lower()
    if "node configuration" in low or "nodes available" in low:
        asked = [f"hydra.launcher.{k}={launcher[k]!r}" for k in _RESOURCE_KEYS
                 if launcher.get(k) not in (None, "", {}, [])]
        raise ConfigError(f"{', '.join(asked)}: no Slurm node offers these resources: {message}")
    for word, key in _SBATCH_KEYS:
        if word in low:
            value = launcher.get(key)
            raise ConfigError(f"hydra.launcher.{key}={value!r} is not accepted by Slurm: {message}")
    raise ConfigError(f"hydra/launcher=submitit_slurm: Slurm rejects the job settings: {message}")


def precheck_launcher(overrides: list[str], conf_dir: str | Path, config_name: str) -> None:
    """``-m`` on a Slurm launcher: launcher settings Slurm would reject, as one ConfigError."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from cfgen.config import register

    register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    except Exception:  # noqa: BLE001 - composition errors are precheck's own business
        return
    finally:
        GlobalHydra.instance().clear()
    launcher = cfg.hydra.get("launcher")
    if launcher is None or not str(launcher.get("_target_", "")).endswith(".SlurmLauncher"):
        return
    keys = [k for k in launcher.keys() if k not in ("submitit_folder", "name")]
    values = {k: OmegaConf.to_container(launcher, resolve=False)[k] for k in keys}
    check_slurm_launcher(values)


# -------------------------------------------------------------------------------- CLI ---------


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
