"""The runner's process pool: same bytes for any worker count, faults that lose nothing,
journal and resume.

Fault injection uses real failures inside real worker processes (tests/runner_toys.py): an
explainer that raises, SIGKILLs its own worker, or sends SIGINT to the parent when it meets
one chosen task. Process-level faults (kill -9 of the parent, SIGTERM, double Ctrl-C, workers
that die at start) are in tests/test_runner_faults.py.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAST, compose_config
from omegaconf import OmegaConf
from runner_toys import same, toy_setup

from cfgen.data import load_dataset
from cfgen.errors import ConfigError
from cfgen.experiment import run
from cfgen.journal import JOURNAL_DIR, RECORDS, Journal, read_records
from cfgen.runner import forkserver, run_tasks
from cfgen.runner.cost import CostMeter
from cfgen.runner.resources import fd_cap, memory_cap, usable_cpus

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def iris():
    return load_dataset(compose_config(FAST).dataset)


@pytest.fixture(scope="module")
def reference(iris):
    tasks, ctx = toy_setup(iris)
    return run_tasks(tasks, ctx, parallel=False, max_workers=None, progress=False)


def toy_journal(run_dir, iris, tasks, resume):
    return Journal.open(run_dir, {"toy": 1}, iris, tasks, resume)


# ---------------------------------------------------------------------------- real pipeline
def test_byte_identical_for_any_worker_count(tmp_path):
    """parallel_replications=false, max_workers=1, 2 and 8 write the same counterfactuals."""
    base = [*FAST, "experiment_params.num_replications=3"]
    runs = {
        "sequential": [],
        "w1": ["experiment_params.parallel_replications=true", "experiment_params.max_workers=1"],
        "w2": ["experiment_params.parallel_replications=true", "experiment_params.max_workers=2"],
        "w8": ["experiment_params.parallel_replications=true", "experiment_params.max_workers=8"],
    }
    files = {}
    for name, extra in runs.items():
        result = run(compose_config([*base, *extra]), tmp_path / name)
        assert result.summary["n_failed"] == 0, [r.error for r in result.results if r.error]
        files[name] = (tmp_path / name / "counterfactuals.csv").read_bytes()
        assert [r.index for r in result.results] == [t.index for t in result.tasks]
    assert files["sequential"].count(b"\n") > 1
    assert len(set(files.values())) == 1


def test_resume_after_interruption_gives_same_files(tmp_path):
    """Cut a finished run's journal to a torn half, rerun with resume=true: same files."""
    overrides = [*FAST, "experiment_params.num_samples=3"]
    ref = tmp_path / "ref"
    run(compose_config(overrides), ref)
    cut = tmp_path / "cut"
    result = run(compose_config(overrides), cut)
    records = cut / JOURNAL_DIR / RECORDS
    entries, end = read_records(records)
    assert len(entries) == len(result.tasks)
    blob = records.read_bytes()
    keep = len(blob) // 2  # mid-record: the torn tail must be dropped
    records.write_bytes(blob[:keep])
    for name in ("counterfactuals.csv", "metrics.csv", "summary.json"):
        (cut / name).unlink()
    again = run(compose_config([*overrides, "experiment_params.resume=true"]), cut)
    assert (cut / "counterfactuals.csv").read_bytes() == (ref / "counterfactuals.csv").read_bytes()
    assert len(read_records(records)[0]) == len(again.tasks)
    # a changed config refuses to reuse the journal, naming what changed
    with pytest.raises(ConfigError, match="method.ga.population_size"):
        run(
            compose_config(
                [*overrides, "experiment_params.resume=true", "method.ga.population_size=30"]
            ),
            cut,
        )


# ---------------------------------------------------------------------------- faults
def test_task_that_raises_is_recorded_and_run_goes_on(iris, reference):
    tasks, ctx = toy_setup(iris, "raise", poison_task=7)
    results = run_tasks(tasks, ctx, parallel=True, max_workers=2, progress=False)
    assert [r.index for r in results] == [t.index for t in tasks]
    assert "ValueError: injected failure" in results[7].error
    assert results[7].explanation.n_found == 0 and results[7].explanation.reason
    assert all(same(a, b) for a, b in zip(results, reference, strict=True) if a.index != 7)


