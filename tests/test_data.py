"""Data loading: shipped datasets, your own CSV, row ids, queries, targets and user rules."""

from __future__ import annotations

import gzip
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import compose_config
from sklearn.ensemble import RandomForestClassifier
from test_bad_data import csv_cfg, dataset_cfg

from cfgen.codec import Codec
from cfgen.data import load_dataset, load_queries, queries_frame, resolve_target
from cfgen.datasets import SOURCES, open_dict_overrides, shipped_file
from cfgen.errors import ConfigError
from cfgen.plan import choose_queries
from cfgen.schema import Kind, Rule, actionability_violations

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ["CFGEN_DATA_DIR"]) if os.environ.get("CFGEN_DATA_DIR") else None

# rows, features, classes (counts) of every shipped file: the docs/datasets.md table
SHIPPED = {
    "abalone": (4177, 10, {"-1": 3786, "1": 391}),
    "ecoli": (336, 7, {"-1": 301, "1": 35}),
    "german_credit": (1000, 20, {"0": 700, "1": 300}),
    "libras_move": (360, 90, {"-1": 336, "1": 24}),
    "satimage": (6435, 36, {"-1": 5809, "1": 626}),
    "us_crime": (1994, 100, {"-1": 1844, "1": 150}),
}


@pytest.fixture
def no_data_dir(monkeypatch):
    monkeypatch.delenv("CFGEN_DATA_DIR", raising=False)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_datasets_load_without_a_data_dir(no_data_dir, name):
    rows, features, counts = SHIPPED[name]
    data = load_dataset(dataset_cfg(f"dataset={name}"))
    assert len(data.X_train) + len(data.X_test) == rows and len(data.schema) == features
    y = np.concatenate([data.y_train, data.y_test])
    assert {data.class_names[c]: int((y == c).sum()) for c in range(data.n_classes)} == counts
    ids = np.sort(np.concatenate([data.row_id_train, data.row_id_test]))
    np.testing.assert_array_equal(ids, np.arange(rows))
    assert SOURCES[name].shipped and shipped_file(f"{name}.csv") is not None


@pytest.mark.skipif(
    SHARED is None or not SHARED.is_dir(),
    reason="CFGEN_DATA_DIR (the shared original CSVs) is not a directory",
)
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_copy_is_the_original_file(name):
    packed = shipped_file(f"{name}.csv")
    assert packed is not None
    assert gzip.decompress(packed.read_bytes()) == (SHARED / f"{name}.csv").read_bytes()


def test_only_shipped_files_are_in_the_package():
    packed = sorted(p.name for p in shipped_file("abalone.csv").parent.glob("*.csv.gz"))
    assert packed == sorted(f"{n}.csv.gz" for n, s in SOURCES.items() if s.shipped)
    conf = {p.stem for p in (ROOT / "cfgen/conf/dataset").glob("*.yaml")} - {"csv", "iris"}
    assert conf == set(SOURCES)  # every dataset file has its provenance recorded


def test_unshipped_dataset_says_where_to_get_it(no_data_dir):
    with pytest.raises(ConfigError) as info:
        load_dataset(dataset_cfg("dataset=diabetes"))
    msg = str(info.value)
    assert "does not ship with cfgen" in msg and "kaggle.com/datasets/uciml" in msg
    assert "set CFGEN_DATA_DIR=<directory holding diabetes.csv> or dataset.file=<path" in msg


def test_data_dir_and_file_path_override_the_shipped_copy(tmp_path, monkeypatch):
    with gzip.open(shipped_file("ecoli.csv")) as fh:
        full = pd.read_csv(fh)
    small = pd.concat([full[full.target == 1].head(10), full[full.target == -1].head(30)])
    small.to_csv(tmp_path / "ecoli.csv", index=False)
    monkeypatch.setenv("CFGEN_DATA_DIR", str(tmp_path))
    assert len(load_dataset(dataset_cfg("dataset=ecoli")).X_test) == 8
    monkeypatch.delenv("CFGEN_DATA_DIR")
    other = tmp_path / "sub" / "mine.csv.gz"
    other.parent.mkdir()
    small.head(30).to_csv(other, index=False, compression="gzip")
    data = load_dataset(dataset_cfg("dataset=ecoli", f"dataset.file={other}"))
    assert len(data.X_train) + len(data.X_test) == 30


