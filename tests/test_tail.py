"""The post-search phase: changes.csv built for all tasks at once, a bounded report.html,
the summary's aggregates and wall time, and the phases the console logs."""

from __future__ import annotations

import json
import logging
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cfgen.changes import Diff, _roles, diff_table, mh_distance, read_changes, run_changes


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    """iris, 6 queries × 2 targets × 3 replications (36 tasks), report capped at 3 sections."""
    from conftest import FAST, compose_config

    from cfgen.experiment import run

    out = tmp_path_factory.mktemp("iris_tail")
    cfg = compose_config(
        [
            *FAST,
            "dataset=iris",
            "experiment_params.num_samples=6",
            "experiment_params.num_replications=3",
            "output.report_queries=3",
        ]
    )
    return run(cfg, out), out


def per_task_changes(problem, tasks, results, predict_proba, method, distance) -> pd.DataFrame:
    """changes.csv as it was built before, one :class:`Diff` per task (the reference)."""
    by_index = {r.index: r for r in results}
    blocks = []
    for t in tasks:
        r = by_index.get(t.index)
        if r is None or len(r.counterfactuals) == 0:
            continue
        wide = Diff.build(
            problem.X_test[t.query],
            r.counterfactuals,
            problem.decode,
            predict_proba=predict_proba,
            class_names=problem.class_names,
            distance=distance,
            roles=_roles(r),
        ).wide()
        meta = pd.DataFrame(
            {
                "query": t.query,
                "method": method,
                "combination": t.combination,
                "replication": t.replication,
                "target": problem.class_names[t.target],
            },
            index=wide.index,
        )
        blocks.append(pd.concat([meta, wide], axis=1))
    return pd.concat(blocks, ignore_index=True)


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, float_format="%.10g", lineterminator="\n")


def test_changes_csv_is_byte_identical_to_the_per_task_diffs(iris_run, tmp_path):
    res, out = iris_run
    p = res.problem
    args = (p, res.tasks, res.results, p.predictor.predict_proba, "dpg_ga")
    dist = mh_distance(p.schema, p.X_train)
    ref = per_task_changes(*args, dist)
    assert _csv(run_changes(*args, dist)) == _csv(ref)
    assert (out / "changes.csv").read_text() == _csv(ref)  # what the run wrote
    # a distance without the batched form is called per task, with the same result
    plain = lambda x, cfs: dist(x, cfs)  # noqa: E731
    assert _csv(run_changes(*args, plain)) == _csv(ref)


def test_changes_csv_with_roles_on_some_tasks_only(iris_run):
    """The old concat: NaN roles where a task gave none; ``role`` last when the first had none."""
    res, _ = iris_run
    p = res.problem
    d = p.d

    def result(i, m, roles):
        return SimpleNamespace(
            index=i,
            counterfactuals=p.X_test[(np.arange(m) + i) % len(p.X_test)].reshape(-1, d) + 0.5,
            roles=roles,
        )

    tasks = res.tasks[:3]
    for roles in ([None, ["a", "b"], None], [["a", "b"], None, ["c", "d"]]):
        results = [result(t.index, 2, r) for t, r in zip(tasks, roles, strict=True)]
        args = (p, tasks, results, p.predictor.predict_proba, "m")
        new, ref = run_changes(*args), per_task_changes(*args, None)
        assert list(new.columns) == list(ref.columns)
        assert _csv(new) == _csv(ref)


def test_diff_tables_and_their_html_as_before(iris_run):
    from cfgen.report.html import _diff_html_via_table, diff_html

    res, out = iris_run
    ch = read_changes(out / "changes.csv")
    for _, rows in ch.groupby(["query", "target", "combination", "replication"]):
        rows = rows.reset_index(drop=True)
        table = diff_table(rows, query_predicted="x", query_probability=0.5)
        assert diff_html(table) == _diff_html_via_table(table)
        # the same cells as the per-column pandas version built
        shown = [
            f
            for f in res.problem.schema.names
            if rows[f].fillna("").astype(str).str.len().gt(0).any()
        ]
        assert list(table.index[: len(shown)]) == shown


def test_report_shows_at_most_report_queries_sections(iris_run):
    res, out = iris_run
    page = (out / "report.html").read_text()
    sections = re.findall(r'<h3 id="q', page)
    ch = read_changes(out / "changes.csv")
    keys = ch[["query", "target", "combination"]].drop_duplicates()
    assert len(keys) > 3 and len(sections) == 3
    assert f"Showing the first 3 of {len(keys)} query sections" in page
    assert "<code>changes.csv</code> has every counterfactual of every query" in page
    # per shown section: the first replication open, the two others collapsed
    assert page.count('<table class="diff">') == 3 * 3
    assert page.count("<details><summary>replication") == 3 * 2
    shown_queries = {int(q) for q in re.findall(r'<h3 id="q(\d+)-', page)}
    left = set(ch["query"]) - shown_queries
    assert f"{len(left)} queries of them not shown at all" in page


def test_report_sections_follow_the_argument_and_the_default(iris_run, tmp_path):
    import shutil

    from cfgen.report.run_report import REPORT_QUERIES, run_report_html

    _, out = iris_run
    assert len(re.findall(r'<h3 id="q', run_report_html(out, max_sections=1))) == 1
    every = run_report_html(out, max_sections=10**6)
    assert "Showing the first" not in every
    assert len(re.findall(r'<h3 id="q', every)) == 12
    # a run directory whose config.yaml has no output.report_queries: the default
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    (copy / "config.yaml").write_text("output:\n  plots: false\n")
    assert REPORT_QUERIES == 20
    assert len(re.findall(r'<h3 id="q', run_report_html(copy))) == 12


def test_summary_wall_time_includes_the_report(iris_run):
    res, out = iris_run
    s = json.loads((out / "summary.json").read_text())
    assert s["report_seconds"] > 0 and s["wall_seconds"] >= s["report_seconds"]
    assert res.summary["wall_seconds"] == s["wall_seconds"]


def test_summary_aggregates_columnwise_as_rowwise(iris_run):
    from cfgen.metrics.aggregate import aggregate, aggregate_frame
    from cfgen.metrics.names import METRIC_NAMES

    res, _ = iris_run
    frame = res.metrics[[n for n in METRIC_NAMES if n in res.metrics]]
    assert aggregate_frame(frame) == aggregate(frame.to_dict("records"))
    assert aggregate_frame(frame.iloc[:0]) == {}


def test_every_tail_phase_is_logged(cfg_factory, tmp_path, caplog):
    from cfgen.experiment import run

    with caplog.at_level(logging.INFO, logger="cfgen"):
        run(cfg_factory("dataset=iris", "experiment_params.num_samples=1"), tmp_path)
    text = caplog.text
    for name in ("writing counterfactuals and diffs", "metrics", "summary", "report"):
        assert re.search(rf"{name} done \(.*s\)", text), name
