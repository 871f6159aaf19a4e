"""The paper report: statistics on hand-made tables with known answers, the tables of hand-made
run directories recomputed independently from their metrics.csv, and a real tiny multirun."""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats as sps

from cfgen.report import PAPER_METRICS, build_report, write_report
from cfgen.report.__main__ import main as report_main
from cfgen.report.doc import BEGIN, END, fill_doc
from cfgen.report.stats import holm, mean_ci, paired_wilcoxon, rank_biserial, win_count
from cfgen.report.tables import summary_table, wilcoxon_datasets, winners_table

ROOT = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------------------ statistics


def test_holm_known_answer():
    # p = [0.01, 0.04, 0.03, 0.005], m = 4. Ascending: 0.005, 0.01, 0.03, 0.04
    #   0.005 * 4 = 0.02
    #   0.01  * 3 = 0.03
    #   0.03  * 2 = 0.06
    #   0.04  * 1 = 0.04 -> running max keeps 0.06
    # back in input order: [0.03, 0.06, 0.06, 0.02]
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # NaN stays NaN and does not count in m: [0.02, 0.04] -> 0.02*2 = 0.04, 0.04*1 -> max 0.04
    out = holm([0.02, np.nan, 0.04])
    assert out[0] == pytest.approx(0.04) and np.isnan(out[1]) and out[2] == pytest.approx(0.04)
    # capped at 1: 0.6 * 2 = 1.2 -> 1.0
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])
    assert holm([]).size == 0


def test_win_count_known_answer():
    # larger is better: pairs (A, B) = (1, 0) win, (0.5, 0.5) tie, (0.2, 0.9) loss, (nan, 1) skip,
    # (0.7, 0.7 + 1e-15) tie (floating-point noise), (3, 2) win -> 2 wins, 1 loss, 2 ties
    a = [1.0, 0.5, 0.2, np.nan, 0.7, 3.0]
    b = [0.0, 0.5, 0.9, 1.0, 0.7 + 1e-15, 2.0]
    wc = win_count(a, b, "up")
    assert (wc.wins, wc.losses, wc.ties, wc.n) == (2, 1, 2, 5)
    assert wc.win_rate == pytest.approx(2 / 3)  # ties excluded: 2 / (2 + 1)
    # smaller is better: the same pairs swap wins and losses
    wc = win_count(a, b, "down")
    assert (wc.wins, wc.losses, wc.ties) == (1, 2, 2)
    assert wc.win_rate == pytest.approx(1 / 3)
    # all ties: win rate undefined
    assert math.isnan(win_count([1, 2], [1, 2], "up").win_rate)


def test_rank_biserial_and_wilcoxon_known_answers():
    # differences [1, 2, -3, 4]: |d| ranks 1, 2, 3, 4; T+ = 1 + 2 + 4 = 7, T- = 3
    # r = (7 - 3) / (7 + 3) = 0.4
    assert rank_biserial([1, 2, -3, 4]) == pytest.approx(0.4)
    assert rank_biserial([0, 1, 2]) == pytest.approx(1.0)  # the zero is dropped
    assert math.isnan(rank_biserial([0, 0]))
    # n = 6, every difference positive and distinct: exact two-sided p = 2 / 2^6 = 0.03125
    a = np.array([1.1, 2.2, 3.3, 4.4, 5.5, 6.6])
    b = np.zeros(6)
    res = paired_wilcoxon(a, b, "up")
    assert res.pvalue == pytest.approx(0.03125) and res.effect == pytest.approx(1.0)
    assert res.median_diff == pytest.approx(3.85)
    # "down": the same values mean B is better, the orientation flips, p does not
    res = paired_wilcoxon(a, b, "down")
    assert res.pvalue == pytest.approx(0.03125) and res.effect == pytest.approx(-1.0)
    # no non-zero difference: nothing to test
    res = paired_wilcoxon([1, 2, 3], [1, 2, 3], "up")
    assert res.n == 3 and res.n_nonzero == 0 and math.isnan(res.pvalue)


def test_mean_ci_matches_t_interval():
    v = [0.2, 0.4, 0.9, np.nan, 0.5]
    out = mean_ci(v)
    x = [0.2, 0.4, 0.9, 0.5]
    half = sps.t.ppf(0.975, 3) * statistics.stdev(x) / math.sqrt(4)
    assert out["n"] == 4 and out["mean"] == pytest.approx(statistics.mean(x))
    assert out["std"] == pytest.approx(statistics.stdev(x))
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((0.5 - half, 0.5 + half))
    one = mean_ci([3.0])
    assert one["mean"] == 3.0 and one["n"] == 1 and math.isnan(one["ci_low"])


