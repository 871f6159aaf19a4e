"""Sweeps on Slurm (submitit) and the sweep summary that says which jobs failed.

Tests marked ``slurm`` need a running cluster (``bash scripts/slurm-local.sh up``; run them with
``make test-slurm`` or ``pytest -m slurm tests/test_slurm.py``). They skip, saying why, when
``sinfo`` does not answer, unless CFGEN_REQUIRE_SLURM=1 (CI), where that is a failure. The other
tests here need no Slurm and run in the default suite.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cfgen import sweep
from cfgen.cli import precheck
from cfgen.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CALLBACK = "++hydra.callbacks.sweep_summary._target_=cfgen.sweep.SweepCallback"
TINY = [
    "dataset=iris",
    "method/ga=quick",
    "experiment_params.num_samples=1",
    "experiment_params.num_replications=1",
    "output.table=false",
]


# ----------------------------------------------------------------------------- helpers --------


def run_cfgen(
    args: list[str], timeout: float, env: dict | None = None, on_start=None
) -> tuple[subprocess.CompletedProcess, float]:
    """``python -m cfgen ARGS`` in its own process group; killed (group) after ``timeout``."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cfgen", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        if on_start is not None:
            on_start(proc)
        out, err = proc.communicate(timeout=max(1.0, timeout - (time.monotonic() - t0)))
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        print(out[-3000:], err[-3000:], sep="\n", file=sys.stderr)
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), time.monotonic() - t0


def sweep_cli(sweep_dir: Path, *extra: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "cfgen.sweep", str(sweep_dir), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    return proc.returncode, proc.stdout + proc.stderr


def job_dirs(sweep_dir: Path) -> dict[int, Path]:
    """Job number → run directory (nested one level when an override holds a '/')."""
    from cfgen.sweep.forensics import _job_dir

    return {
        int(d.name.split("_", 1)[0]): _job_dir(d)
        for d in sweep_dir.iterdir()
        if d.is_dir() and d.name.split("_", 1)[0].isdigit()
    }


# ---------------------------------------------------------------- no Slurm needed -------------


def test_basic_sweep_lists_the_failed_job(tmp_path):
    """Job #1 dies at run time (a test row out of range): Hydra stops, the summary names it.

    (``method/ga=quick`` puts a ``/`` into Hydra's override_dirname: each run directory is
    nested one level deeper, which the summary must still find.)"""
    sweep_dir = tmp_path / "sweep"
    proc, _ = run_cfgen(
        [
            "-m",
            *TINY,
            "experiment_params.sample_indices=[0],[999]",
            "experiment_params.parallel_replications=false",
            f"hydra.sweep.dir={sweep_dir}",
            CALLBACK,
        ],
        timeout=240,
    )
    assert proc.returncode != 0
    assert "the sweep stopped early" in proc.stderr
    assert "failed jobs: #1" in proc.stderr, proc.stderr[-2000:]
    reports = {r.num: r for r in sweep.summarize(sweep_dir, query_scheduler=False)}
    assert reports[0].finished and reports[0].validity is not None
    assert reports[1].status == "failed" and "summary.json" in reports[1].reason
    assert "experiment_params.sample_indices=[999]" in reports[1].overrides
    code, out = sweep_cli(sweep_dir, "--no-scheduler")
    assert code == 1 and "1 finished, 1 failed" in out
    saved = json.loads((sweep_dir / sweep.SWEEP_SUMMARY).read_text())
    assert saved["failed"] == [1] and saved["n_finished"] == 1


def test_summary_checks_results_not_states(tmp_path):
    """Slurm says COMPLETED for a job whose Hydra JobReturn failed: it is listed as failed."""
    import submitit
    from hydra.core.utils import JobReturn, JobStatus

    sweep_dir = tmp_path / "sweep"
    submitted = sweep_dir / ".submitit"

    def job(num: int, result, summary: bool) -> None:
        jid = f"77_{num}"
        folder = submitted / jid
        folder.mkdir(parents=True)
        submitit.helpers.DelayedSubmission(
            len, [f"experiment_params.seed={num}"], "hydra.sweep.dir", num, f"job_id_for_{num}", {}
        ).dump(folder / f"{jid}_submitted.pkl")
        if result is not None:
            with (folder / f"{jid}_0_result.pkl").open("wb") as fh:
                pickle.dump(result, fh)
        run_dir = sweep_dir / f"{num}_experiment_params.seed={num}"
        run_dir.mkdir(parents=True)
        if summary:
            (run_dir / "summary.json").write_text(
                json.dumps({"validity": 0.5, "n_tasks": 2, "n_failed": 0})
            )

    job(0, ("success", JobReturn(status=JobStatus.COMPLETED, _return_value=0.5)), True)
    job(
        1,
        (
            "success",
            JobReturn(status=JobStatus.FAILED, _return_value=RuntimeError("boom in the job")),
        ),
        False,
    )
    job(2, ("error", "Traceback (most recent call last):\n  ...\nMemoryError: out of it"), False)
    job(3, None, False)  # no result at all (cancelled, killed, node failure)
    reports = {r.num: r for r in sweep.summarize(sweep_dir, query_scheduler=False)}
    assert [reports[i].status for i in range(4)] == ["finished", "failed", "failed", "failed"]
    assert reports[1].reason == "RuntimeError: boom in the job"
    assert reports[1].scheduler_id == "77_1"
    assert "MemoryError: out of it" in reports[2].reason
    assert "summary.json" in reports[3].reason
    text = sweep.format_summary(sweep_dir, list(reports.values()))
    assert text.splitlines()[0].endswith("4 jobs, 1 finished, 3 failed")
    assert text.splitlines()[-1] == "failed jobs: #1, #2, #3"


def test_summary_of_a_missing_dir_is_one_line(tmp_path):
    code, out = sweep_cli(tmp_path / "nope")
    assert code == 2 and out.strip().count("\n") == 0 and "is not a directory" in out


def test_launcher_presets_and_names():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cfgen.cli import CONF_DIR, group_options
    from cfgen.config import register

    assert {"basic", "slurm", "submitit_local", "submitit_slurm"} <= set(
        group_options("hydra/launcher")
    )
    with pytest.raises(ConfigError, match="expected one of basic, slurm, submitit_local"):
        precheck(["-m", "hydra/launcher=nope"])
    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="config", overrides=["hydra/launcher=slurm"], return_hydra_config=True
        )
    GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    for key in ("partition", "timeout_min", "cpus_per_task", "mem_gb"):
        assert key in launcher


