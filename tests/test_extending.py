"""Adding a method means one module and one YAML file outside the package (docs/extending.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "nearest_row"


def _cli(module: str, *args: str, cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    path = f"{pythonpath}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    env = {**os.environ, "PYTHONPATH": path}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def test_out_of_package_method_runs_through_the_app_and_the_report(tmp_path):
    plugin = tmp_path / "plugin"
    shutil.copytree(EXAMPLE, plugin)
    sweep = tmp_path / "sweep"
    proc = _cli(
        "cfgen",
        "-m",
        "--config-dir",
        str(plugin / "conf"),
        "method=dpg_ga,nearest_row",
        "experiment_params.num_samples=3",
        "experiment_params.num_replications=1",
        "experiment_params.parallel_replications=false",
        "output.table=false",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        pythonpath=plugin,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = sorted(p.parent for p in sweep.glob("*/summary.json"))
    assert len(runs) == 2
    cfs = pd.read_csv(next(r for r in runs if "nearest_row" in r.name) / "counterfactuals.csv")
    assert set(cfs["method"]) == {"nearest_row"} and len(cfs) > 0
    # every counterfactual is a real training row of the target class: re-check with the model
    from conftest import compose_config

    from cfgen.problem import Problem

    cfg = compose_config([])
    problem = Problem.from_config(cfg.dataset, cfg.model)
    X = cfs[problem.schema.names].to_numpy(dtype=float)
    targets = [problem.class_names.index(t) for t in cfs["target"]]
    assert np.array_equal(problem.predict(X), targets)
    train = {tuple(r) for r in problem.X_train}
    assert all(tuple(r) in train for r in X)
    # the report compares the plug-in with dpg_ga without knowing either name
    out = tmp_path / "report"
    rep = _cli("cfgen.report", str(sweep), "--out", str(out), cwd=tmp_path, pythonpath=plugin)
    assert rep.returncode == 0, rep.stderr[-2000:]
    comparison = pd.read_csv(out / "comparison.csv")
    assert set(comparison["method"]) == {"dpg_ga", "nearest_row"}


def test_unknown_plugin_key_is_one_line(tmp_path):
    plugin = tmp_path / "plugin"
    shutil.copytree(EXAMPLE, plugin)
    proc = _cli(
        "cfgen",
        "--config-dir",
        str(plugin / "conf"),
        "method=nearest_row",
        "+method.max_rowz=3",
        cwd=tmp_path,
        pythonpath=plugin,
    )
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert err[-1].startswith("cfgen: error: method.max_rowz is not a config key")
    assert "did you mean method.max_rows?" in err[-1]