# ----------------------------------------------------------------------------- your own CSV


def _users_frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "customer_id": np.arange(5000, 5000 + n)[rng.permutation(n)],
            "plan": rng.choice([2, 10], n),  # numbers that are categories
            "region": rng.choice(["north", "south", "east"], n),
            "active": rng.random(n) < 0.5,
            "age": rng.integers(18, 80, n),
            "spend": np.round(rng.gamma(2.0, 30.0, n), 2),
            "label": rng.choice(["churn", "stay"], n),
        }
    )


@pytest.mark.parametrize("sep", [",", ";", "|", "TAB"])
def test_own_csv_infers_kinds_drops_ids_and_is_named_after_the_file(tmp_path, caplog, sep):
    frame = _users_frame()
    path = tmp_path / "my customers.csv"
    frame.to_csv(path, index=False, sep="\t" if sep == "TAB" else sep)
    with caplog.at_level(logging.INFO, logger="cfgen.data"):
        cfg = csv_cfg(path, "label", f"dataset.sep='{sep}'", "dataset.categorical=[plan]")
        data = load_dataset(cfg)
    assert cfg.name == "my_customers" and data.name == "my_customers"
    assert "dropped id-like column 'customer_id'" in caplog.text
    kinds = {f.name: (f.kind, f.categories) for f in data.schema.features}
    assert kinds == {
        "plan": (Kind.CATEGORICAL, ("2", "10")),
        "region": (Kind.CATEGORICAL, ("east", "north", "south")),
        "active": (Kind.CATEGORICAL, ("False", "True")),
        "age": (Kind.INTEGER, ()),
        "spend": (Kind.CONTINUOUS, ()),
    }
    assert data.class_names == ["churn", "stay"]


def test_both_entry_points_give_one_schema_and_the_same_codes(tmp_path):
    """load_dataset (Hydra) and Codec.fit (the library API) on the same rows agree."""
    frame = _users_frame()
    frame.to_csv(tmp_path / "u.csv", index=False)
    data = load_dataset(csv_cfg(tmp_path / "u.csv", "label", "dataset.categorical=[plan]"))
    features = frame.drop(columns=["customer_id", "label"])
    codec = Codec.fit(features, categorical=["plan"])
    strip = [(f.name, f.kind, f.categories, f.rule, f.decimals) for f in data.schema.features]
    assert strip == [
        (f.name, f.kind, f.categories, f.rule, f.decimals) for f in codec.schema.features
    ]
    np.testing.assert_array_equal(data.X_train, codec.encode(features.iloc[data.row_id_train]))
    np.testing.assert_array_equal(data.X_test, codec.encode(features.iloc[data.row_id_test]))
    back = data.decode(data.X_test)
    pd.testing.assert_frame_equal(
        back, features.iloc[data.row_id_test].reset_index(drop=True), check_dtype=False
    )
    assert back["plan"].dtype == np.int64 and back["active"].dtype == bool


def test_row_ids_survive_dropping_and_splitting(tmp_path):
    frame = _users_frame(80)
    frame.loc[[3, 17, 40], "spend"] = np.nan
    frame.to_csv(tmp_path / "u.csv", index=False)
    data = load_dataset(csv_cfg(tmp_path / "u.csv", "label", "dataset.missing=drop"))
    ids = np.concatenate([data.row_id_train, data.row_id_test])
    assert sorted(ids) == sorted(set(range(80)) - {3, 17, 40}) and data.source_rows == 80
    features = frame.drop(columns=["customer_id", "label"])
    np.testing.assert_array_equal(data.X_test, data.codec.encode(features.iloc[data.row_id_test]))


