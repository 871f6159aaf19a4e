"""The real pipeline end to end: composed configs, fitted forests, DEAP search, run files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cfgen.experiment import run
from cfgen.schema import Kind, Rule, actionability_violations


def _check_counterfactuals(result):
    """Every returned counterfactual: valid by the model's own predict, categories valid,
    integers integral, and no actionability rule broken."""
    data, est = result.problem, result.problem.model
    by_index = {r.index: r for r in result.results}
    n_total = 0
    for t in result.tasks:
        r = by_index[t.index]
        assert r.error is None, r.error
        cfs = r.counterfactuals
        n_total += len(cfs)
        if not len(cfs):
            assert r.reason
            continue
        assert np.all(est.predict(cfs) == t.target)
        assert np.all(est.predict(data.round(cfs)) == t.target)
        x = data.X_test[t.query]
        assert np.all(actionability_violations(x, cfs, data.schema.rules) == 0)
        assert len(np.unique(cfs, axis=0)) == len(cfs), "duplicates returned"
        for j, f in enumerate(data.schema.features):
            if f.kind is Kind.CATEGORICAL:
                assert set(cfs[:, j]).issubset(set(range(len(f.categories))))
            if f.kind is not Kind.CONTINUOUS:
                assert np.all(cfs[:, j] == np.round(cfs[:, j]))
    return n_total


def test_iris_end_to_end(cfg_factory, tmp_path):
    result = run(cfg_factory(), tmp_path)
    n = _check_counterfactuals(result)
    assert n > 0
    # 2 queries, 2 other classes each, 2 replications
    assert len(result.tasks) == 8
    for name in (
        "counterfactuals.csv",
        "metrics.csv",
        "summary.json",
        "constraints.json",
        "config.yaml",
    ):
        assert (tmp_path / name).is_file(), name
    cfs = pd.read_csv(tmp_path / "counterfactuals.csv")
    assert len(cfs) == n
    assert set(cfs["target"]) <= {"setosa", "versicolor", "virginica"}
    assert (cfs["predicted"] == cfs["target"]).all()
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert len(metrics) == len(result.tasks)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n_tasks"] == 8 and summary["n_failed"] == 0
    assert summary["validity"] == pytest.approx(metrics["perc_valid_cf_all"].mean())


def test_german_credit_categoricals_and_no_change(cfg_factory, tmp_path):
    result = run(cfg_factory("dataset=german_credit", "experiment_params.num_samples=3"), tmp_path)
    data = result.problem
    assert data.schema.features[data.schema.index("purpose")].kind is Kind.CATEGORICAL
    assert data.schema.features[data.schema.index("personal_status_sex")].rule is Rule.NO_CHANGE
    assert data.schema.features[data.schema.index("age")].rule is Rule.NON_DECREASING
    assert _check_counterfactuals(result) > 0
    cfs = pd.read_csv(tmp_path / "counterfactuals.csv")
    # decoded back to the data's own strings
    purposes = set(data.schema.features[data.schema.index("purpose")].categories)
    assert set(cfs["purpose"]).issubset(purposes)
    # no_change feature equals the query's own value, decoded
    queries = data.decode(data.X_test[cfs["query"].to_numpy()])
    same = cfs["personal_status_sex"].to_numpy() == queries["personal_status_sex"].to_numpy()
    assert same.all()
    assert (cfs["age"].to_numpy() >= queries["age"].to_numpy()).all()


def test_same_seed_byte_identical(cfg_factory, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run(cfg_factory(), a)
    run(cfg_factory(), b)
    assert (a / "counterfactuals.csv").read_bytes() == (b / "counterfactuals.csv").read_bytes()
    c = tmp_path / "c"
    run(cfg_factory("experiment_params.seed=7"), c)
    assert (a / "counterfactuals.csv").read_bytes() != (c / "counterfactuals.csv").read_bytes()


def test_diabetes_paper_forest(cfg_factory, tmp_path):
    result = run(
        cfg_factory(
            "dataset=diabetes",
            "experiment_params.num_samples=1",
            "experiment_params.num_replications=1",
        ),
        tmp_path,
    )
    est = result.problem.model
    assert (est.n_estimators, est.max_depth, est.max_features) == (12, 5, None)
    assert est.min_impurity_decrease == 0.01
    assert _check_counterfactuals(result) >= 0


def test_plots_and_combinations_file(cfg_factory, tmp_path):
    result = run(
        cfg_factory(
            "output.plots=true",
            "experiment_params.num_samples=1",
            "experiment_params.num_replications=1",
            "experiment_params.rules=[none,no_change]",
            "experiment_params.num_combinations_to_test=2",
        ),
        tmp_path,
    )
    combos = sorted({t.combination for t in result.tasks})
    tested = json.loads((tmp_path / "combinations.json").read_text())
    assert tested["rules"] == ["none", "no_change"]
    assert sorted(int(i) for i in tested["tested"]) == combos
    free = tested["free_features"]
    for i in combos:  # combination i is i in base 2 over the free features, last fastest
        digits = [(i >> (len(free) - 1 - j)) & 1 for j in range(len(free))]
        assert tested["tested"][str(i)] == {
            f: ("none", "no_change")[b] for f, b in zip(free, digits, strict=True)
        }
    names = result.problem.class_names
    t = result.tasks[0]
    stem = f"q{t.query}_to_{names[t.target]}_c{t.combination}"
    by_index = {r.index: r for r in result.results}
    expected = {f"fitness_{stem}.png"}
    if len(by_index[t.index].counterfactuals):
        expected |= {f"pca_{stem}.png", f"changes_{stem}.png", f"bounds_{stem}.png"}
    pngs = {p.name for p in (tmp_path / "plots").glob("*.png")}
    assert expected <= pngs
    for name in expected:
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_console_script_from_another_directory(tmp_path):
    script = Path(sys.executable).parent / "cfgen"
    proc = subprocess.run(
        [str(script), "dataset=diabetes", "--cfg", "job"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "name: diabetes" in proc.stdout and "n_estimators: 12" in proc.stdout


def test_ranges_and_features_to_vary_hold_in_the_run(cfg_factory, tmp_path):
    """dataset.ranges: every moved value lands inside its range (GA repair and metrics agree);
    dataset.features_to_vary: nothing else moves."""
    import pandas as pd

    from cfgen.experiment import run

    cfg = cfg_factory(
        "dataset=german_credit",
        "dataset.ranges.credit_amount=[500,5000]",
        "dataset.ranges.duration_in_month=[6,24]",
        "experiment_params.num_samples=6",
    )
    res = run(cfg, tmp_path / "ranges")
    cfs, q = res.counterfactuals, pd.read_csv(tmp_path / "ranges" / "queries.csv")
    q = q.set_index("query")
    moved_any = 0
    for f, (lo, hi) in {"credit_amount": (500, 5000), "duration_in_month": (6, 24)}.items():
        v, x = cfs[f].to_numpy(), q.loc[cfs["query"], f].to_numpy()
        moved = v != x
        moved_any += moved.sum()
        assert ((v[moved] >= lo) & (v[moved] <= hi)).all()
    assert moved_any > 0
    assert (res.metrics["avg_nbr_violations"] == 0).all()
    free = ["duration_in_month", "credit_amount", "purpose"]
    cfg = cfg_factory(
        "dataset=german_credit",
        f"dataset.features_to_vary=[{','.join(free)}]",
        "experiment_params.num_samples=6",
    )
    res = run(cfg, tmp_path / "vary")
    q = pd.read_csv(tmp_path / "vary" / "queries.csv").set_index("query")
    for f in res.problem.schema.names:
        if f not in free:
            assert (
                res.counterfactuals[f].to_numpy()
                == q.loc[res.counterfactuals["query"], f].to_numpy()
            ).all(), f


def test_a_model_no_better_than_a_constant_is_a_loud_warning(tmp_path, cfg_factory):
    """Labels independent of the features: the forest is no better than the majority class;
    the run says so in the console and in summary.json."""
    import json

    from cfgen.experiment import run

    rng = np.random.default_rng(0)
    rows = ["a,b,y"] + [
        f"{rng.random():.3f},{rng.integers(10)},{int(rng.random() < 0.3)}" for _ in range(300)
    ]
    (tmp_path / "noise.csv").write_text("\n".join(rows) + "\n")
    res = run(
        cfg_factory("dataset=csv", f"dataset.file={tmp_path / 'noise.csv'}", "dataset.target=y"),
        tmp_path / "run",
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert "majority-class rate" in summary["model_warning"]
    assert res.summary["model_warning"] == summary["model_warning"]
    # the paper's iris forest is fine: no warning
    ok = run(cfg_factory(), tmp_path / "iris")
    assert ok.summary["model_warning"] == ""
