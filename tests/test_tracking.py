"""W&B tracking: offline runs read back from their .wandb file, online without network, failures.

Every test here keeps W&B local: WANDB_SILENT, WANDB_DIR/CONFIG/CACHE/DATA in a temp folder,
no API key, offline mode (or a base URL nothing listens on), so nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from wandb_reader import find_offline_runs, read_offline_run

from cfgen import tracking
from cfgen.errors import ConfigError
from cfgen.experiment import run
from cfgen.tracking import NullTracker, api_key_configured, resolve_mode

ROOT = Path(__file__).resolve().parents[1]
# every summary key docs/tracking.md promises (besides summary.json's own keys)
SUMMARY_KEYS = {
    "model/train_accuracy",
    "model/test_accuracy",
    "model/seconds",
    "bounds/mode",
    "bounds/n_intervals",
    "bounds/table",
    "tasks/table",
    "queries/table",
}
TASK_KEYS = {
    "task/index",
    "task/query",
    "task/target",
    "task/combination",
    "task/replication",
    "task/success",
    "task/generations",
    "task/n_counterfactuals",
    "task/n_valid",
    "task/validity",
    "task/runtime",
    "task/failed",
}
SUMMARY_JSON_KEYS = {
    "dataset",
    "method",
    "train_accuracy",
    "test_accuracy",
    "n_tasks",
    "n_failed",
    "validity",
    "wall_seconds",
}


WANDB_UNSET = (
    "WANDB_API_KEY",
    "WANDB_MODE",
    "WANDB_BASE_URL",
    "WANDB_IDENTITY_TOKEN_FILE",
    "WANDB_ENTITY",
    "WANDB_PROJECT",
    "WANDB_RUN_GROUP",
    "WANDB_TAGS",
)


def _wandb_vars(tmp: Path) -> dict[str, str]:
    """Variables that keep W&B entirely inside ``tmp`` (dirs made here)."""
    values = {
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(tmp / "wandb-dir"),
        "WANDB_CONFIG_DIR": str(tmp / "wandb-config"),
        "WANDB_CACHE_DIR": str(tmp / "wandb-cache"),
        "WANDB_DATA_DIR": str(tmp / "wandb-data"),
    }
    for key, v in values.items():
        if key != "WANDB_SILENT":  # the only value that is not a directory
            Path(v).mkdir(parents=True, exist_ok=True)
    values["NETRC"] = str(tmp / "no-netrc")  # no credentials
    return values


def _wandb_env(monkeypatch, tmp: Path) -> None:
    for var in WANDB_UNSET:
        monkeypatch.delenv(var, raising=False)
    for k, v in _wandb_vars(tmp).items():
        monkeypatch.setenv(k, v)


def wandb_subprocess_env(tmp: Path) -> dict[str, str]:
    """os.environ for a child process, W&B confined to ``tmp``, no credentials."""
    env = {k: v for k, v in os.environ.items() if k not in WANDB_UNSET}
    env.update(_wandb_vars(tmp))
    return env


@pytest.fixture
def wandb_local(monkeypatch, tmp_path):
    """W&B confined to tmp_path, offline, no credentials; wandb's process state reset after."""
    _wandb_env(monkeypatch, tmp_path)
    yield tmp_path
    import wandb

    wandb.teardown()


# ------------------------------------------------------------------------ offline, read back --