def _comp(table: dict[str, dict[str, dict[str, float]]]) -> pd.DataFrame:
    """A long comparison frame from {metric: {dataset: {method: mean}}}."""
    recs = [{"dataset": d, "method": m, "metric": metric, "mean": v}
            for metric, per_d in table.items() for d, per_m in per_d.items()
            for m, v in per_m.items()]
    return pd.DataFrame(recs)


def test_summary_and_winners_on_a_hand_made_table():
    comp = _comp({
        # larger is better
        "perc_valid_cf_all": {
            "d1": {"A": 1.0, "B": 0.8, "C": 0.9},  # A best
            "d2": {"A": 0.6, "B": 0.6, "C": 0.5},  # A and B tie for best
            "d3": {"A": 0.4, "B": 0.7, "C": 0.7},  # B and C tie for best
            "d4": {"A": 0.9, "B": np.nan, "C": 0.1},  # B missing: A-vs-B pair not counted
        },
        # smaller is better
        "runtime": {
            "d1": {"A": 0.1, "B": 1.0, "C": 2.0},
            "d2": {"A": 0.2, "B": 0.1, "C": 3.0},
            "d3": {"A": 0.3, "B": 0.9, "C": 0.3},
            "d4": {"A": 0.4, "B": 0.5, "C": 0.6},
        },
    })
    s = summary_table(comp, ["perc_valid_cf_all", "runtime"], ["A", "B", "C"])
    got = {(r.metric, r.method_a, r.method_b): (r.wins, r.losses, r.ties, r.n_datasets)
           for r in s.itertuples()}
    # validity A vs B: d1 win, d2 tie, d3 loss, d4 skipped -> 1-1-1 over 3, win rate 1/2
    assert got[("perc_valid_cf_all", "A", "B")] == (1, 1, 1, 3)
    # validity A vs C: d1 win, d2 win, d3 loss, d4 win -> 3-1-0, win rate 3/4
    assert got[("perc_valid_cf_all", "A", "C")] == (3, 1, 0, 4)
    # validity B vs C: d1 loss, d2 win, d3 tie -> 1-1-1
    assert got[("perc_valid_cf_all", "B", "C")] == (1, 1, 1, 3)
    # runtime A vs B (smaller better): d1 win, d2 loss, d3 win, d4 win -> 3-1-0
    assert got[("runtime", "A", "B")] == (3, 1, 0, 4)
    # runtime A vs C: d1 win, d2 win, d3 tie, d4 win -> 3-0-1, win rate 3/3 = 1
    assert got[("runtime", "A", "C")] == (3, 0, 1, 4)
    rate = {(r.metric, r.method_a, r.method_b): r.win_rate for r in s.itertuples()}
    assert rate[("perc_valid_cf_all", "A", "B")] == pytest.approx(0.5)
    assert rate[("perc_valid_cf_all", "A", "C")] == pytest.approx(0.75)
    assert rate[("runtime", "A", "C")] == pytest.approx(1.0)

    w = winners_table(comp, ["perc_valid_cf_all", "runtime"], ["A", "B", "C"])
    win = {(r.dataset, r.metric): (r.winner, r.best) for r in w.itertuples()}
    assert win[("d1", "perc_valid_cf_all")] == ("A", "A")
    assert win[("d2", "perc_valid_cf_all")] == ("tie", "A;B")
    assert win[("d3", "perc_valid_cf_all")] == ("tie", "B;C")
    assert win[("d4", "perc_valid_cf_all")] == ("A", "A")
    assert win[("d2", "runtime")] == ("B", "B")
    assert win[("d3", "runtime")] == ("tie", "A;C")


