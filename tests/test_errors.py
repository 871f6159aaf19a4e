"""Bad input: one clear line naming the key, the bad value and what is allowed; exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cfgen.cli import precheck, prepare_run
from cfgen.errors import ConfigError
from cfgen.experiment import run
from cfgen.models import model_overrides

MODELS = (
    "custom, decision_tree, extra_trees, gradient_boosting, hist_gradient_boosting, "
    "lightgbm, logistic_regression, mlp, random_forest, xgboost"
)


BAD_INPUT = pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["dataset=nope"], "dataset=nope is not allowed: expected one of abalone,"),
        (["model=svm"], f"model=svm is not allowed: expected one of {MODELS}"),
        (["method/ga=fastest"], "method/ga=fastest is not allowed: expected one of default, quick"),
        (["experiment_params.num_sample=3"], "experiment_params.num_sample is not a config key"),
        (["method.ga.population_size=abc"], "method.ga.population_size"),
        (["experiment_params.num_samples=0"], "experiment_params.num_samples=0 is not allowed"),
        (
            ["method.ga.population_size=-5"],
            "method.ga.population_size=-5 is not allowed: expected >= 2",
        ),
        (["experiment_params.max_workers=0"], "experiment_params.max_workers=0 is not allowed"),
        (["experiment_params.max_workers=1.5"], "experiment_params.max_workers"),
        (["method=lime"], "method=lime is not allowed: expected one of dice_genetic"),
        (["experiment_params.rules=[none,sideways]"], "'sideways' is not one of none, no_change"),
        (["-m", "dataset=iris,nope"], "dataset=nope is not allowed"),
        (["hydra/launcher=nope"], "hydra/launcher=nope is not allowed: expected one of basic"),
        (["method.time_limit=0"], "method.time_limit=0 is not allowed: expected seconds > 0"),
        (["metrics.compat=guidotti"], "metrics.compat='guidotti' is not allowed: expected one of"),
        (["logger.mode=sometimes"], "logger.mode='sometimes' is not allowed: expected one of"),
        (
            ["method.ga.mutation_prob=1.5"],
            "method.ga.mutation_prob=1.5 is not allowed: expected >= 0 and <= 1",
        ),
        (
            ["method.ga.anchor_init_share=0.8", "method.ga.dense_init_share=0.5"],
            "method.ga.anchor_init_share + method.ga.dense_init_share = 1.3 is not allowed: "
            "expected <= 1",
        ),
        (["method.ga.w_distance=-1"], "method.ga.w_distance=-1.0 is not allowed: expected >= 0"),
        (
            ["method.ga.elite=30"],
            "method.ga.elite=30 is not allowed: expected fewer than method.ga.population_size=30",
        ),
        (["method.ga.pool_size=0"], "method.ga.pool_size=0 is not allowed"),
        (
            ["method/bounds=nope"],
            "method/bounds=nope is not allowed: expected one of auto, dpg, mass, none, paths",
        ),
        # typo keys are errors however they are added
        (["+experiment_params.typo_key=1"], "experiment_params.typo_key is not a config key"),
        (
            ["+method.ga.populaton_size=5"],
            "method.ga.populaton_size is not a config key (however it is added, + included); "
            "did you mean method.ga.population_size?",
        ),
        (["++dataset.typo=1"], "dataset.typo is not a config key"),
        (["+method.strategy=random"], "method.strategy is not a config key"),
        # without +: the keys of the chosen method's own settings (the schema leaves them open)
        (["method.foo=1"], "method.foo is not a config key; keys under method: ga, bounds"),
        (
            ["method.ga.population_siz=3"],
            "method.ga.population_siz is not a config key (did you mean "
            "method.ga.population_size?); keys under method.ga: population_size",
        ),
        (["method=exact", "method.ga.x=1"], "keys under method: _target_, _partial_, name"),
        # the old spellings name the new one
        (["ga=quick"], "use method/ga=quick"),
        (["ga.population_size=50"], "use method.ga.population_size=50"),
        (["constraints=paths"], "use method/bounds=paths"),
        (["constraints.mode=mass"], "use method.bounds.mode=mass"),
        (["-m", "ga.population_size=20,50"], "use method.ga.population_size=20,50"),
        (["method=dice_random", "method/ga=quick"], "method/ga=quick"),
    ],
)


@BAD_INPUT
def test_precheck_names_the_key(overrides, expected):
    with pytest.raises(ConfigError) as info:
        precheck(overrides)
    assert expected in str(info.value)
    assert "\n" not in str(info.value).strip()


@BAD_INPUT
def test_single_run_names_the_key(overrides, expected):
    """A single run's one composition (cfgen.cli.prepare_run) reports bad input the same way;
    a sweep is left to precheck (every value) and @hydra.main."""
    from cfgen.__main__ import app

    if "-m" in overrides:
        assert prepare_run(overrides, app) is None
        return
    with pytest.raises(ConfigError) as info:
        prepare_run(overrides, app)
    assert expected in str(info.value)
    assert "\n" not in str(info.value).strip()


def test_single_run_composes_once(tmp_path, monkeypatch):
    """python -m cfgen composes a single run's config once (it was three times: the precheck,
    Hydra's mode probe and Hydra's run), as @hydra.main would, and locks the run directory."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    from cfgen.__main__ import app

    calls = []
    load = ConfigLoaderImpl.load_configuration

    def counted(self, *args, **kwargs):
        calls.append(kwargs.get("overrides"))
        return load(self, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counted)
    seen = []
    prepared = prepare_run(
        ["dataset=diabetes", f"hydra.run.dir={tmp_path / 'run'}"], app, on_composed=seen.append
    )
    assert prepared is not None and len(calls) == 1 and len(seen) == 1
    assert prepared.cfg.dataset.name == "diabetes" and prepared.cfg.hydra.job.name == "__main__"
    assert prepared.lock is not None and (tmp_path / "run" / ".lock").exists()
    prepared.lock.release()
    for argv in (["--help"], ["--cfg", "job"], ["-m", "dataset=iris,diabetes"]):
        assert prepare_run(argv, app) is None