def test_offline_run_logs_the_documented_keys(cfg_factory, wandb_local):
    run_dir = wandb_local / "run"
    cfg = cfg_factory("logger=wandb", "logger.tags=[paper]", "experiment_params.num_samples=1")
    result = run(cfg, run_dir)

    runs = find_offline_runs(run_dir)
    assert len(runs) == 1, "one offline W&B run, inside the run directory"
    logged = read_offline_run(run_dir)
    assert logged["project"] == "cfgen" and logged["exit_code"] == 0
    assert set(logged["tags"]) == {"iris", "dpg_ga", "paper"}
    assert logged["group"] == "" and logged["job_type"] == "run"  # not a multirun
    # the resolved config
    assert logged["config"]["dataset"]["name"] == "iris"
    assert logged["config"]["method"]["ga"]["population_size"] == cfg.method.ga.population_size
    assert logged["config"]["logger"]["name"] == "wandb"
    # the run summary: every aggregated metric of summary.json, plus the documented keys
    summary = logged["summary"]
    local = json.loads((run_dir / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary), SUMMARY_KEYS - set(summary)
    assert SUMMARY_JSON_KEYS <= set(summary)
    assert summary["validity"] == pytest.approx(local["validity"])
    assert summary["n_tasks"] == local["n_tasks"] == len(result.tasks)
    assert summary["model/test_accuracy"] == pytest.approx(result.problem.test_accuracy)
    assert any(k.startswith("query/") and k.endswith("/validity") for k in summary)
    assert not any(k.startswith("task/") for k in summary), "task/* is history, not summary"
    # one history row per task, with the per-task keys
    task_rows = [h for h in logged["history"] if "task/index" in h]
    assert len(task_rows) == len(result.tasks)
    assert TASK_KEYS <= set(task_rows[0]), TASK_KEYS - set(task_rows[0])
    assert [r["task/index"] for r in task_rows] == [t.index for t in result.tasks]
    by_index = {r.index: r for r in result.results}
    for row in task_rows:
        assert row["task/generations"] == by_index[row["task/index"]].generations
    # tables (bounds, tasks, queries, fitness curves) were written as run files
    files = logged["files"]
    for key in ("bounds/table", "tasks/table", "queries/table"):
        assert any(f.startswith(f"media/table/{key}") for f in files), key
    if any(r.best_fitness.size for r in result.results):
        assert "fitness/table" in summary and "fitness/best_table" in summary
        curve = json.loads(next(runs[0].glob("files/media/table/fitness/table_*.json")).read_text())
        assert curve["columns"] == ["task", "generation", "best_fitness", "mean_fitness"]
    bounds = json.loads(next(runs[0].glob("files/media/table/bounds/table_*.json")).read_text())
    assert bounds["columns"][:4] == ["class", "feature", "low", "high"]
    assert len(bounds["data"]) == summary["bounds/n_intervals"] > 0
    # the output files as an artifact
    arts = [a for a in logged["artifacts"] if a["type"] == "results"]
    assert len(arts) == 1 and arts[0]["name"] == f"results-{logged['id']}"
    assert {
        "summary.json",
        "counterfactuals.csv",
        "metrics.csv",
        "config.yaml",
        "constraints.json",
    } <= set(arts[0]["files"])
    assert not any(f.startswith("wandb/") for f in arts[0]["files"])


def test_plots_are_logged_as_images(cfg_factory, wandb_local):
    """run_dir/plots/*.png become plots/<name> images (made here: plotting is not this test's)."""
    Image = pytest.importorskip("PIL.Image")
    run_dir = wandb_local / "run"
    (run_dir / "plots").mkdir(parents=True)
    Image.new("RGB", (8, 8), (200, 30, 30)).save(run_dir / "plots" / "fitness.png")
    cfg = cfg_factory(
        "logger=wandb", "experiment_params.num_samples=1", "experiment_params.num_replications=1"
    )
    tracker = tracking.make_tracker(cfg, run_dir)
    tracker.log_files(run_dir)
    tracker.finish()
    logged = read_offline_run(run_dir)
    rows = [h for h in logged["history"] if "plots/fitness" in h]
    assert rows and rows[0]["plots/fitness"]["_type"] == "image-file"
    assert any(f.startswith("media/images/plots/fitness") for f in logged["files"])
    art = next(a for a in logged["artifacts"] if a["type"] == "results")
    assert "plots/fitness.png" in art["files"]


def test_disabled_mode_writes_nothing(cfg_factory, wandb_local):
    run_dir = wandb_local / "run"
    run(
        cfg_factory(
            "logger=wandb",
            "logger.mode=disabled",
            "experiment_params.num_samples=1",
            "experiment_params.num_replications=1",
        ),
        run_dir,
    )
    assert (run_dir / "summary.json").is_file()
    assert not find_offline_runs(run_dir)


# ---------------------------------------------------------------- failures never lose results --


def test_tracking_failure_is_a_warning(cfg_factory, wandb_local, monkeypatch, caplog):
    import wandb

    def broken(self, *args, **kwargs):
        raise RuntimeError("quota exceeded")

    monkeypatch.setattr(wandb.Run, "log", broken)
    monkeypatch.setattr(wandb.Run, "log_artifact", broken)
    run_dir = wandb_local / "run"
    with caplog.at_level("WARNING", logger="cfgen.tracking"):
        result = run(cfg_factory("logger=wandb", "experiment_params.num_samples=1"), run_dir)
    assert (run_dir / "summary.json").is_file() and (run_dir / "counterfactuals.csv").is_file()
    assert result.summary["n_tasks"] == len(result.tasks)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("quota exceeded" in w and str(run_dir) in w for w in warnings)
    # one warning per hook, not one per task
    assert sum("log_task" in w for w in warnings) == 1


def test_broken_wandb_import_is_a_warning(cfg_factory, tmp_path, monkeypatch, caplog):
    """wandb findable but failing at import time: warn, track nothing, keep the experiment."""
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError("libsomething.so: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    cfg = cfg_factory(
        "logger=wandb", "experiment_params.num_samples=1", "experiment_params.num_replications=1"
    )
    with caplog.at_level("WARNING", logger="cfgen.tracking"):
        tracker = tracking.make_tracker(cfg, tmp_path)
    assert isinstance(tracker, NullTracker)
    assert "import wandb" in caplog.text and "cannot open shared object" in caplog.text


def test_wandb_not_installed_is_one_clear_line(monkeypatch, cfg_factory, tmp_path):
    from cfgen.cli import precheck

    monkeypatch.setitem(sys.modules, "wandb", None)  # find_spec → None, import → ImportError
    assert not tracking.wandb_installed()
    with pytest.raises(ConfigError) as info:
        precheck(["logger=wandb"])
    msg = str(info.value)
    assert "logger=wandb" in msg and 'pip install "cfgen-dpg[tracking]"' in msg and "\n" not in msg
    with pytest.raises(ConfigError, match=r'pip install "cfgen-dpg\[tracking\]"'):
        run(cfg_factory("logger=wandb"), tmp_path / "run")
    assert not (tmp_path / "run" / "summary.json").exists()


def test_wandb_not_installed_cli(tmp_path):
    code = (
        "import sys; sys.modules['wandb'] = None; sys.argv = ['cfgen', 'logger=wandb']; "
        "from cfgen.__main__ import main; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("cfgen: error: logger=wandb needs the wandb package")
    assert 'pip install "cfgen-dpg[tracking]"' in lines[0]


def test_online_without_network_keeps_results(tmp_path):
    """logger.mode=online, an API key, no server: bounded wait, results intact, offline copy."""
    env = wandb_subprocess_env(tmp_path)
    env["WANDB_API_KEY"] = "x" * 40
    env["WANDB_BASE_URL"] = "http://127.0.0.1:9"  # nothing listens on the discard port
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cfgen",
            "logger=wandb",
            "logger.mode=online",
            "logger.init_timeout=3",
            "method/ga=quick",
            "experiment_params.num_samples=1",
            "experiment_params.num_replications=1",
            "experiment_params.parallel_replications=false",
            "output.table=false",
            f"hydra.run.dir={run_dir}",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (run_dir / "summary.json").is_file() and (run_dir / "counterfactuals.csv").is_file()
    out = proc.stdout + proc.stderr
    assert "W&B online init failed" in out and "wandb sync" in out
    offline = find_offline_runs(run_dir)
    assert len(offline) == 1 and not list(run_dir.glob("wandb/run-*"))
    assert read_offline_run(offline[0])["summary"]["n_tasks"] >= 1


# ------------------------------------------------------------------------ mode resolution -----


def test_mode_follows_credentials(monkeypatch, tmp_path):
    _wandb_env(monkeypatch, tmp_path)
    assert not api_key_configured()
    assert resolve_mode(None) == "offline"
    assert resolve_mode("online") == "online" and resolve_mode("disabled") == "disabled"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode(None) == "disabled"
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert resolve_mode(None) == "online"
    monkeypatch.delenv("WANDB_API_KEY")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "p" * 40 + "\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert api_key_configured() and resolve_mode(None) == "online"
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")  # key is for another host
    assert not api_key_configured()
    settings = Path(os.environ["WANDB_CONFIG_DIR"]) / "settings"
    settings.write_text("[default]\napi_key = " + "s" * 40 + "\n")
    assert api_key_configured()


def test_init_timeout_must_be_positive(cfg_factory):
    with pytest.raises(ConfigError, match="logger.init_timeout=0.0 is not allowed"):
        tracking.check(cfg_factory("logger=wandb", "logger.init_timeout=0"))


def test_logging_libraries_are_lazy():
    code = (
        "import sys, cfgen.__main__, cfgen.experiment, cfgen.tracking, cfgen.sweep; "
        "print(sorted(m for m in ('wandb', 'submitit') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "[]"


def test_multirun_job_is_grouped_by_its_sweep(cfg_factory, wandb_local, monkeypatch):
    """In a -m sweep each job is one run: group = the multirun dir, name = the job's dir.

    (The real thing, through Hydra and Slurm, is checked in tests/test_slurm.py.)
    """
    sweep_dir = str(wandb_local / "multirun" / "2026-01-31" / "12-00-00")
    monkeypatch.setattr(tracking, "_multirun_context", lambda: (sweep_dir, "1_seed=2"))
    run_dir = wandb_local / "job"
    cfg = cfg_factory(
        "logger=wandb",
        "experiment_params.num_samples=1",
        "experiment_params.num_replications=1",
        "logger.tags=[a,iris]",
    )
    tracking.make_tracker(cfg, run_dir).finish()
    logged = read_offline_run(run_dir)
    assert logged["group"] == sweep_dir and logged["job_type"] == "multirun"
    assert logged["name"] == "1_seed=2"
    assert logged["tags"] == ["iris", "dpg_ga", "a"]
    cfg = cfg_factory("logger=wandb", "logger.group=mine")
    tracking.make_tracker(cfg, wandb_local / "job2").finish()
    assert read_offline_run(wandb_local / "job2")["group"] == "mine"
