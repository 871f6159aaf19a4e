"""Counterfactuals as diffs: hand-made cases with known cells, and a real german_credit run whose
``changes.csv`` is checked against ``counterfactuals.csv``, the model and ``metrics.csv``."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from cfgen.changes import (
    ARROW,
    Diff,
    diff_table,
    fmt_value,
    mh_distance,
    query_frame,
    read_changes,
    run_changes,
)
from cfgen.console import console_table, diff_tables, phase
from cfgen.data import Dataset
from cfgen.schema import Feature, FeatureSchema, Kind

SCHEMA = FeatureSchema(
    (
        Feature("colour", Kind.CATEGORICAL, 0, 2, categories=("red", "green", "a very long blue")),
        Feature("count", Kind.INTEGER, 0, 10),
        Feature("size", Kind.CONTINUOUS, 0.0, 2.0, decimals=2),
    )
)


def _data() -> Dataset:
    X = np.array([[0, 1, 0.5], [1, 4, 1.25], [2, 9, 2.0], [0, 3, 0.0]], dtype=float)
    return Dataset(
        "toy", SCHEMA, X, np.array([0, 1, 1, 0]), X, np.array([0, 1, 1, 0]), ["no", "yes"], "label"
    )


def test_fmt_value_writes_values_as_a_person_does():
    assert fmt_value(np.int64(3)) == "3"
    assert fmt_value(5.0) == "5"  # an integer-valued float is an integer
    assert fmt_value(0.1) == "0.1" and fmt_value(1.25) == "1.25"
    assert fmt_value("car (used)") == "car (used)"
    assert fmt_value(float("nan")) == ""


def test_diff_of_a_hand_made_query():
    data = _data()
    x = np.array([0.0, 3.0, 0.5])
    cfs = np.array(
        [
            [2.0, 3.0, 0.5],  # colour red → a very long blue
            [0.0, 5.0, 1.25],  # count 3 → 5, size 0.5 → 1.25
            [1.0, 3.0, 0.5],
        ]
    )  # colour red → green
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.45, 0.55]])
    diff = Diff.build(
        x, cfs, data.decode, predict_proba=lambda X: proba[: len(X)], class_names=data.class_names
    )
    wide = diff.wide()
    assert list(wide["colour"]) == [f"red{ARROW}a very long blue", "", f"red{ARROW}green"]
    assert list(wide["count"]) == ["", f"3{ARROW}5", ""]  # integers stay integers
    assert list(wide["size"]) == ["", f"0.5{ARROW}1.25", ""]
    assert list(wide["nbr_changes"]) == [1, 2, 1]
    assert list(wide["changed"]) == ["colour", "count; size", "colour"]
    assert list(wide["predicted"]) == ["yes", "yes", "yes"]
    assert wide["probability"].tolist() == pytest.approx([0.7, 0.6, 0.55])
    assert diff.query_predicted == "no" and diff.query_probability == pytest.approx(0.8)

    table = diff.table()
    assert list(table.columns) == ["query", "cf 0", "cf 1", "cf 2"]
    assert list(table.index) == [
        "colour",
        "count",
        "size",
        "predicted",
        "probability",
        "nbr_changes",
    ]
    assert list(table.loc["colour"]) == ["red", "a very long blue", "-", "green"]
    assert list(table.loc["count"]) == ["3", "-", "5", "-"]
    assert list(table.loc["predicted"]) == ["no", "yes", "yes", "yes"]

    only = diff.to_frame(only_changes=True)
    assert list(only["colour"]) == ["a very long blue", "-", "green"]
    assert list(only["count"]) == ["-", 5, "-"]
    full = diff.to_frame(only_changes=False)
    assert list(full["count"]) == [3, 5, 3]
    text = str(diff)
    assert "a very long blue" in text and text.splitlines()[0].split() == [
        "query",
        "cf",
        "0",
        "cf",
        "1",
        "cf",
        "2",
    ]


def test_mh_distance_by_hand():
    data = _data()
    # non-categorical columns count (1, 4, 9, 3) and size (0.5, 1.25, 2, 0): medians 3.5 and 0.875
    # |dev| count: 2.5, 0.5, 5.5, 0.5 -> median 1.5; size: 0.375, 0.375, 1.125, 0.875 -> 0.625
    # cf = (1, 5, 0.5) vs x = (0, 3, 0.5): MAD part 2/1.5 + 0 = 1.3333, Hamming part 1/1
    # MH = r_N * 1.3333 + r_Q * 1 = 2/3 * 1.3333 + 1/3 * 1 = 1.2222
    dist = mh_distance(SCHEMA, data.X_train)
    got = dist(np.array([0.0, 3.0, 0.5]), np.array([[1.0, 5.0, 0.5], [0.0, 3.0, 1.125]]))
    # second: size 0.625 / 0.625 = 1 -> 2/3 * 1 = 0.6667
    assert got == pytest.approx([2 / 3 * (2 / 1.5) + 1 / 3, 2 / 3])


def test_console_distance_counts_categorical_changes():
    """A counterfactual that changes only categories has distance_mad 0 (it sums over numeric
    features only); the console shows distance_mh, the paper's mixed distance, and counts."""
    data = _data()

    class Est:
        def predict(self, X):
            return np.zeros(len(X), dtype=int)

    metrics = pd.DataFrame(
        {
            "query": [0, 0],
            "target": [1, 1],
            "combination": [0, 0],
            "replication": [0, 1],
            "nbr_valid_cf": [5.0, 4.0],
            "distance_mad": [0.0, 0.0],
            "distance_mh": [0.25, 0.35],
            "avg_nbr_changes_per_cf": [4.0, 4.25],
            "runtime": [0.1, 0.3],
            "error": ["", ""],
            "timed_out": [False, False],
        }
    )
    text = console_table(data, metrics, estimator=Est(), k=5)
    head, row = text.splitlines()[:2]
    assert head.split() == [
        "query",
        "original",
        "target",
        "nbr_valid_cf",
        "distance_mh",
        "avg_nbr_changes_per_cf",
        "runtime",
    ]
    assert row.split() == ["0", "no", "yes", "4.5", "0.300", "4.12", "0.200"]
    metrics["nbr_valid_cf"] = [5.0, 5.0]
    assert console_table(data, metrics, estimator=Est()).splitlines()[1].split()[3] == "5"


