"""Hydra callback for ``-m`` sweeps: ``job.json`` per job, and the sweep summary at the end.

Imported by Hydra in the process that runs ``python -m cfgen -m ...`` (and in each job), so it
stays light: the summary code and the CPU probing are imported only when used.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback as _HydraCallback

from cfgen.sweep.forensics import JOB_FILE, _job_return_error, _read_json, report


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
        from cfgen.runner.resources import resolve_workers, usable_cpus

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