def test_wilcoxon_over_datasets_with_holm_on_a_hand_made_table():
    # 6 datasets. validity: A beats B on all six by distinct margins -> exact p = 2/64 = 0.03125,
    # r = 1. distance (smaller better): A lower on five, higher on the smallest-margin one:
    # T- = 1 (rank 1), T+ = 20 -> two-sided exact p = P(T <= 1) * 2 = (2/64) * 2 = 0.0625,
    # r = (20 - 1) / 21. runtime: identical -> no test (NaN, not in Holm's m).
    # Holm over the two p-values (m = 2): 0.03125 * 2 = 0.0625, 0.0625 * 1 = 0.0625.
    ds = [f"d{i}" for i in range(6)]
    margins = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]
    table = {
        "perc_valid_cf_all": {d: {"A": 0.5 + m, "B": 0.5}
                              for d, m in zip(ds, margins, strict=True)},
        "distance_mh": {d: {"A": 2.0 - m if i else 2.0 + m, "B": 2.0}
                        for i, (d, m) in enumerate(zip(ds, margins, strict=True))},
        "runtime": {d: {"A": 1.0, "B": 1.0} for d in ds},
    }
    out = wilcoxon_datasets(_comp(table), list(table), [("A", "B")]).set_index("metric")
    assert out.loc["perc_valid_cf_all", "p"] == pytest.approx(0.03125)
    assert out.loc["distance_mh", "p"] == pytest.approx(0.0625)
    assert np.isnan(out.loc["runtime", "p"]) and np.isnan(out.loc["runtime", "p_holm"])
    assert out.loc["perc_valid_cf_all", "p_holm"] == pytest.approx(0.0625)
    assert out.loc["distance_mh", "p_holm"] == pytest.approx(0.0625)
    assert out.loc["perc_valid_cf_all", "effect_size"] == pytest.approx(1.0)
    assert out.loc["distance_mh", "effect_size"] == pytest.approx(19 / 21)
    assert out.loc["distance_mh", "median_diff"] > 0  # oriented: positive = A better
    assert out.loc["perc_valid_cf_all", "better"] == "A"
    assert out.loc["perc_valid_cf_all", "n_datasets"] == 6
    assert not out["significant"].any()  # 0.0625 > 0.05 after Holm


# ------------------------------------------------------------------------------ hand-made runs

TIME_LIMIT = 30.0
METRIC_COLS = list(PAPER_METRICS) + ["nbr_cf", "distance_mad"]


def _write_run(root: Path, name: str, dataset: str, method: str, rows: list[dict], *,
               bounds_seconds: float = 0.0, finished: bool = True, queries=None,
               test_accuracy: float = 0.9, uses_bounds: bool | None = None,
               overrides: list[str] | None = None, time_limit: float | None = TIME_LIMIT) -> Path:
    d = root / name
    d.mkdir(parents=True)
    frame = pd.DataFrame(rows)
    frame.insert(0, "method", method)
    frame.insert(1, "dataset", dataset)
    frame.to_csv(d / "metrics.csv", index=False)
    cfg = {
        "dataset": {"name": dataset},
        "model": {"n_estimators": 10},
        "method": {"name": method, "time_limit": time_limit},
        "constraints": {"mode": "dpg"},
        "experiment_params": {"seed": 42, "num_counterfactuals": 5, "num_replications": 2,
                              "target_class": None, "rules": ["none"],
                              "num_combinations_to_test": 1},
    }
    (d / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)))
    if finished:
        summary = {"dataset": dataset, "method": method, "bounds_seconds": bounds_seconds,
                   "uses_bounds": (method == "dpg_ga") if uses_bounds is None else uses_bounds,
                   "model_seconds": 0.1, "n_tasks": len(rows), "test_accuracy": test_accuracy,
                   "queries": sorted({r["query"] for r in rows}) if queries is None else queries,
                   "wall_seconds": 1.0}
        (d / "summary.json").write_text(json.dumps(summary))
    if overrides is not None:
        (d / ".hydra").mkdir()
        (d / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(
            overrides)))
    return d


def _rows(rng: np.random.Generator, queries, targets, reps: int, shift: float) -> list[dict]:
    rows = []
    for q in queries:
        for t in targets:
            for r in range(reps):
                row = {"query": q, "target": t, "combination": 0, "replication": r,
                       "error": "", "timed_out": False}
                for m in METRIC_COLS:
                    row[m] = float(rng.uniform(0, 1) + shift)
                row["perc_valid_cf_all"] = float(rng.choice([0.0, 0.2, 0.6, 1.0]))
                rows.append(row)
    return rows


