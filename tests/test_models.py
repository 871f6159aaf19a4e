"""The models people actually use (issue 12): every preset end to end, any estimator by
``model._target_``, and one clear line for a model cfgen cannot explain.

Validity is re-checked with the fitted model's own ``predict`` (on the returned arrays and on the
decoded ``counterfactuals.csv`` encoded back); the compiled predictor is compared with the
library's ``predict_proba``; bad input is checked at both doors (the CLI's exit code 2 with one
line on stderr, and :class:`ConfigError` from the API).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import compose_config

from cfgen.errors import ConfigError
from cfgen.experiment import run
from cfgen.models import SUPPORTED, model_overrides
from cfgen.problem import Problem

ROOT = Path(__file__).resolve().parents[1]

#: a run with the default queries (num_samples 3, seed 42) and the default genetic search
RUN = [
    "dataset=diabetes",
    "experiment_params.num_replications=1",
    "experiment_params.parallel_replications=false",
    "output.table=false",
]

BOOSTED = ["xgboost", "lightgbm", "hist_gradient_boosting"]
NOT_TREES = ["logistic_regression", "mlp"]


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "cfgen", *args, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _error_line(proc: subprocess.CompletedProcess) -> str:
    """The CLI's one error line (exit 2, nothing else on stderr)."""
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("cfgen: error: ")
    return lines[0]


def _check_valid(result, run_dir: Path) -> int:
    """Every counterfactual is in its target class by the fitted model's own predict: the
    arrays the method returned, and the decoded CSV rows encoded back."""
    problem, model = result.problem, result.problem.model
    by_index = {r.index: r for r in result.results}
    n = 0
    for t in result.tasks:
        r = by_index[t.index]
        assert r.error is None, r.error
        cfs = np.asarray(r.counterfactuals, dtype=float)
        assert len(cfs) > 0, f"task {t.index}: no counterfactual"
        assert np.all(np.asarray(model.predict(cfs)) == t.target)
        n += len(cfs)
    frame = pd.read_csv(run_dir / "counterfactuals.csv")
    assert len(frame) == n
    encoded = problem.encode(frame[problem.schema.names])
    targets = [problem.class_names.index(str(c)) for c in frame["target"]]
    assert np.array_equal(np.asarray(model.predict(encoded)), targets)
    return n


# ----------------------------------------------------------------------------- presets
@pytest.mark.parametrize("name", BOOSTED + NOT_TREES)
def test_preset_runs_end_to_end_with_validity_one(name, tmp_path):
    result = run(compose_config([f"model={name}", *RUN]), tmp_path)
    assert _check_valid(result, tmp_path) > 0
    for f in (
        "counterfactuals.csv",
        "metrics.csv",
        "changes.csv",
        "queries.csv",
        "summary.json",
        "constraints.json",
    ):
        assert (tmp_path / f).is_file(), f
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["validity"] == 1.0 and summary["n_failed"] == 0
    assert len(summary["queries"]) == 3
    problem = result.problem
    if name in BOOSTED:
        assert summary["bounds_mode"] == "paths" and summary["uses_bounds"] is True
        assert problem.trees is not None and problem.trees.kind != "vote"
    else:
        assert summary["bounds_mode"] == "none" and summary["uses_bounds"] is False
        assert summary["bounds_note"].startswith("model is not a tree ensemble (")
        assert problem.trees is None
    # the predictor the search uses answers the library's own probabilities
    X = problem.X_test[:50]
    assert np.allclose(
        problem.predictor.predict_proba(X), problem.model.predict_proba(X), atol=1e-6
    )


def test_cli_xgboost_end_to_end(tmp_path):
    proc = _cli(tmp_path, "model=xgboost", *RUN)
    assert proc.returncode == 0, proc.stderr
    assert "validity 1.000" in proc.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["model"] == "XGBClassifier" and summary["bounds_mode"] == "paths"
    assert summary["validity"] == 1.0


