"""Process faults (issue 17): the run's parent killed, SIGTERM, double Ctrl-C, workers that die
as soon as they start.

Each test runs this file as a program (``python tests/test_runner_faults.py SCENARIO DIR``):
288 tasks of a slow toy explainer on 2 worker processes with a journal, wrapped the way the
command line wraps a run (signal handlers, one-line errors). On the launcher before these fixes
the same scenarios left the forkserver, the resource tracker and both workers running after
``kill -9`` of the parent, exited -15 on SIGTERM (survivors again), and printed a
``BrokenPipeError`` traceback from ``popen_forkserver.py`` when every worker died at start.
They take seconds: marker ``fault``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KILL_ENV = "CFGEN_TEST_KILL_EVERY_FORK"

# Preloaded by the forkserver in the "killstart" scenario (the forkserver runs ``python -c``):
# every process it forks is SIGKILLed before it reads its instructions. The context is larger
# than a pipe's buffer there, so the run's process is still writing it to the new worker when
# the worker dies: BrokenPipeError inside ``submit`` (what a real context of a few MB meets).
if os.environ.get(KILL_ENV) == "1" and sys.argv[:1] == ["-c"]:
    os.register_at_fork(after_in_child=lambda: os.kill(os.getpid(), signal.SIGKILL))


# ---------------------------------------------------------------------------- the program
class SlowExplainer:
    """Sleeps ``sleep`` s per task. "stubborn" workers also ignore SIGTERM and, after their
    first two tasks, take 20 s per task (stopping them then needs SIGKILL)."""

    def __init__(self, d: int, scenario: str, sleep: float, parent: int) -> None:
        self.d, self.scenario, self.sleep, self.parent = d, scenario, sleep, parent
        self.calls = 0

    def explain(self, x, target, k, rng):
        import numpy as np

        from cfgen.explanation import Explanation

        self.calls += 1
        stubborn = self.scenario == "stubborn" and os.getpid() != self.parent
        if stubborn:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(20 if stubborn and self.calls > 2 else self.sleep)
        cfs = x + rng.normal(size=(1 + target % k, self.d))
        return Explanation(cfs, target, k, self.sleep, None, np.zeros(1), np.zeros(1),
                           cfs[:1], generations=1)


def slow_factory(scenario, sleep, parent, ballast, problem, schema, class_bounds):
    return SlowExplainer(len(schema), scenario, sleep, parent)


def program_setup(scenario: str, sleep: float = 0.05):
    import functools

    import numpy as np
    from conftest import FAST, compose_config

    from cfgen.data import load_dataset
    from cfgen.plan import Combinations, plan_tasks
    from cfgen.runner import WorkerContext

    data = load_dataset(compose_config(FAST).dataset)
    comb = Combinations(tuple(data.schema.names[:2]), ("none", "no_change"))
    tasks = plan_tasks(list(range(6)), [[1, 2]] * 6, comb.chosen(3, seed=1), 8, seed=5)
    ballast = np.ones(2**18) if scenario == "killstart" else None  # 2 MB of context
    factory = functools.partial(slow_factory, scenario, sleep, os.getpid(), ballast)
    return data, tasks, WorkerContext(data, factory, None, comb, 3)


def program(scenario: str, out: Path) -> int:
    import logging

    from cfgen.journal import Journal
    from cfgen.runner import RunnerError, run_tasks
    from cfgen.runner.signals import run_cli

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    data, tasks, ctx = program_setup(scenario)
    if scenario == "killstart":
        from cfgen.runner import forkserver

        os.environ[KILL_ENV] = "1"  # inherited by the forkserver, which preloads this file
        forkserver.PRELOAD.append(Path(__file__).stem)
    journal = Journal.open(out, {"toy": 1}, data, tasks, False)

    def go() -> None:
        try:
            run_tasks(tasks, ctx, True, 2, journal=journal, progress=False)
        finally:
            journal.close()

    try:  # what `python -m cfgen` does around a run
        return run_cli(go)
    except RunnerError as exc:
        print(f"cfgen: error: {exc}", file=sys.stderr)
        return 1


# ---------------------------------------------------------------------------- helpers
def start(scenario: str, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    return subprocess.Popen([sys.executable, __file__, scenario, str(out)], env=env, cwd=out,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def records(out: Path) -> list:
    from cfgen.journal import JOURNAL_DIR, RECORDS, read_records

    return read_records(out / JOURNAL_DIR / RECORDS)[0]


def wait_for_records(proc: subprocess.Popen, out: Path, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(records(out)) < n:
        if proc.poll() is not None or time.monotonic() > deadline:
            # (not reading stderr here: workers that outlive the program keep it open)
            raise AssertionError(f"no {n} journal records (program exit {proc.poll()})")
        time.sleep(0.05)


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a live process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0]


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...)."""
    parents = {int(p.name): s[0] for p in Path("/proc").iterdir()
               if p.name.isdigit() and (s := _stat(int(p.name))) is not None}
    found, frontier = [], [pid]
    while frontier:
        kids = [c for c, pp in parents.items() if pp in frontier]
        found += kids
        frontier = kids
    return found