def test_good_overrides_pass():
    precheck(["-m", "dataset=iris,diabetes", "method.ga.population_size=20,50"])
    precheck(
        [
            "method/ga=quick",
            "method/bounds=paths",
            "method.ga.operators.mate=cxBlend",
            "method.ga.operators.mate_args={alpha: 0.5}",
        ]
    )
    precheck(["model=xgboost", "model.n_estimators=10"])
    # the command line's own rewriting (cfgen.models.model_overrides), as __main__ applies it
    precheck(
        model_overrides(
            ["model._target_=sklearn.linear_model.LogisticRegression", "~model.n_estimators"]
        )
    )


def test_missing_file_names_path_and_variable(cfg_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("CFGEN_DATA_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="CFGEN_DATA_DIR") as info:
        run(cfg_factory("dataset=diabetes"), tmp_path / "run")
    assert str(tmp_path / "diabetes.csv") in str(info.value)


def test_target_not_in_file(cfg_factory, tmp_path):
    with pytest.raises(ConfigError, match="dataset.target='Outcomes' is not a column"):
        run(cfg_factory("dataset=diabetes", "dataset.target=Outcomes"), tmp_path)


def test_sample_indices_out_of_range(cfg_factory, tmp_path):
    with pytest.raises(ConfigError, match=r"sample_indices=\[0, 30\] has \[30\] out of range"):
        run(cfg_factory("experiment_params.sample_indices=[0,30]"), tmp_path)


def test_one_class_dataset(cfg_factory, tmp_path, monkeypatch):
    (tmp_path / "one.csv").write_text("a,b,y\n1,2,0\n2,3,0\n3,4,0\n4,5,0\n5,6,0\n")
    monkeypatch.setenv("CFGEN_DATA_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="dataset.target='y' has one class"):
        run(
            cfg_factory(
                "dataset=diabetes",
                "dataset.file=one.csv",
                "dataset.target=y",
                "dataset.zero_as_missing=[]",
                "dataset.actionability={}",
            ),
            tmp_path / "r",
        )


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "cfgen", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


def test_cli_bad_override_one_line_exit_2():
    proc = _cli("dataset=nope")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("cfgen: error: dataset=nope is not allowed")
    assert "Traceback" not in proc.stderr


def test_cli_missing_file_one_line_exit_2(tmp_path):
    proc = _cli(
        "dataset=german_credit",
        "hydra.run.dir=" + str(tmp_path / "run"),
        env={"CFGEN_DATA_DIR": str(tmp_path)},
    )
    assert proc.returncode == 2
    err = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("cfgen: error:")]
    assert len(err) == 1 and "german_credit.csv" in err[0] and "CFGEN_DATA_DIR" in err[0]
    assert "Traceback" not in proc.stderr


def test_population_too_large_for_memory_is_refused_before_starting(cfg_factory, tmp_path):
    """method.ga.population_size=100000 would need ~150 GiB for its pairwise distances: refused
    with one line before any task runs (it used to be a failed task and exit 0)."""
    with pytest.raises(ConfigError) as info:
        run(cfg_factory("method.ga.population_size=100000"), tmp_path / "run")
    msg = str(info.value)
    assert (
        msg.startswith(
            "method.ga.population_size=100000 is not allowed here: one search needs about"
        )
        and "GiB are available" in msg
    )
    assert not (tmp_path / "run" / "journal" / "results.bin").exists()
