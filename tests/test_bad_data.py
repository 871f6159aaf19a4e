"""Bad data: one line naming the dataset key and what is allowed; exit 2 from the CLI.

Each case goes through ``load_dataset`` with a composed config; a few also through the real CLI
in a subprocess (one ``cfgen: error:`` line, no traceback, no result files).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import compose_config

from cfgen.data import load_dataset
from cfgen.datasets import open_dict_overrides
from cfgen.errors import ConfigError

SHARED = Path(os.environ.get("CFGEN_DATA_DIR", "")) if os.environ.get("CFGEN_DATA_DIR") else None


def dataset_cfg(*overrides: str):
    return compose_config(open_dict_overrides(["output.table=false", *overrides])).dataset


def csv_cfg(path: Path, target: str = "y", *extra: str):
    return dataset_cfg("dataset=csv", f"dataset.file={path}", f"dataset.target={target}", *extra)


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg.strip(), msg
    return msg


needs_diabetes = pytest.mark.skipif(
    SHARED is None or not (SHARED / "diabetes.csv").is_file(),
    reason="diabetes.csv does not ship (licence): set CFGEN_DATA_DIR to the shared datasets",
)


@needs_diabetes
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["dataset.drop=[Outcome]"],
            "dataset.drop=['Outcome'] is not allowed: it drops the target dataset.target='Outcome'",
        ),
        (
            ["dataset.drop=[Glucose]"],
            "dataset.drop=['Glucose'] is not allowed: Glucose is also in dataset.zero_as_missing; "
            "remove it there too "
            "(dataset.zero_as_missing=[BloodPressure,SkinThickness,Insulin,BMI])",
        ),
        (["dataset.drop=[Age]"], "Age is also in dataset.actionability"),
        (
            ["dataset.categorical=[Outcome]"],
            "dataset.categorical=['Outcome'] is not allowed: 'Outcome' is the target",
        ),
        (
            ["dataset.integer=[NoSuchColumn]"],
            "dataset.integer names unknown columns ['NoSuchColumn'] in diabetes (columns: ",
        ),
        (
            ["dataset.actionability.Glucos=no_change"],
            "dataset.actionability names unknown columns ['Glucos']",
        ),
        (
            ["dataset.ranges.Glucose=[200,100]"],
            "dataset.ranges.Glucose=[200, 100] is not allowed: expected low <= high",
        ),
        (["dataset.features_to_vary=[]"], "dataset.features_to_vary=[] is not allowed"),
        (
            ["dataset.sep=';'"],
            "dataset.target='Outcome' is not a column of diabetes (columns: Pregnancies,Glucose,",
        ),
    ],
)
def test_bad_keys_on_diabetes(overrides, expected):
    with pytest.raises(ConfigError) as info:
        load_dataset(dataset_cfg("dataset=diabetes", *overrides))
    assert expected in one_line(info)


def test_wrong_separator_hints_at_sep(tmp_path):
    (tmp_path / "d.csv").write_text("a;b;y\n1;2;0\n3;4;1\n")
    with pytest.raises(ConfigError) as info:
        load_dataset(csv_cfg(tmp_path / "d.csv"))
    assert "the file has one column: is dataset.sep=',' its separator?" in one_line(info)


BAD_FILES = {
    "empty": (b"", "is empty: expected a header line and rows"),
    "blank": (b"\n\n", "is empty: expected a header line and rows"),
    "header_only": (b"a,b,y\n", "has a header but no data rows"),
    "binary": (bytes(range(256)) * 8, "is not a text CSV file (it holds binary data)"),
    "extra_field": (
        b"a,b,y\n1,2,0\n3,4,1,9\n5,6,1\n",
        "line 3 has 4 fields but the header has 3 (dataset.sep=','): fix that row",
    ),
    "latin1": (
        "a,b,y\n1,caf\u00e9,0\n2,th\u00e9,1\n".encode("latin-1"),
        "is not utf-8 text (unexpected end of data): set dataset.encoding",
    ),
    "all_nan": (
        b"a,b,y\n1,,0\n2,,1\n3,,0\n4,,1\n",
        "column 'b' has no values (all 4 rows are missing): drop it with dataset.drop=[b]",
    ),
    "nan_target": (
        b"a,b,y\n1,2,0\n2,3,\n3,4,1\n4,5,1\n",
        "dataset.target='y' has 1 missing labels in x (rows 1): every row needs a class",
    ),
    "one_class": (b"a,y\n1,0\n2,0\n3,0\n", "dataset.target='y' has one class (['0'])"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("missing", ["median", "drop"])
def test_bad_files(tmp_path, case, missing):
    content, expected = BAD_FILES[case]
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_dataset(csv_cfg(path, "y", f"dataset.missing={missing}"))
    msg = one_line(info)
    assert expected in msg
    assert msg.startswith(("dataset.", "x column", "dataset "))


def test_missing_drop_that_leaves_nothing(tmp_path):
    rows = "\n".join(f"{i},{'' if i % 2 else i},{i % 2}" for i in range(20))
    (tmp_path / "x.csv").write_text("a,b,y\n" + rows + "\n")
    with pytest.raises(ConfigError) as info:
        load_dataset(
            csv_cfg(
                tmp_path / "x.csv", "y", "dataset.missing=drop", "dataset.drop_id_columns=false"
            )
        )
    assert "dataset.missing=drop leaves" in one_line(info) and "dataset.missing=median" in str(
        info.value
    )


STRAY = (
    "a,glucose,y\n"
    + "\n".join(f"{i},{'high' if i == 7 else 80 + i},{i % 2}" for i in range(60))
    + "\n"
)


def test_stray_text_cell_fails_naming_column_row_and_value(tmp_path):
    (tmp_path / "x.csv").write_text(STRAY)
    with pytest.raises(ConfigError) as info:
        load_dataset(csv_cfg(tmp_path / "x.csv"))
    assert (
        "column 'glucose' of x is numeric but row 7 holds 'high': fix the file, set "
        "dataset.coerce_numeric=true"
    ) in one_line(info)


def test_stray_text_cell_coerced_on_request(tmp_path, caplog):
    (tmp_path / "x.csv").write_text(STRAY)
    with caplog.at_level(logging.WARNING, logger="cfgen.data"):
        data = load_dataset(
            csv_cfg(
                tmp_path / "x.csv", "y", "dataset.coerce_numeric=true", "dataset.missing=median"
            )
        )
    f = data.schema.features[data.schema.index("glucose")]
    assert f.kind.value == "integer" and f.categories == ()  # numeric, not a 60-level category
    assert (
        "1 non-numeric cell(s) of column 'glucose' set to missing (first: row 7 = 'high')"
        in caplog.text
    )
    all_ids = np.concatenate([data.row_id_train, data.row_id_test])
    all_x = np.vstack([data.X_train, data.X_test])[:, data.schema.index("glucose")]
    imputed = all_x[all_ids == 7][0]
    train_g = data.X_train[:, data.schema.index("glucose")][data.row_id_train != 7]
    assert imputed == np.floor(np.median(train_g))  # the training median, whole number


def test_csv_without_file_or_target(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_dataset(dataset_cfg("dataset=csv"))
    assert "dataset.file is missing for dataset.name='csv'" in one_line(info)
    (tmp_path / "x.csv").write_text("a,label\n1,0\n2,1\n")
    with pytest.raises(ConfigError) as info:
        load_dataset(dataset_cfg("dataset=csv", f"dataset.file={tmp_path / 'x.csv'}"))
    assert (
        "dataset.target is missing: name the label column, e.g. dataset.target=label "
        "(columns: a, label)"
    ) in one_line(info)


# ----------------------------------------------------------------------------- real CLI


def _cli(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {})}
    full.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cfgen",
            *args,
            f"hydra.run.dir={tmp_path / 'run'}",
            "method/ga=quick",
            "experiment_params.num_samples=1",
            "experiment_params.num_replications=1",
            "experiment_params.parallel_replications=false",
            "output.table=false",
        ],
        capture_output=True,
        text=True,
        env=full,
        timeout=180,
        cwd=tmp_path,
    )


def _assert_one_line_exit_2(proc: subprocess.CompletedProcess, expected: str, run: Path) -> None:
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("cfgen: error:")]
    assert len(errors) == 1 and expected in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    finals = ("summary.json", "metrics.csv", "counterfactuals.csv", "config.yaml")
    assert not any((run / name).exists() for name in finals)


@pytest.mark.parametrize(
    ("content", "args", "expected"),
    [
        (b"a,b,y\n1,2,0\n3,4,1,9\n", [], "line 3 has 4 fields but the header has 3"),
        pytest.param(bytes(range(256)) * 4, [], "is not a text CSV file", marks=pytest.mark.slow),
        pytest.param(
            STRAY.encode(),
            [],
            "column 'glucose' of x is numeric but row 7 holds 'high'",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            STRAY.encode(),
            ["dataset.drop=[y]"],
            "dataset.drop=['y'] is not allowed: it drops",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_cli_bad_data_one_line_exit_2(tmp_path, content, args, expected):
    (tmp_path / "x.csv").write_bytes(content)
    proc = _cli(tmp_path, "dataset=csv", "dataset.file=x.csv", "dataset.target=y", *args)
    _assert_one_line_exit_2(proc, expected, tmp_path / "run")


def test_cli_unshipped_dataset_names_where_to_get_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CFGEN_DATA_DIR"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cfgen",
            "dataset=healthcare_dataset_stroke",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    _assert_one_line_exit_2(
        proc,
        "dataset.file='healthcare_dataset_stroke.csv' for dataset "
        "'healthcare_dataset_stroke' does not ship with cfgen",
        tmp_path / "run",
    )
    assert "kaggle.com/datasets/fedesoriano/stroke-prediction-dataset" in proc.stderr
    assert "CFGEN_DATA_DIR=" in proc.stderr and "dataset.file=<path" in proc.stderr