def test_worker_killed_once_is_retried(iris, reference, tmp_path):
    tasks, ctx = toy_setup(iris, "kill_once", poison_task=11, marker=tmp_path / "marker")
    results = run_tasks(tasks, ctx, parallel=True, max_workers=2, progress=False)
    assert (tmp_path / "marker").exists(), "the worker was not killed"
    assert all(same(a, b) for a, b in zip(results, reference, strict=True))


def test_task_that_keeps_killing_workers_is_marked_failed(iris, reference, tmp_path):
    tasks, ctx = toy_setup(iris, "kill", poison_task=4)
    with toy_journal(tmp_path, iris, tasks, resume=False) as journal:
        results = run_tasks(
            tasks, ctx, parallel=True, max_workers=2, journal=journal, progress=False, max_crashes=2
        )
    assert "WorkerCrash" in results[4].error
    assert all(same(a, b) for a, b in zip(results, reference, strict=True) if a.index != 4)
    assert {r.index for _, r in read_records(tmp_path / JOURNAL_DIR / RECORDS)[0]} == {
        t.index for t in tasks
    }


# ---------------------------------------------------------------------------- chunks, choice
def test_chunk_sizes_follow_the_measured_cost():
    m = CostMeter()
    assert m.chunk_size(100, 2) == 1  # nothing measured yet: one task per chunk
    m.add(0.5)  # the first task also builds the explainer
    for seconds in (0.010, 0.012, 0.011):
        m.add(seconds)
    assert m.per_task == 0.011 and m.setup == pytest.approx(0.489)
    assert m.chunk_size(1000, 2) == 10  # ceil(CHUNK_SECONDS 0.1 / 0.011)
    assert m.chunk_size(40, 2) == 5  # 40 // (4 chunks per worker × 2): the tail balances
    assert m.chunk_size(3, 2) == 1
    m.add(0.05, n=10)  # a whole chunk: 5 ms per task
    assert m.per_task == pytest.approx(0.0105)  # median of 10, 12, 11, 5 ms


def test_small_run_stays_in_this_process(iris, reference, caplog):
    """max_workers: null and 108 tasks of well under a millisecond: no pool is worth it."""
    tasks, ctx = toy_setup(iris, sleep=0.0)
    with caplog.at_level(logging.INFO, logger="cfgen.runner"):
        results = run_tasks(tasks, ctx, parallel=True, max_workers=None, progress=False)
    assert {r.pid for r in results} == {os.getpid()}
    assert any(
        re.fullmatch(r"108 tasks ≈ \d+\.\d s: running in this process.*", m)
        for m in caplog.messages
    ), caplog.messages
    assert all(same(a, b) for a, b in zip(results, reference, strict=True))


def test_small_plan_starts_no_forkserver(iris, monkeypatch):
    """max_workers: null and 12 quick tasks: the first task shows no pool could pay, so no
    forkserver is started (its imports would only compete with this process for a CPU)."""
    monkeypatch.setattr(forkserver, "server_pid", lambda: None)  # none left by other tests
    started = []
    monkeypatch.setattr(forkserver, "mp_context", lambda *a: started.append(a))
    tasks, ctx = toy_setup(iris, sleep=0.0, queries=2, replications=1)
    assert len(tasks) < forkserver.WARM_UP_TASKS
    results = run_tasks(tasks, ctx, parallel=True, max_workers=None, progress=False)
    assert {r.pid for r in results} == {os.getpid()} and not started