@pytest.mark.parametrize("launcher", ["submitit_slurm", "slurm"])
def test_slurm_launcher_without_sbatch(monkeypatch, launcher):
    """The one line names the launcher as the user chose it (cfgen's preset or the plugin's)."""
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda n: None if n == "sbatch" else real_which(n))
    with pytest.raises(ConfigError, match=f"^hydra/launcher={launcher} needs Slurm, but sbatch"):
        precheck(["-m", f"hydra/launcher={launcher}", *TINY])


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (
            "sbatch: error: invalid partition specified: nosuch\n"
            "sbatch: error: Batch job submission failed: Invalid partition name specified",
            "hydra.launcher.partition='nosuch' is not accepted by Slurm: sbatch: error: invalid "
            "partition specified: nosuch",
        ),
        (
            "sbatch: error: Batch job submission failed: "
            "Requested node configuration is not available",
            "hydra.launcher.cpus_per_task=4, hydra.launcher.mem_gb=8, hydra.launcher.nodes=1, "
            "hydra.launcher.tasks_per_node=1: no Slurm node offers these resources",
        ),
        (
            "sbatch: error: resolve_ctls_from_dns_srv: res_nsearch error: Unknown host\n"
            "sbatch: fatal: Could not establish a configuration source",
            "Slurm is not reachable from this machine: sbatch: fatal: Could not establish",
        ),
    ],
)
def test_sbatch_refusal_is_one_line(tmp_path, monkeypatch, stderr, expected):
    """sbatch --test-only's answer (a stand-in sbatch here) becomes one line naming the key.

    PATH holds nothing but the stand-in (it uses shell builtins only), so this also proves the
    precheck needs no other Slurm binary: submitit's executor, which insists on ``srun``, must
    not be built (issue 14: it failed on a machine without Slurm).
    """
    fake = tmp_path / "bin" / "sbatch"
    fake.parent.mkdir()
    lines = "".join(f"printf '%s\\n' '{line}' >&2\n" for line in stderr.splitlines())
    fake.write_text(f"#!/bin/sh\n{lines}exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    assert shutil.which("srun") is None and shutil.which("sbatch") == str(fake)
    args = ["-m", "hydra/launcher=slurm", "hydra.launcher.partition=nosuch", *TINY]
    with pytest.raises(ConfigError) as info:
        precheck(args)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_sbatch_script_without_slurm(tmp_path, monkeypatch):
    """The precheck's script carries the launcher settings, with no Slurm binary on PATH."""
    monkeypatch.setenv("PATH", str(tmp_path))
    script = sweep.sbatch_script(
        {
            "partition": "cpu",
            "timeout_min": 7,
            "cpus_per_task": 3,
            "mem_gb": 2,
            "name": "x",
            "additional_parameters": {},
        },
        tmp_path,
    )
    for flag in ("--partition=cpu", "--time=7", "--cpus-per-task=3", "--mem=2GB", "--job-name=x"):
        assert f"#SBATCH {flag}\n" in script, script
    # unset keys (the plugin's defaults hold None) are left out, as submitit's AutoExecutor does
    script = sweep.sbatch_script(
        {"partition": None, "mem_gb": None, "gpus_per_node": None, "timeout_min": 5}, tmp_path
    )
    assert "--mem" not in script and "--partition" not in script and "--time=5\n" in script


@pytest.mark.slow
def test_submitit_local_sweep(tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc, seconds = run_cfgen(
        [
            "-m",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=5",
            *TINY,
            "experiment_params.seed=1,2",
            f"hydra.sweep.dir={sweep_dir}",
            CALLBACK,
        ],
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 jobs, 2 finished, 0 failed" in proc.stdout
    for d in job_dirs(sweep_dir).values():
        assert (d / "summary.json").is_file() and (d / "counterfactuals.csv").is_file()
    print(f"submitit_local 2-job sweep: {seconds:.1f} s")


# -------------------------------------------------------------------- real Slurm --------------


def _slurm_unavailable() -> str | None:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "Slurm is not installed: bash scripts/slurm-local.sh install && ... up"
    try:
        proc = subprocess.run(
            ["sinfo", "-h", "-o", "%P %a"], capture_output=True, text=True, timeout=15
        )
    except subprocess.TimeoutExpired:
        return "Slurm is not up: sinfo did not answer in 15 s (bash scripts/slurm-local.sh up)"
    if proc.returncode != 0 or not proc.stdout.strip():
        line = (proc.stderr.strip().splitlines() or ["no partitions"])[-1]
        return f"Slurm is not up (sinfo: {line}): run `bash scripts/slurm-local.sh up`"
    return None


@pytest.fixture(scope="module")
def slurm_partition() -> str:
    reason = _slurm_unavailable()
    if reason:
        if os.environ.get("CFGEN_REQUIRE_SLURM") == "1":
            pytest.fail(f"CFGEN_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    if os.environ.get("CFGEN_SLURM_PARTITION"):
        return os.environ["CFGEN_SLURM_PARTITION"]
    out = subprocess.run(
        ["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=15
    ).stdout.split()
    default = [p for p in out if p.endswith("*")]
    return (default or out)[0].rstrip("*")


def _squeue_state(job_id: str) -> str:
    proc = subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=15
    )
    return proc.stdout.strip()


def _cancel_all(sweep_dir: Path) -> None:
    """Leave nothing queued: scancel every job this sweep submitted (idempotent)."""
    ids = [d.name for d in (sweep_dir / ".submitit").glob("*") if d.is_dir()]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)


def _final_states(ids: list[str], timeout: float = 60) -> dict[str, str]:
    """Slurm's states of ``ids`` once accounting has a final one for each (bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        states = sweep.slurm_states(ids)
        done = all(states.get(i, "PENDING").split()[0] not in sweep.ACTIVE_STATES for i in ids)
        if done or time.monotonic() > deadline:
            return states
        time.sleep(1)


@pytest.mark.slurm
def test_two_job_sweep_on_slurm(slurm_partition, tmp_path):
    from wandb_reader import find_offline_runs, read_offline_run

    sweep_dir = tmp_path / "sweep"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "NETRC"
    }  # no credentials: offline
    env.update(
        WANDB_SILENT="true",
        NETRC=str(tmp_path / "no-netrc"),
        WANDB_CONFIG_DIR=str(tmp_path / "wandb-config"),
        WANDB_CACHE_DIR=str(tmp_path / "wandb-cache"),
        WANDB_DATA_DIR=str(tmp_path / "wandb-data"),
    )
    try:
        proc, seconds = run_cfgen(
            [
                "-m",
                "hydra/launcher=submitit_slurm",
                f"hydra.launcher.partition={slurm_partition}",
                "hydra.launcher.timeout_min=5",
                "hydra.launcher.cpus_per_task=1",
                "hydra.launcher.mem_gb=1",
                *TINY,
                "experiment_params.seed=1,2",
                "logger=wandb",
                f"hydra.sweep.dir={sweep_dir}",
                CALLBACK,
            ],
            timeout=240,
            env=env,
        )
    except BaseException:
        _cancel_all(sweep_dir)
        raise
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 jobs, 2 finished, 0 failed" in proc.stdout
    dirs = job_dirs(sweep_dir)
    assert sorted(dirs) == [0, 1]
    groups = set()
    for num, d in dirs.items():
        summary = json.loads((d / "summary.json").read_text())
        assert summary["n_tasks"] >= 1 and summary["dataset"] == "iris"
        assert (d / "counterfactuals.csv").is_file() and (d / "metrics.csv").is_file()
        job = json.loads((d / "job.json").read_text())
        assert job["status"] == "COMPLETED" and job["num"] == num
        assert job["scheduler_id"] and job["slurm_cpus_per_task"] == "1"
        # experiment_params.max_workers: null → the CPUs Slurm gave the job, minus one (≥ 1)
        assert job["usable_cpus"] == 1, job
        assert job["default_max_workers"] == 1
        # one W&B run per job, grouped by the sweep
        runs = find_offline_runs(d)
        assert len(runs) == 1
        logged = read_offline_run(runs[0])
        assert logged["job_type"] == "multirun" and {"iris", "dpg_ga"} <= set(logged["tags"])
        assert logged["summary"]["n_tasks"] == summary["n_tasks"]
        groups.add(logged["group"])
    assert groups == {str(sweep_dir)}
    code, out = sweep_cli(sweep_dir)
    assert code == 0 and "2 jobs, 2 finished, 0 failed" in out
    ids = [d.name for d in (sweep_dir / ".submitit").glob("*_*") if d.is_dir()]
    states = _final_states(ids)
    assert set(states.values()) == {"COMPLETED"}, (ids, states, sweep_dir)
    print(f"slurm 2-job sweep: {seconds:.1f} s")


@pytest.mark.slurm
def test_cancelled_job_is_reported_failed(slurm_partition, tmp_path):
    """Job #1 is cancelled while it runs, job #2 dies (a test row out of range, found at run
    time): the sweep ends (bounded), both listed."""
    env = dict(os.environ)
    sweep_dir = tmp_path / "sweep"
    cancelled: dict[str, float] = {}

    def cancel_job_1(proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + 120
        job_id = None
        while time.monotonic() < deadline and proc.poll() is None:
            if job_id is None:
                found = list((sweep_dir / ".submitit").glob("*_1/*_1_submitted.pkl"))
                job_id = found[0].parent.name if found else None
            elif _squeue_state(job_id) == "RUNNING":
                subprocess.run(["scancel", job_id], check=True, timeout=30)
                cancelled[job_id] = time.monotonic()
                return
            time.sleep(0.5)
        raise AssertionError(f"job #1 ({job_id}) never seen RUNNING")

    try:
        proc, seconds = run_cfgen(
            [
                "-m",
                "hydra/launcher=slurm",
                f"hydra.launcher.partition={slurm_partition}",
                "hydra.launcher.timeout_min=5",
                "hydra.launcher.cpus_per_task=1",
                "hydra.launcher.mem_gb=1",
                "hydra.launcher.setup=[sleep 10]",
                *TINY,
                "experiment_params.sample_indices=[0],[1],[999]",
                f"hydra.sweep.dir={sweep_dir}",
                CALLBACK,
            ],
            timeout=240,
            env=env,
            on_start=cancel_job_1,
        )
        waited = time.monotonic() - next(iter(cancelled.values()))
        assert proc.returncode != 0
        assert "the sweep stopped early" in proc.stderr
        failed_line = [ln for ln in proc.stderr.splitlines() if ln.startswith("failed jobs:")]
        assert failed_line and "#1" in failed_line[0], proc.stderr[-3000:]
        # the third job may still be finishing when the parent gives up: wait for Slurm's
        # final states (bounded), then summarize
        _final_states(
            [d.name for d in (sweep_dir / ".submitit").glob("*_*") if d.is_dir()], timeout=120
        )
        reports = {r.num: r for r in sweep.summarize(sweep_dir)}
    finally:
        _cancel_all(sweep_dir)
    assert reports[0].finished, reports[0]
    assert reports[1].status == "failed" and "CANCELLED" in reports[1].reason, reports[1]
    assert reports[2].status == "failed" and "out of range" in reports[2].reason, reports[2]
    assert not (job_dirs(sweep_dir).get(2, tmp_path) / "summary.json").exists()
    code, out = sweep_cli(sweep_dir)
    assert code == 1 and "1 finished, 2 failed" in out and "failed jobs: #1, #2" in out
    print(f"cancel sweep: {seconds:.1f} s, parent gave up {waited:.1f} s after the cancel")
    assert waited < 120


@pytest.mark.slurm
def test_unknown_partition_is_one_line(slurm_partition, tmp_path):
    proc, _ = run_cfgen(
        [
            "-m",
            "hydra/launcher=submitit_slurm",
            "hydra.launcher.partition=nosuch",
            *TINY,
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("cfgen: error: hydra.launcher.partition='nosuch' is not accepted")
    assert "invalid partition" in lines[0]
    assert not (tmp_path / "sweep").exists(), "nothing was submitted"