@pytest.fixture
def handmade(tmp_path):
    """A multirun dir: 3 datasets × 2 methods (dpg_ga, dice_random), 8 queries, 2 replications,
    iris-like dataset with 2 targets per query; a crashed task, a timed-out task, a NaN distance,
    and one unfinished job (no summary.json)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "multirun"
    queries = [3, 5, 8, 13, 21, 34, 55, 89]
    spec = {"ds_a": [0], "ds_b": [1], "ds_c": [1, 2]}
    n = 0
    for dataset, targets in spec.items():
        for method, shift in (("dpg_ga", 0.0), ("dice_random", 0.3)):
            rows = _rows(rng, queries, targets, 2, shift)
            if dataset == "ds_a" and method == "dice_random":
                rows[0].update(error="RuntimeError: boom", perc_valid_cf_all=np.nan,
                               distance_mh=np.nan, runtime=0.001)
                rows[3].update(timed_out=True, perc_valid_cf_all=np.nan, distance_mh=np.nan,
                               runtime=np.nan)
            if dataset == "ds_b" and method == "dpg_ga":
                rows[5]["distance_mh"] = np.nan
            _write_run(root, f"{n}_{dataset}_{method}", dataset, method, rows,
                       bounds_seconds=0.8 if method == "dpg_ga" else 0.5)
            n += 1
    _write_run(root, f"{n}_ds_c_dice_genetic", "ds_c", "dice_genetic",
               _rows(rng, queries, [1], 1, 0.0), finished=False)
    return root


def _independent_query_means(run_dir: Path, metric: str) -> dict[int, float]:
    """Replications averaged per (query, target, combination), then per query — by hand."""
    frame = pd.read_csv(run_dir / "metrics.csv")
    cells: dict[tuple, list[float]] = defaultdict(list)
    for rec in frame.to_dict("records"):
        v = rec[metric]
        failed = (isinstance(rec["error"], str) and rec["error"]) or rec["timed_out"]
        if metric == "runtime" and failed and not rec["timed_out"]:
            continue  # a crash has no runtime
        if metric == "runtime" and rec["timed_out"] and (v is None or math.isnan(v)):
            v = TIME_LIMIT
        if metric.startswith("perc_") and failed and math.isnan(v):
            v = 0.0
        if not math.isnan(v):
            cells[(rec["query"], rec["target"], rec["combination"])].append(v)
    per_task: dict[int, list[float]] = defaultdict(list)
    for (q, _, _), vs in cells.items():
        per_task[q].append(sum(vs) / len(vs))
    return {q: sum(vs) / len(vs) for q, vs in per_task.items()}


def test_report_tables_recomputed_from_metrics_csv(handmade, tmp_path):
    rep = build_report([handmade])
    out = tmp_path / "report"
    written = write_report(rep, out, plot=False)

    assert rep.datasets == ["ds_a", "ds_b", "ds_c"]
    assert rep.methods == ["dpg_ga", "dice_random"]
    assert any("unfinished" in w for w in rep.warnings)  # the dice_genetic job
    for name in ("comparison", "summary", "winners", "wilcoxon", "wilcoxon_queries", "runs"):
        for ext in ("csv", "md", "tex"):
            assert (out / f"{name}.{ext}").is_file(), f"{name}.{ext}"
    assert "winners.png" not in written and (out / "report.md").is_file()

    comp = pd.read_csv(out / "comparison.csv")
    assert list(comp.columns) == ["dataset", "method", "metric", "direction", "mean", "std", "n",
                                  "ci_low", "ci_high"]
    comp = comp.set_index(["dataset", "method", "metric"])
    for run_dir in sorted(p for p in handmade.iterdir() if (p / "summary.json").exists()):
        summary = json.loads((run_dir / "summary.json").read_text())
        dataset, method = summary["dataset"], summary["method"]
        for metric in ("perc_valid_cf_all", "distance_mh", "runtime", "count_diversity_all"):
            qm = _independent_query_means(run_dir, metric)
            vals = list(qm.values())
            row = comp.loc[(dataset, method, metric)]
            assert row["n"] == len(vals)
            assert row["mean"] == pytest.approx(statistics.mean(vals))
            assert row["std"] == pytest.approx(statistics.stdev(vals))
            half = sps.t.ppf(0.975, len(vals) - 1) * statistics.stdev(vals) / math.sqrt(len(vals))
            assert row["ci_low"] == pytest.approx(statistics.mean(vals) - half)
            assert row["ci_high"] == pytest.approx(statistics.mean(vals) + half)
        # runtime_with_bounds = runtime + bounds_seconds / queries for dpg_ga only
        rt = comp.loc[(dataset, method, "runtime"), "mean"]
        rtb = comp.loc[(dataset, method, "runtime_with_bounds"), "mean"]
        assert rtb == pytest.approx(rt + (0.8 / 8 if method == "dpg_ga" else 0.0))

    runs = pd.read_csv(out / "runs.csv").set_index(["dataset", "method"])
    assert runs.loc[("ds_a", "dice_random"), "n_failed"] == 2
    assert runs.loc[("ds_a", "dice_random"), "n_timed_out"] == 1
    assert runs.loc[("ds_c", "dpg_ga"), "n_tasks"] == 8 * 2 * 2
    assert runs.loc[("ds_c", "dpg_ga"), "n_queries"] == 8

    # win counts: recomputed from the dataset means of comparison.csv
    summ = pd.read_csv(out / "summary.csv")
    assert set(summ["metric"]) == set(PAPER_METRICS) | {"runtime_with_bounds"}
    for r in summ.itertuples():
        a = [comp.loc[(d, r.method_a, r.metric), "mean"] for d in rep.datasets]
        b = [comp.loc[(d, r.method_b, r.metric), "mean"] for d in rep.datasets]
        sign = 1 if r.direction == "up" else -1
        diffs = [sign * (x - y) for x, y in zip(a, b, strict=True)]
        assert r.wins == sum(d > 0 and not np.isclose(d, 0) for d in diffs)
        assert r.losses == sum(d < 0 and not np.isclose(d, 0) for d in diffs)
        assert r.wins + r.losses + r.ties == r.n_datasets == 3

    # Wilcoxon over datasets: the same test run by hand on the recomputed means
    wx = pd.read_csv(out / "wilcoxon.csv")
    assert list(wx["metric"]) == list(PAPER_METRICS)  # one pair: dpg_ga vs dice_random
    assert set(wx["method_a"]) == {"dpg_ga"} and set(wx["method_b"]) == {"dice_random"}
    for r in wx.itertuples():
        a = np.array([comp.loc[(d, "dpg_ga", r.metric), "mean"] for d in rep.datasets])
        b = np.array([comp.loc[(d, "dice_random", r.metric), "mean"] for d in rep.datasets])
        d = (a - b) if r.direction == "up" else (b - a)
        assert r.n_datasets == 3
        assert r.median_diff == pytest.approx(np.median(d))
        assert r.p == pytest.approx(sps.wilcoxon(d).pvalue)
    assert wx["p_holm"].to_numpy() == pytest.approx(holm(wx["p"].to_numpy()), nan_ok=True)

    # per-dataset tests over queries: 8 common queries >= 6, so every one is tested
    wq = pd.read_csv(out / "wilcoxon_queries.csv")
    assert len(wq) == 3 * len(PAPER_METRICS) and wq["tested"].all()
    qa = _independent_query_means(handmade / "0_ds_a_dpg_ga", "distance_mh")
    qb = _independent_query_means(handmade / "1_ds_a_dice_random", "distance_mh")
    common = sorted(set(qa) & set(qb))
    d = [qb[q] - qa[q] for q in common]  # distance: smaller better, positive = dpg_ga better
    row = wq[(wq["dataset"] == "ds_a") & (wq["metric"] == "distance_mh")].iloc[0]
    assert row["n_queries"] == len(common)
    assert row["p"] == pytest.approx(sps.wilcoxon(d).pvalue)

    md = (out / "comparison.md").read_text()
    assert md.count("\n") == 2 + 6  # header, rule, 3 datasets × 2 methods
    assert "ds_c" in md and "runtime_with_bounds" in md and "2/16 (1 t/o)" in md
    tex = (out / "comparison.tex").read_text()
    assert r"\begin{tabular}" in tex and r"ds\_c" in tex and r"\textbf{" in tex


def test_queries_not_shared_are_dropped_with_a_warning(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "runs"
    _write_run(root, "a", "ds", "dpg_ga", _rows(rng, [1, 2, 3], [0], 1, 0))
    _write_run(root, "b", "ds", "dice_random", _rows(rng, [1, 2, 3, 4], [0], 1, 0),
               test_accuracy=0.8)
    rep = build_report([root])
    assert sorted(rep.rows["query"].unique()) == [1, 2, 3]
    assert any("queries the others did not" in w for w in rep.warnings)
    assert any("not the same fitted forest" in w for w in rep.warnings)


def test_winner_heatmap_png(handmade, tmp_path):
    pytest.importorskip("matplotlib")
    written = write_report(build_report([handmade]), tmp_path / "r")
    png = written["winners.png"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_writes_default_report_dir_and_fills_doc(handmade, tmp_path, capsys):
    doc = tmp_path / "paper.md"
    doc.write_text(f"# Title\n\nprose before\n\n{BEGIN}\nold tables\n{END}\n\nprose after\n")
    assert report_main([str(handmade), "--no-plot", "--doc", str(doc)]) == 0
    printed = capsys.readouterr().out
    assert f"report written to {handmade / 'report'}" in printed
    assert str(handmade / "report" / "comparison.csv") in printed
    text = doc.read_text()
    assert "prose before" in text and "prose after" in text and "old tables" not in text
    assert "### Comparison" in text and "ds_b" in text
    # a second fill replaces, not appends
    fill_doc(handmade / "report", doc)
    assert doc.read_text().count("### Comparison") == 1


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert report_main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cfgen.report: error:") and err.count("\n") == 1
    (tmp_path / "empty").mkdir()
    assert report_main([str(tmp_path / "empty")]) == 2
    assert "no finished runs" in capsys.readouterr().err


def test_docs_paper_has_the_generated_block():
    text = (ROOT / "docs" / "paper.md").read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1 and text.find(BEGIN) < text.find(END)


# ------------------------------------------------------------------------------ presets


def _sweep_params(cfg) -> dict[str, list[str]]:
    return {k: str(v).split(",") for k, v in cfg.hydra.sweeper.params.items()}


def _compose_with_hydra(overrides):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cfgen.cli import CONF_DIR
    from cfgen.config import register

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=True)


def test_paper_preset_sweeps_every_dataset_and_method(datasets_dir):
    cfg = _compose_with_hydra(["experiment=paper"])
    ep = cfg.experiment_params
    assert ep.num_samples >= 20 and ep.num_counterfactuals == 5 and ep.sample_indices is None
    assert ep.num_combinations_to_test == 1 and list(ep.rules) == ["none"]
    assert cfg.method.time_limit == 30
    params = _sweep_params(cfg)
    csvs = {p.stem for p in datasets_dir.glob("*.csv")}
    assert set(params["dataset"]) == csvs | {"iris"}
    presets = {p.stem for p in (ROOT / "cfgen" / "conf" / "dataset").glob("*.yaml")}
    assert set(params["dataset"]) <= presets
    assert params["method"] == ["dpg_ga", "dice_random", "dice_genetic", "dice_kdtree",
                                "nice_sparsity", "nice_proximity", "nice_plausibility", "exact"]
    # the preset's time limit survives choosing another method (experiment after method)
    cfg = _compose_with_hydra(["experiment=paper", "method=dice_genetic"])
    assert cfg.method.name == "dice_genetic" and cfg.method.time_limit == 30


def test_paper_quick_preset():
    cfg = _compose_with_hydra(["experiment=paper_quick"])
    assert cfg.experiment_params.num_samples == 5 and cfg.experiment_params.num_replications == 1
    assert cfg.method.ga.population_size <= 30  # method/ga=quick
    assert _sweep_params(cfg)["dataset"] == ["iris", "education_dataset", "diabetes"]
    assert _sweep_params(cfg)["method"] == ["dpg_ga_quick", "dice_random", "dice_genetic",
                                            "dice_kdtree", "nice_sparsity", "exact"]
    assert "paper_quick" in cfg.hydra.sweep.dir


# ------------------------------------------------------------------------------ real runs


def test_report_on_a_real_tiny_multirun(cfg_factory, tmp_path):
    """iris and education_dataset × dpg_ga with and without class bounds, run for real (the
    pipeline `python -m cfgen -m` runs per job), then reported with the bound mode in the label."""
    from cfgen.experiment import run

    root = tmp_path / "multirun"
    job = 0
    for dataset in ("iris", "education_dataset"):
        for mode in ("dpg", "none"):
            cfg = cfg_factory(f"dataset={dataset}", "method=dpg_ga", f"method/bounds={mode}",
                              "experiment_params.num_samples=3",
                              "experiment_params.num_replications=1")
            run(cfg, root / f"{job}_{dataset}_{mode}")
            job += 1
    rep = build_report([root], label_by=["method.name", "method.bounds.mode"])
    written = write_report(rep, root / "report", plot=False)
    methods = ["dpg_ga/dpg", "dpg_ga/none"]
    assert rep.datasets == ["education_dataset", "iris"] and rep.methods == methods
    assert rep.reference == "dpg_ga/dpg"  # the first run's label, not a hard-coded name
    comp = pd.read_csv(written["comparison.csv"])
    assert set(comp["dataset"]) == {"iris", "education_dataset"}
    assert set(comp["method"]) == set(methods)
    assert {"perc_valid_cf_all", "runtime", "runtime_with_bounds"} <= set(comp["metric"])
    assert (comp.loc[comp["metric"] == "perc_valid_cf_all", "n"] == 3).all()
    # same forest, same queries: the fairness checks pass
    assert not [w for w in rep.warnings if "differs" in w or "queries the others" in w]
    runs = pd.read_csv(written["runs.csv"])
    assert (runs["n_queries"] == 3).all() and len(runs) == 4
    assert (runs.loc[runs["method"] == "dpg_ga/none", "bounds_seconds"] == 0).all()
    # summary.json says which runs used the bounds: only those carry the mining time
    assert (runs.loc[runs["method"] == "dpg_ga/dpg", "bounds_seconds"] > 0).all()
    assert not any("do not say whether" in w for w in rep.warnings)
    summ = pd.read_csv(written["summary.csv"])
    assert len(summ) == len(rep.shown) and (summ["n_datasets"] <= 2).all()
    wx = pd.read_csv(written["wilcoxon.csv"])
    assert len(wx) == len(rep.metrics) and (wx["n_datasets"] <= 2).all()
    report_md = written["report.md"].read_text()
    assert "## Comparison" in report_md and "education_dataset" in report_md


@pytest.mark.slow
def test_paper_quick_sweep_through_hydra_then_report(tmp_path, datasets_dir):
    """The real `-m experiment=paper_quick` sweep (cut to iris × two methods) and the CLI."""
    import os
    import subprocess
    import sys

    pytest.importorskip("dice_ml")
    sweep = tmp_path / "sweep"
    env = {**os.environ, "CFGEN_DATA_DIR": str(datasets_dir)}
    cmd = [sys.executable, "-m", "cfgen", "-m", "experiment=paper_quick", "dataset=iris",
           "method=dpg_ga,dice_random", f"hydra.sweep.dir={sweep}"]
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, capture_output=True, timeout=600)
    out = subprocess.run([sys.executable, "-m", "cfgen.report", str(sweep)], check=True,
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert f"report written to {sweep / 'report'}" in out.stdout
    comp = pd.read_csv(sweep / "report" / "comparison.csv")
    assert set(comp["method"]) == {"dpg_ga", "dice_random"}
    assert (comp.loc[comp["metric"] == "perc_valid_cf_all", "n"] == 5).all()


# ------------------------------------------------------------------------------ grouping, honesty


def test_a_swept_key_is_a_label_not_a_dropped_run(tmp_path):
    """A sweep of ga.population_size=20,50: before, both runs got the label dpg_ga and the older
    was dropped with a warning; now the swept key (from .hydra/overrides.yaml) labels them."""
    rng = np.random.default_rng(2)
    root = tmp_path / "sweep"
    for job, pop in enumerate((20, 50)):
        _write_run(root, f"{job}_pop{pop}", "ds", "dpg_ga", _rows(rng, [1, 2, 3], [0], 1, 0),
                   overrides=["dataset=ds", f"ga.population_size={pop}", "logger=none"])
    rep = build_report([root])
    assert rep.methods == ["dpg_ga/population_size=20", "dpg_ga/population_size=50"]
    assert rep.reference == "dpg_ga/population_size=20"  # the first job's
    assert not any("two runs" in w for w in rep.warnings)
    assert "ga.population_size" in rep.runset.grouping
    # an explicit --label-by still wins (and then the two runs do collapse, with a warning)
    rep = build_report([root], label_by=["method.name"])
    assert rep.methods == ["dpg_ga"] and any("two runs" in w for w in rep.warnings)


def test_any_method_name_and_bounds_from_summary(tmp_path):
    """No method name is special: whichever run says uses_bounds gets the mining time."""
    rng = np.random.default_rng(3)
    root = tmp_path / "runs"
    _write_run(root, "0_a", "ds", "alpha", _rows(rng, [1, 2], [0], 1, 0), bounds_seconds=0.6,
               uses_bounds=False)
    _write_run(root, "1_b", "ds", "beta", _rows(rng, [1, 2], [0], 1, 0), bounds_seconds=0.6,
               uses_bounds=True)
    rep = build_report([root])
    assert rep.methods == ["alpha", "beta"] and rep.reference == "alpha"
    comp = rep.comparison.set_index(["method", "metric"])["mean"]
    assert comp[("alpha", "runtime_with_bounds")] == pytest.approx(comp[("alpha", "runtime")])
    assert comp[("beta", "runtime_with_bounds")] == pytest.approx(comp[("beta", "runtime")] + 0.3)
    assert build_report([root], reference="beta").methods == ["beta", "alpha"]


def test_none_is_written_none_and_small_n_cannot_be_significant(handmade, tmp_path):
    for d in handmade.iterdir():  # no time limit anywhere
        cfg = d / "config.yaml"
        cfg.write_text(cfg.read_text().replace(f"time_limit: {TIME_LIMIT}", "time_limit: null"))
    rep = build_report([handmade])
    out = write_report(rep, tmp_path / "r", plot=False)
    text = out["report.md"].read_text()
    assert "time limit per query (s): none" in text and "None" not in text
    # 3 datasets: the smallest two-sided exact p is 2/2^3 = 0.25, times 8 metrics (Holm) -> 1
    wx = pd.read_csv(out["wilcoxon.csv"])
    assert (wx["min_p_holm"] == 1.0).all() and not wx["can_be_significant"].any()
    assert not wx["significant"].any()
    assert "cannot be significant (n = 3" in (tmp_path / "r" / "wilcoxon.md").read_text()
    # 8 metrics at alpha 0.05 need 8 * 2/2^n < 0.05, n >= 9
    assert "it needs n ≥ 9 datasets" in text and "no test here can be significant" in text
    # the legend: each shown metric with its direction and meaning
    assert "| distance_mh | ↓ | mean distance to the query: mixed MAD / Hamming" in text


def test_sweep_report_html_is_self_contained(handmade, tmp_path):
    import base64
    import re

    written = write_report(build_report([handmade]), tmp_path / "r")
    page = written["report.html"].read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page
    srcs = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(srcs) == 1
    assert base64.b64decode(srcs[0]) == written["winners.png"].read_bytes()
    assert "<h2>Comparison</h2>" in page and "ds_c" in page


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture(scope="module")
def german_report(tmp_path_factory):
    """A real german_credit run with plots, its change files and its report.html."""
    from conftest import FAST, compose_config
    from matplotlib.image import imsave
    from test_changes import ensure_change_files

    from cfgen.experiment import run
    from cfgen.plots.run import slug
    from cfgen.report.run_report import write_run_report

    out = tmp_path_factory.mktemp("german_run")
    res = run(compose_config([*FAST, "dataset=german_credit",
                              "experiment_params.num_replications=1"]), out)
    ensure_change_files(res, out)
    # two small PNGs named as the run's plots are (rendering real ones is the slow, plots test's
    # job): the report must find them by name and embed them byte for byte
    t = res.tasks[0]
    stem = f"q{t.query}_to_{slug(res.problem.class_names[t.target])}_c0"
    (out / "plots").mkdir()
    imsave(out / "plots" / f"changes_{stem}.png", np.arange(6.0).reshape(2, 3))
    imsave(out / "plots" / f"fitness_{stem}.png", np.arange(20.0).reshape(4, 5))
    return res, out, write_run_report(out)


def test_run_report_holds_setup_diffs_metrics_and_plots(german_report):
    import base64
    import re

    from cfgen.changes import read_changes

    res, out, path = german_report
    page = path.read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page
    s = res.summary
    assert f"test {s['test_accuracy']:.3f}" in page and "RandomForestClassifier" in page
    assert "<th>time limit per query (s)</th><td>none</td>" in page
    assert "<td>distance_mh</td><td>↓</td>" in page  # metric, direction, meaning
    # every plot of the run is embedded, byte for byte
    found = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="[^"]*" '
                       r'data-name="([^"]+)"', page)
    embedded = {name: base64.b64decode(b64) for b64, name in found}
    plots = {p.name: p.read_bytes() for p in (out / "plots").glob("*.png")}
    assert len(found) == 2 and embedded == plots
    assert [_png_size(b) for b in embedded.values()] == [(3, 2), (5, 4)]
    # the first query's diff: each changed feature's row with the new values, '-' for unchanged
    ch = read_changes(out / "changes.csv")
    q = int(ch["query"].iloc[0])
    rows = ch[(ch["query"] == q) & (ch["replication"] == 0)].reset_index(drop=True)
    for f in res.problem.schema.names:
        if not rows[f].str.len().gt(0).any():
            continue
        cells = [c.split(" → ")[1] if c else "-" for c in rows[f]]
        assert f"<th>{f}</th>" in page
        for c in cells:
            assert c.replace("<", "&lt;").replace(">", "&gt;") in page


def test_report_gains_closest_over_optimum_when_exact_ran(cfg_factory, tmp_path):
    """dpg_ga and the exact MILP on the same queries: the report adds the table, the exact
    method sits at 1 and no method is below it."""
    from cfgen.experiment import run

    root = tmp_path / "multirun"
    for job, method in enumerate(("dpg_ga", "exact")):
        run(cfg_factory("dataset=iris", f"method={method}", "experiment_params.num_samples=3",
                        "experiment_params.num_replications=1"), root / f"{job}_{method}")
    rep = build_report([root])
    written = write_report(rep, root / "report", plot=False)
    table = pd.read_csv(written["closest_over_optimum.csv"])
    by = table.set_index("method")
    assert set(by.index) == {"dpg_ga", "exact"}
    assert by.loc["exact", "closest_over_optimum_median"] == pytest.approx(1.0)
    assert (table["closest_over_optimum_median"] >= 1.0 - 1e-9).all()
    assert "Closest counterfactual ÷ proven optimum" in written["report.md"].read_text()