@pytest.mark.parametrize(
    ("overrides", "warm"),
    [
        (["experiment_params.max_workers=1"], True),  # explicit: every task in a worker
        (["experiment_params.num_samples=40", "experiment_params.num_replications=5"], None),
        ([], False),  # 3 queries x 3 replications: stays here, nothing to warm
        (["experiment_params.max_workers=2", "experiment_params.executor=local"], False),
        (["experiment_params.max_workers=2", "experiment_params.executor=slurm"], False),
    ],
)
def test_forkserver_warm_up_rule(monkeypatch, overrides, warm):
    """The command line starts the forkserver as soon as the config is composed when the run
    will likely use a pool (None: when more than one CPU is usable)."""
    calls = []
    monkeypatch.setattr(forkserver, "warm_up", lambda: calls.append(1))
    cfg = compose_config(["experiment_params.parallel_replications=true", *overrides])
    expected = usable_cpus() >= 2 if warm is None else warm
    assert forkserver.warm_up_for(cfg) is expected and len(calls) == int(expected)
    bad = OmegaConf.create({"experiment_params": {"num_samples": "many", "max_workers": None}})
    assert forkserver.warm_up_for(bad) is False  # not validated yet: no warm-up, no error


def test_large_run_moves_to_workers(iris, monkeypatch):
    """max_workers: null and 216 tasks of 10 ms: measured here, then on one worker per CPU.

    The machine is taken as idle (no other process keeping a CPU busy): on a loaded machine
    the runner rightly stays in this process, which is not what this test is about."""
    from cfgen.runner import resources

    if usable_cpus() < 2:
        pytest.skip("one usable CPU: the automatic choice never starts a pool there")
    monkeypatch.setattr(resources.CpuSampler, "others", lambda self: 0.0)
    forkserver.warm_up()
    deadline = time.monotonic() + 120
    while not forkserver.ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    tasks, ctx = toy_setup(iris, sleep=0.01, replications=6)
    results = run_tasks(tasks, ctx, parallel=True, max_workers=None, progress=False)
    pids = [r.pid for r in results]
    assert pids[0] == os.getpid()  # the first tasks ran here, measured
    assert set(pids) - {os.getpid()}, "no task ran on a worker"
    expected = run_tasks(
        tasks, toy_setup(iris, sleep=0.0, replications=6)[1], parallel=False, progress=False
    )
    assert all(same(a, b) for a, b in zip(results, expected, strict=True))


def test_explicit_max_workers_runs_every_task_in_a_worker(iris, reference):
    tasks, ctx = toy_setup(iris, sleep=0.0)
    results = run_tasks(tasks, ctx, parallel=True, max_workers=1, progress=False)
    assert os.getpid() not in {r.pid for r in results}
    assert all(same(a, b) for a, b in zip(results, reference, strict=True))
    with pytest.raises(ConfigError, match=r"experiment_params\.executor='nope'"):
        run_tasks(tasks, ctx, executor="nope")
    with pytest.raises(ConfigError, match=r"experiment_params\.max_workers=0"):
        run_tasks(tasks, ctx, max_workers=0)