# ----------------------------------------------------------------------------- queries


@pytest.fixture
def users(tmp_path):
    frame = _users_frame(80)
    frame.loc[[5], "spend"] = np.nan
    frame.to_csv(tmp_path / "u.csv", index=False)
    data = load_dataset(csv_cfg(tmp_path / "u.csv", "label", "dataset.missing=drop"))
    return frame, data


def test_queries_by_source_row_id(users):
    frame, data = users
    ids = [int(data.row_id_test[2]), int(data.row_id_train[0])]  # a test row and a training row
    X, got = load_queries(ids, data)
    np.testing.assert_array_equal(got, ids)
    np.testing.assert_array_equal(X, np.vstack([data.X_test[2], data.X_train[0]]))
    features = frame.drop(columns=["customer_id", "label"])
    np.testing.assert_array_equal(X, data.codec.encode(features.iloc[ids]))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ([5], "experiment_params.queries: row 5 of u was dropped while cleaning"),
        ([80], "row id 80 is out of range: u has 80 data rows (0..79)"),
        ([1, 1], "experiment_params.queries=[1, 1] is not allowed: [1] listed more than once"),
        ([], "experiment_params.queries=[] is not allowed"),
        (["x"], "'x' is not a row id"),
        ("nope.csv", "experiment_params.queries='nope.csv': no such file"),
    ],
)
def test_bad_queries_one_line(users, spec, expected):
    with pytest.raises(ConfigError) as info:
        load_queries(spec, users[1])
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_queries_from_a_csv_and_the_queries_frame(users, tmp_path):
    frame, data = users
    rows = frame.iloc[[10, 20, 30]].drop(columns=["customer_id"])
    rows = rows[list(reversed(rows.columns))]  # any column order; the label column is ignored
    rows.to_csv(tmp_path / "q.csv", index=False)
    X, ids = load_queries(str(tmp_path / "q.csv"), data)
    np.testing.assert_array_equal(ids, [-1, -1, -1])
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(data.X_train, data.y_train)
    Xb, idb = load_queries([10, 20], data)
    out = queries_frame(data, np.vstack([X, Xb]), [*ids, *idb], model.predict_proba)
    assert list(out.columns) == [
        "query",
        "row_id",
        "plan",
        "region",
        "active",
        "age",
        "spend",
        "predicted",
        "probability",
        "proba_churn",
        "proba_stay",
    ]
    assert out["row_id"].isna().tolist() == [True, True, True, False, False]
    assert out["row_id"].iloc[3:].tolist() == [10, 20]
    assert (
        out[["plan", "region", "age"]].iloc[:3].values.tolist()
        == frame.iloc[[10, 20, 30]][["plan", "region", "age"]].values.tolist()
    )
    proba = model.predict_proba(np.vstack([X, Xb]))
    np.testing.assert_allclose(out[["proba_churn", "proba_stay"]].to_numpy(), proba)
    assert out["predicted"].tolist() == [data.class_names[c] for c in proba.argmax(axis=1)]


def test_resolve_target_takes_an_index_or_a_name():
    names = ["setosa", "versicolor", "virginica"]
    assert resolve_target(None, names) is None
    assert resolve_target("virginica", names) == 2 and resolve_target(1, names) == 1
    for bad in ("virginca", 3, -1, True, 1.0, "2"):
        with pytest.raises(ConfigError) as info:
            resolve_target(bad, names)
        assert str(info.value) == (
            f"experiment_params.target_class={bad!r} is not allowed: expected null, a class "
            "index 0..2 or a class name (setosa, versicolor, virginica)"
        )