@pytest.mark.parametrize("name", ["german_credit", "diabetes"])
def test_encoded_prep_equals_scikit_learns_column_transformer(name):
    """The presets' numpy preprocessing gives scikit-learn's numbers exactly, unseen codes
    included (all zeros, like handle_unknown="ignore")."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from cfgen.data import load_dataset
    from cfgen.prep import EncodedPrep

    data = load_dataset(compose_config([f"dataset={name}"]).dataset)
    cat = np.flatnonzero(data.schema.categorical).tolist()
    assert bool(cat) == (name == "german_credit")
    ref = ColumnTransformer(
        [("c", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cat)] if cat else [],
        remainder=StandardScaler(),
    ).fit(data.X_train)
    ours = EncodedPrep(cat).fit(data.X_train)
    X = data.X_test.copy()
    if cat:
        X[0, cat[0]] = 99  # a code the encoder never saw
    assert np.array_equal(ours.transform(X), ref.transform(X))
    with pytest.raises(ValueError, match="expected"):
        ours.transform(X[:, :-1])


# ----------------------------------------------------------------------------- any estimator
def test_model_overrides_rewrites_only_what_needs_it():
    assert model_overrides(["model._target_=a.B", "model.C=1"]) == [
        "model=custom",
        "++model._target_=a.B",
        "++model.C=1",
    ]
    # a chosen preset keeps its settings; explicit +, ++ and ~ are left alone
    assert model_overrides(
        [
            "model=xgboost",
            "model._target_=a.B",
            "+model.x=1",
            "~model.n_estimators",
            "++model.y=2",
            "dataset=iris",
        ]
    ) == [
        "model=xgboost",
        "++model._target_=a.B",
        "+model.x=1",
        "~model.n_estimators",
        "++model.y=2",
        "dataset=iris",
    ]
    assert model_overrides(["model.n_estimators=50"]) == ["++model.n_estimators=50"]
    # the old workaround (deleting the forest's keys) still works: they are not there any more
    assert model_overrides(["model._target_=a.B", "~model.n_estimators"]) == [
        "model=custom",
        "++model._target_=a.B",
    ]
    assert model_overrides(["-m", "dataset=iris"]) == ["-m", "dataset=iris"]


def test_bare_target_logistic_regression_from_the_api(tmp_path):
    """``model._target_=...LogisticRegression``: no random-forest keys are carried over (it
    failed with "unexpected keyword argument 'n_estimators'"), its own arguments reach it."""
    cfg = compose_config(
        [
            "model._target_=sklearn.linear_model.LogisticRegression",
            "model.C=0.5",
            "model.max_iter=2000",
            *RUN,
        ]
    )
    assert dict(cfg.model) == {
        "_target_": "sklearn.linear_model.LogisticRegression",
        "C": 0.5,
        "max_iter": 2000,
    }
    result = run(cfg, tmp_path)
    model = result.problem.model
    assert type(model).__name__ == "LogisticRegression" and model.C == 0.5
    assert _check_valid(result, tmp_path) > 0
    assert result.summary["bounds_mode"] == "none"


def test_bare_target_logistic_regression_from_the_cli(tmp_path):
    proc = _cli(tmp_path, "model._target_=sklearn.linear_model.LogisticRegression", *RUN)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["model_target"] == "sklearn.linear_model.LogisticRegression"
    assert summary["validity"] == 1.0


def test_unsupported_tree_model_runs_as_a_black_box(tmp_path):
    """LightGBM treating zero as missing is refused by the tree view (cfgen.trees); the model
    is then explained through its own predict_proba, without class bounds."""
    result = run(compose_config(["model=lightgbm", "model.zero_as_missing=true", *RUN]), tmp_path)
    assert result.problem.model.get_params()["zero_as_missing"] is True
    assert result.problem.trees is None
    assert result.summary["bounds_mode"] == "none"
    assert _check_valid(result, tmp_path) > 0 and result.summary["validity"] == 1.0


@pytest.mark.slow
def test_categorical_splits_run_as_a_black_box(tmp_path):
    """HistGradientBoosting with categorical splits (german_credit's codes) is not compiled."""
    over = [o for o in RUN if not o.startswith("dataset=")]
    result = run(
        compose_config(
            [
                "dataset=german_credit",
                "model=hist_gradient_boosting",
                "model.categorical_features=[0,2,3]",
                "experiment_params.num_samples=1",
                *over,
            ]
        ),
        tmp_path,
    )
    assert result.problem.model.is_categorical_.any()
    assert result.problem.trees is None and result.summary["bounds_mode"] == "none"
    assert _check_valid(result, tmp_path) > 0


@pytest.mark.slow
def test_a_model_folder_in_config_dir(tmp_path):
    """--config-dir DIR with DIR/model/<name>.yaml adds a preset of your own."""
    conf = tmp_path / "conf" / "model"
    conf.mkdir(parents=True)
    (conf / "knn.yaml").write_text(
        "_target_: cfgen.models.preprocessed\n"
        "classifier:\n"
        "  _target_: sklearn.neighbors.KNeighborsClassifier\n"
        "  n_neighbors: 7\n"
    )
    proc = _cli(tmp_path, "--config-dir", str(tmp_path / "conf"), "model=knn", *RUN)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["model_target"] == "cfgen.models.preprocessed"
    assert summary["bounds_mode"] == "none" and summary["validity"] == 1.0


def test_removing_a_preset_key_gives_the_library_default():
    cfg = compose_config(["~model.n_estimators", "dataset=diabetes"])
    assert "n_estimators" not in cfg.model
    problem = Problem.from_config(cfg.dataset, cfg.model)
    assert len(problem.model.estimators_) == 100  # scikit-learn's own default
    assert problem.model.max_depth == 5  # the rest of the paper's diabetes forest stays


def test_paper_forest_settings_only_for_random_forest():
    rf = compose_config(["model=random_forest", "dataset=diabetes"]).model
    assert (rf.n_estimators, rf.max_depth, rf.max_features) == (12, 5, None)
    et = compose_config(["model=extra_trees", "dataset=diabetes"]).model
    assert et._target_ == "sklearn.ensemble.ExtraTreesClassifier"
    assert (et.n_estimators, et.max_depth, et.max_features) == (100, None, "sqrt")
    bare = compose_config(
        ["model._target_=sklearn.ensemble.RandomForestClassifier", "dataset=diabetes"]
    ).model
    assert dict(bare) == {"_target_": "sklearn.ensemble.RandomForestClassifier"}


def test_misspelt_argument_names_the_key_and_the_closest_one():
    with pytest.raises(ConfigError) as err:
        run(compose_config(["model.n_estimator=5", *RUN]), "unused")
    msg = str(err.value)
    assert "\n" not in msg and "model.n_estimator " in msg
    assert "did you mean model.n_estimators?" in msg
    with pytest.raises(
        ConfigError,
        match=r"^model\.n_estimators is not allowed: "
        r"LogisticRegression takes no argument 'n_estimators'",
    ):
        compose_and_validate(
            ["model._target_=sklearn.linear_model.LogisticRegression", "model.n_estimators=5"]
        )
    with pytest.raises(ConfigError, match=r"^model\._target_ is missing"):
        compose_and_validate(["model=custom"])
    with pytest.raises(ConfigError, match=r"^model\._target_='nope\.Nope' cannot be imported"):
        compose_and_validate(["model._target_=nope.Nope"])


def compose_and_validate(overrides: list[str]) -> None:
    from cfgen.config import validate

    validate(compose_config(overrides))


# ----------------------------------------------------------------------------- bad models
BAD_CONFIG = {
    "regressor": (
        ["model._target_=sklearn.ensemble.RandomForestRegressor"],
        "model: RandomForestRegressor is not a classifier (a regressor)",
    ),
    "no predict_proba": (
        ["model._target_=sklearn.svm.LinearSVC"],
        "model: LinearSVC has no predict_proba",
    ),
    "multi-output": (
        [
            "model._target_=sklearn.multioutput.MultiOutputClassifier",
            "model.estimator._target_=sklearn.linear_model.LogisticRegression",
        ],
        "model: MultiOutputClassifier is a multi-output model",
    ),
    "pipeline": (
        [
            "model._target_=cfgen.models.preprocessed",
            "model.classifier._target_=sklearn.linear_model.Ridge",
        ],
        "model: a Pipeline ending in Ridge is not a classifier (a regressor)",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CONFIG))
def test_bad_model_from_config_is_one_line(case, tmp_path):
    overrides, start = BAD_CONFIG[case]
    with pytest.raises(ConfigError) as err:
        run(compose_config([*overrides, *RUN]), tmp_path)
    msg = str(err.value)
    assert msg.startswith(start) and "\n" not in msg
    assert msg.endswith(f"expected {SUPPORTED}")


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_CONFIG))
def test_bad_model_from_the_cli_exits_2(case, tmp_path):
    overrides, start = BAD_CONFIG[case]
    line = _error_line(_cli(tmp_path, *overrides, *RUN))
    assert line.startswith(f"cfgen: error: {start}") and SUPPORTED in line
    assert not (tmp_path / "run" / "summary.json").exists()