def alive(pid: int) -> bool:
    s = _stat(pid)
    return s is not None and s[1] != "Z"


def assert_all_gone(pids: list[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if alive(p)]
    for p in left:  # processes this test started (by pid): leave nothing behind
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    assert not left, f"still running after {timeout:.0f} s: {left}"


def assert_results_match(out: Path) -> int:
    """Every journal record equals the same task run here (nothing torn, nothing wrong)."""
    import numpy as np

    from cfgen.runner import run_task

    saved = records(out)
    _, tasks, ctx = program_setup("slow", sleep=0.0)
    for task, result in saved:
        again = run_task(tasks[result.index], ctx)
        assert tuple(tasks[result.index]) == task
        assert np.array_equal(again.explanation.counterfactuals,
                              result.explanation.counterfactuals)
    return len(saved)


@pytest.fixture
def leftovers():
    """Pids to SIGKILL at the end whatever happens (the program and what it started)."""
    pids: list[int] = []
    yield pids
    for p in pids:
        if alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


# ---------------------------------------------------------------------------- tests
@pytest.mark.fault
def test_killed_parent_leaves_no_process_behind(tmp_path, leftovers):
    """kill -9 of the run's process: its forkserver, workers and resource tracker end too."""
    proc = start("slow", tmp_path)
    leftovers.append(proc.pid)
    wait_for_records(proc, tmp_path, 4)
    tree = descendants(proc.pid)
    leftovers.extend(tree)
    assert len(tree) >= 4, tree  # forkserver, resource tracker, two workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert_all_gone(tree)
    assert 0 < assert_results_match(tmp_path) < 288


@pytest.mark.fault
def test_sigterm_is_handled_like_ctrl_c(tmp_path, leftovers):
    proc = start("slow", tmp_path)
    leftovers.append(proc.pid)
    wait_for_records(proc, tmp_path, 4)
    tree = descendants(proc.pid)
    leftovers.extend(tree)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert err.strip().splitlines()[-1] == (
        "cfgen: terminated (SIGTERM): finished tasks are kept in the run's journal/; rerun the "
        "same command with experiment_params.resume=true to finish")
    assert_all_gone(tree)
    assert 4 <= assert_results_match(tmp_path) < 288


@pytest.mark.fault
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_with_workers_that_ignore_sigterm(tmp_path, leftovers, presses):
    """Stopping workers stuck in a task that ignore SIGTERM takes seconds (SIGTERM, wait,
    SIGKILL); a second Ctrl-C meanwhile exits at once. Both end with status 130 (never -2, never
    a hang in interpreter shutdown) and leave no process behind."""
    proc = start("stubborn", tmp_path)
    leftovers.append(proc.pid)
    wait_for_records(proc, tmp_path, 4)
    tree = descendants(proc.pid)
    leftovers.extend(tree)
    proc.send_signal(signal.SIGINT)
    if presses == 2:
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("cfgen: interrupted again: exiting now" if presses == 2
                           else "cfgen: interrupted:"), last
    assert_all_gone(tree)
    assert assert_results_match(tmp_path) >= 4


@pytest.mark.fault
def test_workers_killed_at_start_give_one_line(tmp_path, leftovers):
    """Every worker is SIGKILLed right after its fork: retries, then one line, exit 1; never a
    BrokenPipeError traceback from inside ``submit``."""
    proc = start("killstart", tmp_path)
    leftovers.append(proc.pid)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err and "BrokenPipeError" not in err, err[-3000:]
    assert "will be retried one at a time" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("cfgen: error: worker processes died 11 times in a row"), last
    # tasks in flight at 3 deaths are recorded as failed (a resume retries them); none ran
    assert all("WorkerCrash" in (r.error or "") for _, r in records(tmp_path))


if __name__ == "__main__":
    sys.exit(program(sys.argv[1], Path(sys.argv[2])))