def test_sample_indices_and_seed_checks():
    assert choose_queries(10, 3, [4, 1], seed=0) == [4, 1]
    for indices, seed, expected in [
        (
            [2, 2, 5],
            0,
            "experiment_params.sample_indices=[2, 2, 5] is not allowed: [2] listed more than once",
        ),
        ([], 0, "experiment_params.sample_indices=[] is not allowed: expected null"),
        (None, -1, "experiment_params.seed=-1 is not allowed: expected an integer >= 0"),
    ]:
        with pytest.raises(ConfigError) as info:
            choose_queries(10, 3, indices, seed=seed)
        assert expected in str(info.value)


# ----------------------------------------------------------------------------- user rules


def test_ranges_features_to_vary_and_actionability_without_plus(tmp_path):
    frame = _users_frame(80)
    frame.to_csv(tmp_path / "u.csv", index=False)
    data = load_dataset(
        csv_cfg(
            tmp_path / "u.csv",
            "label",
            "dataset.ranges.age=[18,70]",
            "dataset.actionability.spend=non_increasing",
            "dataset.features_to_vary=[age,spend,region]",
        )
    )
    f = {ft.name: ft for ft in data.schema.features}
    assert f["age"].permitted == (18.0, 70.0) and f["spend"].permitted is None
    assert f["spend"].rule is Rule.NON_INCREASING and f["age"].rule is Rule.NONE
    assert f["plan"].rule is Rule.NO_CHANGE and f["active"].rule is Rule.NO_CHANGE
    x = data.X_test[0].copy()
    x[data.schema.index("age")] = 40
    cf = x.copy()
    cf[data.schema.index("age")] = 75
    viol = actionability_violations(
        x, cf[None, :], data.schema.rules, permitted=data.schema.permitted
    )
    assert viol.tolist() == [1]


def test_open_dict_overrides_is_what_makes_new_keys_compose():
    ov = ["dataset=iris", "dataset.actionability.sepal length (cm)=no_change"]
    assert open_dict_overrides(ov)[1] == "++dataset.actionability.sepal length (cm)=no_change"
    assert open_dict_overrides(["+dataset.ranges.a=[1,2]"]) == ["+dataset.ranges.a=[1,2]"]
    cfg = compose_config(
        open_dict_overrides(["dataset=iris", "dataset.actionability.petal_len=no_change"])
    )
    assert dict(cfg.dataset.actionability) == {"petal_len": "no_change"}
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cfgen.cli import CONF_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        with pytest.raises(Exception, match="Could not override 'dataset.actionability.petal_len"):
            compose(
                "config", overrides=["dataset=iris", "dataset.actionability.petal_len=no_change"]
            )


# ----------------------------------------------------------------------------- the example


@pytest.mark.slow
@pytest.mark.parametrize("form", ["one_line", "config_dir"])
def test_bring_your_own_data_example_runs_as_written(tmp_path, form):
    args = {
        "one_line": [
            "dataset=csv",
            "dataset.file=docs/examples/loans.csv",
            "dataset.target=approved",
        ],
        "config_dir": ["--config-dir", "docs/examples/conf", "dataset=loans"],
    }[form]
    run = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cfgen",
            *args,
            f"hydra.run.dir={run}",
            "method/ga=quick",
            "experiment_params.num_samples=2",
            "experiment_params.num_replications=1",
            "experiment_params.parallel_replications=false",
            "output.table=false",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "dropped id-like column 'applicant_id'" in (run / "__main__.log").read_text()
    assert "run directory:" in proc.stdout
    cfs = pd.read_csv(run / "counterfactuals.csv")
    assert "applicant_id" not in cfs.columns and len(cfs) > 0
    assert set(cfs["housing"]) <= {"own", "rent", "free"}
    assert set(cfs["guarantor"].astype(str)) <= {"True", "False"}
    summary = (run / "summary.json").read_text()
    assert '"dataset": "loans"' in summary  # named after the file / the dataset file
    if form == "config_dir":
        assert "debt_ratio:\n    - 0\n    - 0.6" in (run / "config.yaml").read_text()