def test_regressor_from_the_cli_exits_2_with_one_line(tmp_path):
    line = _error_line(_cli(tmp_path, *BAD_CONFIG["regressor"][0], *RUN))
    assert line.startswith("cfgen: error: model: RandomForestRegressor is not a classifier")
    assert SUPPORTED in line


def _api_models() -> dict[str, tuple[object, str]]:
    from sklearn.datasets import load_iris
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.multioutput import MultiOutputClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    X, y = load_iris(return_X_y=True)
    Y2 = np.c_[y, y % 2]
    return {
        "regressor": (
            RandomForestRegressor(n_estimators=3, random_state=0).fit(X, y),
            "model: RandomForestRegressor is not a classifier (a regressor)",
        ),
        "no predict_proba": (
            LinearSVC(random_state=0).fit(X, y),
            "model: LinearSVC has no predict_proba",
        ),
        "multi-output wrapper": (
            MultiOutputClassifier(RandomForestClassifier(n_estimators=3, random_state=0)).fit(
                X, Y2
            ),
            "model: MultiOutputClassifier is a multi-output model",
        ),
        "multi-output forest": (
            RandomForestClassifier(n_estimators=3, random_state=0).fit(X, Y2),
            "model: RandomForestClassifier is a multi-output",
        ),
        "pipeline": (
            make_pipeline(StandardScaler(), PCA(2)).fit(X, y),
            "model: a Pipeline ending in PCA is not a classifier",
        ),
        "unfitted": (RandomForestClassifier(), "model: RandomForestClassifier is not fitted"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "regressor",
        "no predict_proba",
        "multi-output wrapper",
        "multi-output forest",
        "pipeline",
        "unfitted",
    ],
)
def test_bad_model_from_the_api_is_one_line(case):
    from sklearn.datasets import load_iris

    from cfgen.api import CounterfactualExplainer

    X, y = load_iris(return_X_y=True)
    model, start = _api_models()[case]
    with pytest.raises(ConfigError) as err:
        CounterfactualExplainer(model, X, y)
    msg = str(err.value)
    assert msg.startswith(start) and "\n" not in msg and SUPPORTED in msg


# ----------------------------------------------------------------------------- bounds
DPG_REFUSED = {
    "logistic_regression": "method.bounds.mode='dpg' needs a tree ensemble",
    "xgboost": "method.bounds.mode='dpg' needs a voting forest",
}
ALTERNATIVES = {
    "logistic_regression": "use method.bounds.mode=auto or none",
    "xgboost": "use method.bounds.mode=paths, mass or none",
}


@pytest.mark.parametrize("name", list(DPG_REFUSED))
def test_dpg_bounds_on_a_model_it_does_not_fit_is_one_line(name, tmp_path):
    with pytest.raises(ConfigError) as err:
        run(compose_config([f"model={name}", "method.bounds.mode=dpg", *RUN]), tmp_path)
    msg = str(err.value)
    assert msg.startswith(DPG_REFUSED[name]) and "\n" not in msg
    assert ALTERNATIVES[name] in msg, msg


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DPG_REFUSED))
def test_dpg_bounds_refused_from_the_cli_exits_2(name, tmp_path):
    line = _error_line(_cli(tmp_path, f"model={name}", "method.bounds.mode=dpg", *RUN))
    assert line.startswith(f"cfgen: error: {DPG_REFUSED[name]}")
