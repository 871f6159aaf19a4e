"""The forkserver every worker is forked from: started once per run, early, and never orphaned.

Starting it costs seconds of CPU (it imports numpy, scikit-learn, pandas, DEAP and cfgen once),
so :func:`warm_up` starts it without waiting; a probe thread notes when it first serves a
fork, which tells the runner whether a pool would start now or only later (:func:`ready`).

It dies with the run: it is started with ``CFGEN_FORKSERVER_OF=<main pid>`` and preloads
:mod:`cfgen.runner.fsguard`, which asks the kernel to kill it when the main process exits
(the forkserver would otherwise live on: every worker holds its "alive" pipe open).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import time
from typing import Any

from cfgen.runner.worker import THREAD_ENV

log = logging.getLogger(__name__)

#: imported once by the forkserver, so forked workers start with them loaded
PRELOAD = [
    "cfgen.runner.fsguard",
    "cfgen.runner.worker",
    "cfgen.methods",
    "cfgen.problem",
    "cfgen.search",
    "cfgen.data",
    "cfgen.models",
    "cfgen.predictor",
    "cfgen.constraints",
    "sklearn.ensemble",
    # unpickling a method factory (``hydra.utils.instantiate(..., _partial_=True)``) imports
    # Hydra's target policy: 0.15 s per worker when the forkserver has not imported it
    "hydra.utils",
]
GUARD_ENV = "CFGEN_FORKSERVER_OF"
#: passed to the resource tracker (started with the forkserver): after a run is stopped hard
#: it cleans up the pool's semaphores, and should not warn about it on the user's terminal
QUIET_TRACKER = "ignore:resource_tracker:UserWarning"
COLD_START_SECONDS = 3.0  # a cold forkserver's imports (bench/results/launcher.md)
#: fewer planned searches than this (before targets) rarely pay for a pool, so with
#: ``max_workers: null`` a smaller run does not start the forkserver up front
WARM_UP_TASKS = 60

_started: float | None = None  # time.monotonic() when this process started its forkserver
_ready: float | None = None  # ... and when it first served a fork
_lock = threading.Lock()


def default_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def mp_context(start_method: str | None = None) -> Any:
    """The multiprocessing context for workers (the forkserver, started if needed)."""
    method = start_method or default_method()
    mp = multiprocessing.get_context(method)
    if method == "forkserver":
        warm_up()
    return mp


def warm_up() -> None:
    """Start the forkserver now without waiting for it (idempotent, cheap once started).

    Call it from the main thread as early as a run knows it may use worker processes: the
    forkserver's imports then overlap with loading data and fitting the model.
    """
    global _started, _ready
    if default_method() != "forkserver":
        return
    from multiprocessing import forkserver

    with _lock:
        multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
        if QUIET_TRACKER not in sys.warnoptions:  # -W for the processes started from here
            sys.warnoptions.append(QUIET_TRACKER)
        before = server_pid()
        saved = {var: os.environ.get(var) for var in (*THREAD_ENV, GUARD_ENV)}
        os.environ.update({var: "1" for var in THREAD_ENV})  # before the server imports numpy
        os.environ[GUARD_ENV] = str(os.getpid())
        try:
            forkserver.ensure_running()
        finally:
            for var, value in saved.items():
                if value is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = value
        if _started is None or server_pid() != before:  # a new server: probe it
            _started, _ready = time.monotonic(), None
            threading.Thread(target=_probe, name="cfgen-forkserver-probe", daemon=True).start()


def warm_up_for(cfg: Any) -> bool:
    """:func:`warm_up` if the run ``cfg`` describes will likely run tasks on worker processes
    here (``executor: process`` with ``parallel_replications``, and either ``max_workers`` set,
    or more than one usable CPU and at least ``WARM_UP_TASKS`` planned searches); whether it
    did. Cheap, and safe on a config not validated yet (anything unexpected: no warm-up); for
    the command line, as soon as the config is composed: the earlier, the more of the
    forkserver's imports overlap with the run's own (imports, data, model)."""
    from cfgen.runner.resources import usable_cpus

    try:
        ep = cfg.experiment_params
        if not ep.get("parallel_replications", True) or ep.get("executor", "process") != "process":
            return False
        if ep.get("max_workers") is None:
            planned = (
                int(ep.num_samples if ep.sample_indices is None else len(ep.sample_indices))
                * int(ep.num_replications)
                * int(ep.get("num_combinations_to_test") or 1)
            )
            if planned < WARM_UP_TASKS or usable_cpus() < 2:
                return False
    except Exception:  # noqa: BLE001 - a bad value is the validator's to report
        return False
    warm_up()
    return True


def _probe() -> None:
    """Fork one no-op process: returns once the forkserver has imported its preload."""
    global _ready
    try:
        p = multiprocessing.get_context("forkserver").Process(target=os.getpid, name="cfgen-probe")
        p.start()
        p.join(60)
    except Exception as exc:  # noqa: BLE001 - the pool will report a real problem itself
        log.debug("forkserver probe failed: %s", exc)
    _ready = time.monotonic()


def ready() -> bool:
    """Whether a pool would start now (the forkserver has served a fork, or is not used)."""
    return default_method() != "forkserver" or _ready is not None


def seconds_until_ready() -> float:
    """Estimated seconds until the forkserver serves forks (0 when it does)."""
    if ready():
        return 0.0
    if _started is None:
        return COLD_START_SECONDS
    return max(0.05, COLD_START_SECONDS - (time.monotonic() - _started))


def server_pid() -> int | None:
    """The forkserver's pid, if this process runs one."""
    from multiprocessing import forkserver

    return getattr(forkserver._forkserver, "_forkserver_pid", None)
