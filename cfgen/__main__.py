"""``python -m cfgen [overrides]``: the Hydra app (single runs and ``-m`` sweeps)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cfgen.cli import CONF_DIR, CONFIG_NAME, precheck, prepare_run, report_error
from cfgen.config import register
from cfgen.datasets import open_dict_overrides
from cfgen.errors import ConfigError
from cfgen.models import model_overrides
from cfgen.rundir import OutputError, ignore_sigxfsz

log = logging.getLogger("cfgen")
register()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=CONFIG_NAME)
def app(cfg: DictConfig) -> float:
    """Run one experiment in Hydra's run directory; the return value is the sweep objective."""
    # a run that will likely use a pool starts its forkserver now (a single run from the
    # command line did already, once its config was composed): it imports while this process
    # loads the data and fits the model (a small run stays here: no cost)
    from cfgen.runner.forkserver import warm_up_for

    warm_up_for(cfg)
    from cfgen.experiment import run
    from cfgen.plan import plural
    from cfgen.runner import RunnerError

    run_dir = HydraConfig.get().runtime.output_dir
    try:
        result = run(cfg, run_dir)
    except ConfigError as exc:
        report_error(exc)
        sys.exit(2)
    except (OutputError, RunnerError) as exc:
        report_error(exc)
        sys.exit(1)
    if cfg.output.table:
        _print_tables(cfg, result, run_dir)
    s = result.summary
    failed = f"{s['n_failed']} failed" + (
        f", {s['n_timed_out']} over the time limit" if s.get("n_timed_out") else ""
    )
    if s.get("model_warning"):
        print(f"WARNING: {s['model_warning']}")
    print(
        f"validity {s['validity']:.3f} · {plural(s['n_tasks'], 'task')} ({failed}) · "
        f"{s['wall_seconds']:.1f} s\nrun directory: {run_dir}  (report.html)"
    )
    return float(s["validity"])


def _print_tables(cfg: DictConfig, result: Any, run_dir: str) -> None:
    """The per-query table, the combinations table, then up to output.show diff tables."""
    import pandas as pd

    from cfgen.changes import read_changes
    from cfgen.console import combination_table, console_table, diff_tables

    ep = cfg.experiment_params
    print(console_table(result.problem, result.metrics, k=ep.num_counterfactuals))
    if len({t.combination for t in result.tasks}) > 1:
        print(
            combination_table(
                result.tasks, result.results, result.combinations, ep.num_counterfactuals
            )
        )
    if cfg.output.show:
        run = Path(run_dir)
        diffs = diff_tables(
            read_changes(run / "changes.csv"), cfg.output.show, pd.read_csv(run / "queries.csv")
        )
        if diffs:
            print("\n" + diffs)


def _warm_up(cfg: DictConfig) -> None:
    from cfgen.runner.forkserver import warm_up_for

    warm_up_for(cfg)


def main() -> None:
    """Check the overrides (one clear line on bad input), then run.

    A single run's config is composed once (:func:`cfgen.cli.prepare_run`) and handed to
    Hydra's job runner; a sweep (``-m``) has every value checked first (:func:`precheck`), and
    it, ``--help``, ``--cfg`` and friends go through ``@hydra.main``."""
    ignore_sigxfsz()  # `ulimit -f` exceeded: EFBIG, reported as one line, not a kill
    # dataset.actionability.<feature>=... and dataset.ranges.<feature>=... need no "+"
    # and model._target_=pkg.Class starts from an empty model node (model=custom), its
    # keyword arguments need no "+" either
    sys.argv[1:] = model_overrides(open_dict_overrides(sys.argv[1:]))
    from cfgen.runner.signals import run_cli

    lock = None
    if os.environ.get("HYDRA_FULL_ERROR") != "1":
        try:  # also locks a fixed run directory before Hydra writes .hydra/ into it
            prepared = prepare_run(sys.argv[1:], app, on_composed=_warm_up)
            if prepared is None:
                lock = precheck(sys.argv[1:])
        except ConfigError as exc:
            report_error(exc)
            sys.exit(2)
        if prepared is not None:
            code = run_cli(lambda: prepared.run(app))
            if code:
                sys.exit(code)
            return

    try:  # Ctrl-C: 130, SIGTERM: 143, one line each; a second one exits at once
        code = run_cli(app)
    finally:
        if lock is not None:
            lock.release()
    if code:
        sys.exit(code)


def exit_now(code: int = 0) -> None:
    """End the process as Python would, minus tearing down every module: other non-daemon
    threads are waited for, atexit handlers run (logging's flush and close, multiprocessing's,
    W&B's, weakref finalizers), stdout and stderr are flushed, then ``os._exit``. Freeing
    scikit-learn's, SciPy's, pandas' and Hydra's objects one by one took 0.3–0.6 s after a
    finished run (measured); nothing is left to write by then (every file is closed)."""
    import atexit
    import threading

    for thread in threading.enumerate():
        if not thread.daemon and thread is not threading.current_thread():
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    main()  # errors and signals leave through SystemExit, with the usual interpreter exit
    exit_now(0)
