#!/usr/bin/env python
"""Smoke test of a running Slurm cluster through submitit (bounded in time).

Run after ``scripts/slurm-local.sh up``, with the project's venv python::

    .venv/bin/python scripts/slurm-smoke.py [--folder DIR] [--timeout SECONDS]

Checks, in order:

1. a tiny job is submitted, ``job.result()`` returns its value;
2. a job that sleeps 300 s is submitted, seen RUNNING, cancelled with
   ``job.cancel()``; ``job.state`` must become CANCELLED and ``job.result()``
   must raise (not hang) — this needs Slurm accounting (sacct).

Every wait is bounded; the script exits 0 if all checks pass, 1 otherwise.
Any job it submitted is cancelled on the way out.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import submitit


def add(a: int, b: int) -> int:
    return a + b


def sleep_long(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


def log(msg: str) -> None:
    print(f"slurm-smoke: {msg}", flush=True)


def wait_until(pred: Callable[[], bool], timeout: float, what: str, poll: float = 1.0) -> None:
    """Poll ``pred`` until true; raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)


def result_bounded(job: submitit.Job, timeout: float) -> tuple[str, Any]:
    """Run ``job.result()`` in a thread; return ("ok", value) / ("raised", exc).

    Raises TimeoutError if it neither returns nor raises within ``timeout``.
    """
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["ok"] = job.result()
        except BaseException as exc:  # noqa: BLE001 — we report whatever it is
            out["raised"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"job.result() of job {job.job_id} still blocked after {timeout:.0f}s")
    key = next(iter(out))
    return key, out[key]


def make_executor(folder: Path) -> submitit.AutoExecutor:
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(slurm_partition="debug", timeout_min=5, cpus_per_task=1)
    return executor


def check_result(executor: submitit.AutoExecutor, timeout: float, jobs: list) -> None:
    job = executor.submit(add, 2, 3)
    jobs.append(job)
    log(f"submitted add(2, 3) as job {job.job_id}")
    t0 = time.monotonic()
    kind, value = result_bounded(job, timeout)
    if kind != "ok":
        raise AssertionError(f"job {job.job_id} raised instead of returning: {value!r}")
    if value != 5:
        raise AssertionError(f"job {job.job_id} returned {value!r}, expected 5")
    took = time.monotonic() - t0
    log(f"OK result: job {job.job_id} returned {value} in {took:.1f}s (state {job.state})")


def check_cancel(executor: submitit.AutoExecutor, timeout: float, jobs: list) -> None:
    job = executor.submit(sleep_long, 300)
    jobs.append(job)
    log(f"submitted sleep_long(300) as job {job.job_id}")
    wait_until(lambda: job.state == "RUNNING", timeout, f"job {job.job_id} to be RUNNING")
    log(f"job {job.job_id} is RUNNING; cancelling")
    t0 = time.monotonic()
    job.cancel()
    wait_until(
        lambda: job.state.startswith("CANCELLED"),
        timeout,
        f"job {job.job_id} state to become CANCELLED (last: {job.state})",
    )
    log(f"job {job.job_id} state is {job.state} after {time.monotonic() - t0:.1f}s")
    kind, value = result_bounded(job, timeout)
    if kind != "raised":
        raise AssertionError(f"cancelled job {job.job_id} returned {value!r} instead of raising")
    log(
        f"OK cancel: job.result() raised {type(value).__name__} "
        f"{time.monotonic() - t0:.1f}s after cancel: {str(value).splitlines()[0][:120]}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--folder", type=Path, default=None, help="submitit log folder (default: a new temp dir)"
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="bound of each wait, in seconds (default 120)"
    )
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="cfgen-slurm-smoke-"))
    log(f"submitit {submitit.__version__}, folder {folder}")

    executor = make_executor(folder)
    jobs: list[submitit.Job] = []
    failed = False
    t0 = time.monotonic()
    try:
        check_result(executor, args.timeout, jobs)
        check_cancel(executor, args.timeout, jobs)
    except Exception as exc:  # noqa: BLE001 — report and fail
        failed = True
        log(f"FAILED: {type(exc).__name__}: {exc}")
        log(f"job logs are in {folder}")
    finally:
        for job in jobs:  # never leave a job behind
            try:
                if not job.done():
                    job.cancel(check=False)
            except Exception:  # noqa: BLE001
                pass
    log(f"{'FAILED' if failed else 'PASSED'} in {time.monotonic() - t0:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