def test_phase_logs_start_progress_and_end(caplog):
    caplog.set_level(logging.INFO, logger="cfgen")
    with phase("metrics", total=3, bar=False) as p:
        for _ in range(3):
            p.advance()
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs[0] == "metrics …"
    assert msgs[-1].startswith("metrics done (3 items, ")
    caplog.clear()
    with pytest.raises(RuntimeError), phase("files", bar=False):
        raise RuntimeError("disk full")
    assert caplog.records[-1].getMessage().startswith("files failed (")


# ------------------------------------------------------------------------------ a real run


@pytest.fixture(scope="module")
def german_run(tmp_path_factory):
    """german_credit, 2 queries × 2 replications, with changes.csv and queries.csv."""
    from conftest import FAST, compose_config

    from cfgen.experiment import run

    out = tmp_path_factory.mktemp("german")
    cfg = compose_config([*FAST, "dataset=german_credit"])
    res = run(cfg, out)
    ensure_change_files(res, out)
    return res, out


def ensure_change_files(res, out):
    """changes.csv and queries.csv, written as the run will write them (until it does)."""
    from cfgen.store import write_frame

    d, proba = res.problem, res.problem.predictor.predict_proba
    if not (out / "changes.csv").exists():
        write_frame(
            out / "changes.csv",
            run_changes(
                d, res.tasks, res.results, proba, "dpg_ga", mh_distance(d.schema, d.X_train)
            ),
        )
    if not (out / "queries.csv").exists():
        write_frame(out / "queries.csv", query_frame(d, res.summary["queries"], proba))


def test_changes_csv_matches_counterfactuals_model_and_metrics(german_run):
    res, out = german_run
    data = res.problem
    ch = read_changes(out / "changes.csv")
    cf = pd.read_csv(out / "counterfactuals.csv", dtype=str, keep_default_na=False)
    qs = pd.read_csv(out / "queries.csv", dtype=str, keep_default_na=False).set_index("query")
    assert len(ch) == len(cf) > 0
    keys = ["query", "combination", "replication", "target", "cf"]
    assert (ch[keys].astype(str).to_numpy() == cf[keys].to_numpy()).all()  # row for row
    names = data.schema.names
    for i in range(len(ch)):
        q = str(ch.at[i, "query"])
        changed = []
        for f in names:
            before, after = qs.at[q, f], cf.at[i, f]
            if (
                float(before) != float(after)
                if data.schema.features[names.index(f)].kind is not Kind.CATEGORICAL
                else before != after
            ):
                changed.append(f)
                assert ch.at[i, f] == f"{before}{ARROW}{after}"
            else:
                assert ch.at[i, f] == ""
        assert ch.at[i, "changed"] == "; ".join(changed)
        assert ch.at[i, "nbr_changes"] == len(changed)
    # predicted class and probability: the model's own answer on the encoded counterfactuals
    by_index = {r.index: r for r in res.results}
    rows = np.vstack(
        [
            by_index[t.index].counterfactuals
            for t in res.tasks
            if len(by_index[t.index].counterfactuals)
        ]
    )
    P = res.problem.estimator.predict_proba(rows)
    assert list(ch["predicted"]) == [data.class_names[i] for i in P.argmax(axis=1)]
    assert ch["probability"].to_numpy() == pytest.approx(P.max(axis=1))
    # per task, the means are the metrics of the same name
    m = res.metrics.set_index(["query", "combination", "replication"])
    g = ch.groupby(["query", "combination", "replication"])
    for key, grp in g:
        assert grp["distance_mh"].mean() == pytest.approx(m.loc[key, "distance_mh"])
        assert grp["nbr_changes"].mean() == pytest.approx(m.loc[key, "avg_nbr_changes_per_cf"])


def test_console_diff_tables_show_the_changed_features_only(german_run):
    res, out = german_run
    ch = read_changes(out / "changes.csv")
    qs = pd.read_csv(out / "queries.csv")
    text = diff_tables(ch, show=1, queries=qs, max_width=200)
    first_q = int(ch["query"].iloc[0])
    assert text.startswith(f"query {first_q} → ")
    assert f"(+ {ch['query'].nunique() - 1} more queries)" in text
    rows = ch[(ch["query"] == first_q) & (ch["replication"] == 0)].reset_index(drop=True)
    shown = [ln.split("  ")[0].strip() for ln in text.splitlines()[2:]]
    changed = [f for f in res.problem.schema.names if rows[f].str.len().gt(0).any()]
    assert shown[: len(changed)] == changed  # the changed features, in schema order
    assert shown[len(changed) : len(changed) + 5] == [
        "role",
        "predicted",
        "probability",
        "distance_mh",
        "nbr_changes",
    ]
    table = diff_table(rows)
    for f in changed:  # every cell: the new value, or "-" where that cf leaves the feature
        for i in range(len(rows)):
            cell = rows.at[i, f]
            assert table.at[f, f"cf {i}"] == (cell.split(ARROW)[1] if cell else "-")