@pytest.fixture
def sigint_raises():
    """Ctrl-C raises KeyboardInterrupt here even when the suite was started with SIGINT ignored
    (a background job of a non-interactive shell, as CI may be)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_workers_and_resume_completes(iris, reference, tmp_path, sigint_raises):
    marker = tmp_path / "sleeping_worker.pid"
    tasks, ctx = toy_setup(iris, "interrupt", poison_task=20, marker=marker)
    journal = toy_journal(tmp_path, iris, tasks, resume=False)
    with pytest.raises(KeyboardInterrupt):
        run_tasks(tasks, ctx, parallel=True, max_workers=2, journal=journal, progress=False)
    journal.close()
    # the worker that was sleeping through the interrupt has been ended, not waited for
    with pytest.raises(ProcessLookupError):
        os.kill(int(marker.read_text()), 0)
    saved = read_records(tmp_path / JOURNAL_DIR / RECORDS)[0]
    assert 0 < len(saved) < len(tasks)
    assert all(same(r, reference[r.index]) for _, r in saved)
    # resume: finished tasks are skipped, the rest run, the result equals an uninterrupted run
    tasks, ctx = toy_setup(iris)
    with toy_journal(tmp_path, iris, tasks, resume=True) as journal:
        assert set(journal.done) == {r.index for _, r in saved if r.error is None}
        ran = []
        results = run_tasks(
            tasks,
            ctx,
            parallel=True,
            max_workers=2,
            journal=journal,
            on_result=ran.append,
            progress=False,
        )
    assert len(ran) == len(tasks) - len(journal.done)
    assert all(same(a, b) for a, b in zip(results, reference, strict=True))


def test_sequential_interrupt_keeps_finished_tasks(iris, reference, tmp_path):
    tasks, ctx = toy_setup(iris, "interrupt_here", poison_task=9)
    with toy_journal(tmp_path, iris, tasks, resume=False) as journal:
        with pytest.raises(KeyboardInterrupt):
            run_tasks(tasks, ctx, parallel=False, max_workers=None, journal=journal, progress=False)
    saved = read_records(tmp_path / JOURNAL_DIR / RECORDS)[0]
    assert [r.index for _, r in saved] == list(range(9))


# ---------------------------------------------------------------------------- journal
def test_journal_resume_from_sibling_run_dir_and_mismatch(iris, reference, tmp_path):
    tasks, ctx = toy_setup(iris)
    first = tmp_path / "outputs" / "2024-01-01" / "10-00-00_iris"
    with toy_journal(first, iris, tasks, resume=False) as journal:
        run_tasks(
            tasks[:10], ctx, parallel=False, max_workers=None, journal=journal, progress=False
        )
    # the same command with resume=true gets a new Hydra run dir: the sibling is found
    second = tmp_path / "outputs" / "2024-01-02" / "09-00-00_iris"
    with toy_journal(second, iris, tasks, resume=True) as journal:
        assert sorted(journal.done) == list(range(10))
        assert journal.resumed_from == first
        results = run_tasks(
            tasks, ctx, parallel=False, max_workers=None, journal=journal, progress=False
        )
    assert all(same(a, b) for a, b in zip(results, reference, strict=True))
    # another experiment's journal is not picked up, and in place it is refused
    with toy_journal(tmp_path / "outputs" / "x" / "y", iris, tasks[:5], resume=True) as j:
        assert not j.done
    with pytest.raises(ConfigError, match="toy"):
        Journal.open(first, {"toy": 2}, iris, tasks, resume=True)
    # resume=false starts afresh
    with toy_journal(first, iris, tasks, resume=False) as journal:
        assert not journal.done
    assert read_records(first / JOURNAL_DIR / RECORDS)[0] == []


# ---------------------------------------------------------------------------- sizing
def test_memory_and_open_file_caps():
    assert memory_cap(8, 100, None) == (8, None)
    assert memory_cap(8, 100, 10_000) == (8, None)
    n, why = memory_cap(8, 2**30, 3 * 2**30)
    assert n == 2 and "max_workers" in why
    assert memory_cap(4, 2**40, 2**30)[0] == 1
    assert fd_cap(4) == (4, None)


# ---------------------------------------------------------------------------- the CLI
@pytest.mark.slow
def test_cli_ctrl_c_then_resume(tmp_path):
    """A real Ctrl-C on `python -m cfgen`, then the same command with resume=true."""
    args = [
        sys.executable,
        "-m",
        "cfgen",
        "method/ga=quick",
        "dataset=german_credit",
        "experiment_params.num_samples=8",
        "experiment_params.num_replications=4",
        "experiment_params.max_workers=2",
        "output.table=false",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ref = tmp_path / "ref"
    subprocess.run(
        [*args, f"hydra.run.dir={ref}"], check=True, env=env, cwd=ROOT, capture_output=True
    )
    out = tmp_path / "cut"
    proc = subprocess.Popen(
        [*args, f"hydra.run.dir={out}"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_sigint,
    )
    records = out / JOURNAL_DIR / RECORDS
    deadline = time.time() + 120
    while time.time() < deadline and (not records.exists() or records.stat().st_size < 2000):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.decode().strip().splitlines()[-1].startswith("cfgen: interrupted:")
    assert not (out / "counterfactuals.csv").exists()
    n_saved = len(read_records(records)[0])
    assert n_saved > 0
    subprocess.run(
        [*args, f"hydra.run.dir={out}", "experiment_params.resume=true"],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
    )
    assert (out / "counterfactuals.csv").read_bytes() == (ref / "counterfactuals.csv").read_bytes()
