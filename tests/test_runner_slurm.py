"""``experiment_params.executor=slurm``: a run's tasks as one Slurm job array.

Tests marked ``slurm`` run on the real local cluster (``bash scripts/slurm-local.sh up``;
``make test-slurm``) and skip, saying why, without one (a failure with CFGEN_REQUIRE_SLURM=1).
The others need no Slurm.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import FAST, compose_config
from runner_toys import same, toy_setup
from test_slurm import slurm_partition  # noqa: F401 - the fixture

from cfgen.data import load_dataset
from cfgen.errors import ConfigError
from cfgen.journal import JOURNAL_DIR, RECORDS, Journal, read_records
from cfgen.runner import RunnerError, run_tasks, slurm
from cfgen.runner.slurm import SlurmSettings, chunk

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def iris():
    return load_dataset(compose_config(FAST).dataset)


def slurm_run(run_dir, data, tasks, ctx, settings, resume=False, on_result=None):
    with Journal.open(run_dir, {"toy": 1}, data, tasks, resume) as journal:
        return run_tasks(
            tasks,
            ctx,
            executor="slurm",
            slurm=settings,
            journal=journal,
            resume=resume,
            on_result=on_result,
            progress=False,
        )


# ---------------------------------------------------------------------------- no Slurm needed
def test_settings_are_checked_with_the_key():
    assert SlurmSettings.from_config(None) == SlurmSettings()
    assert SlurmSettings.from_config({"partition": "cpu", "mem_gb": 1.5}).mem_gb == 1.5
    with pytest.raises(ConfigError, match=r"experiment_params\.slurm\.time_min=0 is not allowed"):
        SlurmSettings.from_config({"time_min": 0})
    with pytest.raises(
        ConfigError,
        match=r"experiment_params\.slurm\.mem=.*not a setting"
        r"|experiment_params\.slurm\.mem is not a setting",
    ):
        SlurmSettings.from_config({"mem": 2})
    params = SlurmSettings(partition="cpu", setup=["module load x"]).executor_parameters()
    assert params["slurm_partition"] == "cpu" and params["slurm_setup"] == ["module load x"]
    assert "slurm_account" not in params and params["timeout_min"] == 60


def test_chunks_are_contiguous_and_sized_from_the_cost(iris):
    tasks, _ = toy_setup(iris)  # 108 tasks
    settings = SlurmSettings(chunk_seconds=10.0, max_array_tasks=1000)
    chunks = chunk(tasks, 0.5, settings)  # 54 s of work → 6 chunks of 18
    assert [len(c) for c in chunks] == [18] * 6
    assert [t for c in chunks for t in c] == list(tasks)
    assert len(chunk(tasks, 0.5, SlurmSettings(chunk_seconds=1.0, max_array_tasks=4))) == 4
    assert len(chunk(tasks, None, settings)) == 1
    assert chunk([], 0.5, settings) == []


def test_without_slurm_is_one_line(iris, tmp_path, monkeypatch):
    tasks, ctx = toy_setup(iris, sleep=0.0)
    with pytest.raises(RunnerError, match="needs the run's journal"):
        run_tasks(tasks, ctx, executor="slurm", progress=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, no srun
    monkeypatch.setattr(slurm, "MEASURE_SECONDS", 3600.0)  # measure by count only
    with pytest.raises(RunnerError) as info:
        slurm_run(tmp_path / "run", iris, tasks, ctx, {})
    assert "needs Slurm, but sbatch/srun are not on PATH" in str(info.value)
    assert "\n" not in str(info.value)
    # the tasks measured before the submission (the first MEASURE_TASKS) are kept
    saved = read_records(tmp_path / "run" / JOURNAL_DIR / RECORDS)[0]
    assert slurm.MEASURE_TASKS == 3
    assert sorted(tuple(task) for task, _ in saved) == sorted(tuple(t) for t in tasks[:3])


def test_unreachable_slurm_is_one_line_on_the_command_line(tmp_path):
    """Slurm installed but no cluster configured (what sbatch says on a fresh install): one
    `cfgen: error` line, exit 2, and none of sbatch's own stderr lines before it. The two
    programs are stand-ins, as a configured-but-down cluster cannot be made here otherwise."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (
        (
            "sbatch",
            "echo 'sbatch: error: fetch_config: DNS SRV lookup failed' >&2\n"
            "echo 'sbatch: fatal: Could not establish a configuration source' >&2\nexit 1\n",
        ),
        ("srun", "exit 1\n"),
    ):
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cfgen",
            "experiment_params.executor=slurm",
            "experiment_params.num_samples=2",
            "output.table=false",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "sbatch" not in proc.stdout
    sbatch_lines = [ln for ln in proc.stderr.splitlines() if "sbatch" in ln]
    assert sbatch_lines == [
        "cfgen: error: experiment_params.executor=slurm: Slurm is not reachable from this "
        "machine: sbatch: fatal: Could not establish a configuration source"
    ]


@pytest.mark.slurm
def test_refused_array_settings_are_one_line(slurm_partition, tmp_path):  # noqa: F811
    """More memory than any node has: one line naming the key, exit 2, nothing queued, and
    none of sbatch's own stderr lines before it (sbatch --test-only runs first)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cfgen",
            "experiment_params.executor=slurm",
            f"experiment_params.slurm.partition={slurm_partition}",
            "experiment_params.slurm.mem_gb=100000",
            "experiment_params.num_samples=2",
            "output.table=false",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if "sbatch" in ln or "Slurm" in ln]
    assert len(lines) == 1 and lines[0].startswith("cfgen: error: "), proc.stderr[-2000:]
    assert "experiment_params.slurm.mem_gb=100000" in lines[0]
    assert not list((tmp_path / "run" / "slurm" / "submitit").glob("*_*"))


def test_segments_left_by_an_earlier_attempt(iris, tmp_path):
    """Segments of a stopped Slurm run: merged by resume=true of the same experiment (each task
    once, failed ones not), discarded without resume or for another experiment."""
    from cfgen.runner import segments

    tasks, ctx = toy_setup(iris, sleep=0.0)
    reference = run_tasks(tasks, ctx, executor="local", progress=False)

    def leave_segments(run_dir, fingerprint):
        seg = run_dir / JOURNAL_DIR / segments.SEGMENTS
        seg.mkdir(parents=True, exist_ok=True)
        (seg / segments.FINGERPRINT).write_text(fingerprint + "\n")
        for i, part in enumerate((tasks[:10], tasks[5:20])):  # overlapping: 5..9 twice
            w = segments.SegmentWriter(seg / f"{i}.bin")
            for t in part:
                w.append(t, reference[t.index])
            w.close()
        w = segments.SegmentWriter(seg / "2.bin")  # a failed task is not reused
        w.append(
            tasks[30],
            run_tasks(
                [tasks[30]], toy_setup(iris, "raise", 30)[1], executor="local", progress=False
            )[0],
        )
        w.close()

    run_dir = tmp_path / "run"
    with Journal.open(run_dir, {"toy": 1}, iris, tasks, True) as journal:
        fingerprint = journal.manifest["fingerprint"]
        leave_segments(run_dir, fingerprint)
        got: list = []
        seg = segments.prepare(journal, resume=True)
        merged = segments.merge_left(seg, tasks, lambda t, r: got.append((t, r)))
    assert merged == set(range(20)) and [t.index for t, _ in got] == sorted(merged)
    assert all(same(r, reference[t.index]) for t, r in got)
    assert not list(seg.glob("*.bin"))
    for resume, stamp in ((False, fingerprint), (True, "another experiment")):
        leave_segments(run_dir, stamp)
        with Journal.open(run_dir, {"toy": 1}, iris, tasks, resume) as journal:
            seg = segments.prepare(journal, resume=resume)
            assert segments.merge_left(seg, tasks, lambda t, r: None) == set()
        assert (seg / segments.FINGERPRINT).read_text().strip() == fingerprint


# ---------------------------------------------------------------------------- real Slurm
@pytest.fixture
def node_imports_tests(monkeypatch):
    """The array tasks import the toy explainer from tests/ (sbatch exports the environment)."""
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path.rstrip(os.pathsep))


def _settings(partition: str, **extra) -> dict:
    return {
        "partition": partition,
        "time_min": 5,
        "mem_gb": 0.5,
        "max_parallel": 2,
        "poll_seconds": 1.0,
        **extra,
    }


@pytest.mark.slurm
def test_array_gives_the_same_bytes_as_a_local_run(slurm_partition, tmp_path):  # noqa: F811
    """The real pipeline (iris, dpg_ga with class bounds) as an array of several tasks."""
    from cfgen import store
    from cfgen.experiment import resolve_bounds
    from cfgen.methods import method_factory
    from cfgen.plan import Combinations, choose_queries, iter_targets, plan_tasks
    from cfgen.problem import Problem
    from cfgen.runner import WorkerContext

    cfg = compose_config(FAST)
    problem = Problem.from_config(cfg.dataset, cfg.model)
    factory = method_factory(cfg.method)
    bounds, _ = resolve_bounds(problem, factory, cfg.method, problem.X_train)
    queries = choose_queries(len(problem.X_test), 4, None, 42)
    targets = list(iter_targets(problem.predict(problem.X_test[queries]), problem.n_classes, None))
    comb = Combinations.for_schema(problem.schema, ["none"])
    tasks = plan_tasks(queries, targets, comb.chosen(1), 2, 42)
    ctx = WorkerContext(problem, factory, bounds, comb, cfg.experiment_params.num_counterfactuals)
    files = {}
    for mode in ("local", "slurm"):
        run_dir = tmp_path / mode
        with Journal.open(run_dir, cfg, problem, tasks, False) as journal:
            results = run_tasks(
                tasks,
                ctx,
                executor=mode,
                journal=journal,
                progress=False,
                slurm=_settings(slurm_partition, chunk_seconds=0.02),
            )
        assert all(r.error is None for r in results), [r.error for r in results if r.error]
        frame = store.counterfactual_frame(problem, tasks, results, problem.predict, "dpg_ga")
        store.write_frame(run_dir / store.COUNTERFACTUALS, frame)
        files[mode] = (run_dir / store.COUNTERFACTUALS).read_bytes()
        if mode == "slurm":
            assert len({r.pid for r in results}) >= 3  # here (measured) + ≥ 2 array tasks
            assert len(read_records(run_dir / JOURNAL_DIR / RECORDS)[0]) == len(tasks)
            assert not list((run_dir / JOURNAL_DIR / "segments").glob("*.bin"))
    assert files["local"].count(b"\n") > 1
    assert files["local"] == files["slurm"]


def _array_id(run_dir: Path, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted((run_dir / "slurm" / "submitit").glob("*_0"))
        if found:
            return found[0].name.split("_")[0]
        time.sleep(0.2)
    raise AssertionError("the array was never submitted")


def _state(job: str) -> str:
    proc = subprocess.run(
        ["squeue", "-h", "-r", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=15
    )
    return proc.stdout.strip()


@pytest.mark.slurm
def test_cancelled_array_tasks_fail_and_resume_finishes(
    slurm_partition,  # noqa: F811
    iris,
    tmp_path,
    node_imports_tests,
):
    """scancel one running and one pending array task: the run ends (their tasks failed,
    naming the state); the same run with resume=true reruns only those and equals a local run."""
    tasks, ctx = toy_setup(iris, sleep=0.5, replications=1)  # 36 tasks of 0.5 s
    reference = run_tasks(
        tasks, toy_setup(iris, sleep=0.0, replications=1)[1], executor="local", progress=False
    )
    settings = _settings(slurm_partition, chunk_seconds=3.0)  # ≈ 6 array tasks, 2 at a time
    run_dir = tmp_path / "run"
    out: dict = {}
    worker = threading.Thread(
        target=lambda: out.update(results=slurm_run(run_dir, iris, tasks, ctx, settings)),
        daemon=True,
    )
    worker.start()
    array = _array_id(run_dir)
    try:
        deadline = time.monotonic() + 120
        while _state(f"{array}_1") != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
        subprocess.run(["scancel", f"{array}_1", f"{array}_4"], check=True, timeout=30)
        worker.join(timeout=300)  # a hang guard, not a timing check
        assert not worker.is_alive(), "the run did not end after the cancellation"
    finally:
        subprocess.run(["scancel", array], capture_output=True, timeout=30)
    results = out["results"]
    failed = [r for r in results if r.error is not None]
    # the running one is CANCELLED in sacct; the pending one may never reach accounting
    assert failed and all(
        "SlurmArrayTaskEnded" in r.error
        and ("CANCELLED" in r.error or "cancelled while pending" in r.error)
        for r in failed
    )
    assert any(f"array task {array}_1 ended CANCELLED" in r.error for r in failed)
    assert all(same(r, reference[r.index]) for r in results if r.error is None)
    ran: list = []
    again = slurm_run(run_dir, iris, tasks, ctx, settings, resume=True, on_result=ran.append)
    assert len(ran) == len(failed)
    assert all(same(a, b) for a, b in zip(again, reference, strict=True))
