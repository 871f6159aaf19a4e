"""Metric suite (cfgen.metrics) on tiny hand-made cases, plus the search plots (cfgen.plots.search).

Main hand case (``base``): three features, a continuous, b integer, c categorical (3 codes).

    train  a  b  c   y        test (model-labelled)   a    b  c   pred
    r0     0  0  0   0        t0                     -3    0  0   0
    r1     1  0  1   0        t1                      0.5  0  0   0
    r2     2  0  2   0        t2                      2.4  0  0   0
    r3     3  0  0   1        t3                      3    0  0   1
    r4     4  1  1   1        t4                      2.6  1  0   1
    r5     5  2  2   1        t5                      9    0  0   1
    r6     6  0  0   1
    r7     7  3  1   0

The model is a depth-1 DecisionTreeClassifier: the only split giving weighted Gini 0.2 is
a <= 2.5 (left: 3 x class 0 -> proba [1, 0]; right: 4 x 1 + 1 x 0 -> proba [0.2, 0.8]); every b
or c split is worse (>= 0.467) — ``test_premise_tree`` checks it.

    MAD (cfgen): a: median 3.5, |a-3.5| = 3.5 2.5 1.5 .5 .5 1.5 2.5 3.5 -> median 2.0
                 b: median 0, |b| = 0 0 0 0 1 2 0 3 -> median 0 -> guard: mean |b-0| = 6/8 = 0.75
    MAD (ece):   1.4826 * raw MAD, 0 -> 1.0: a 2.9652, b 1.0
    shares: r_cont = 2/3 (a, b), r_cat = 1/3 (c)

Query x = [1, 0, 0] (class 0, p1 = 0), target 1, k = 4, counterfactuals
    cf0 = [4, 0, 0]  -> class 1 (p1 .8)   changes a
    cf1 = [3, 2, 1]  -> class 1 (p1 .8)   changes a, b, c
    cf2 = [2, 1, 0]  -> class 0 (p1 0)    changes a, b          (invalid)
Rules of the combination: b non_increasing, c no_change.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

from cfgen.explanation import Explanation
from cfgen.metrics import (
    COLUMNS,
    COUNT_LIKE,
    DIRECTIONS,
    METRIC_NAMES,
    MetricContext,
    aggregate,
    guarded_mad,
    metrics_frame,
    summarize_rows,
    task_row,
)
from cfgen.plan import Task
from cfgen.schema import Feature, FeatureSchema, Kind, Rule

S2 = math.sqrt(2.0)
S5 = math.sqrt(5.0)
S8 = math.sqrt(8.0)
MAD_A_ECE = 1.4826 * 2.0

X_TRAIN = np.array(
    [[0, 0, 0], [1, 0, 1], [2, 0, 2], [3, 0, 0], [4, 1, 1], [5, 2, 2], [6, 0, 0], [7, 3, 1]],
    dtype=float,
)
Y_TRAIN = np.array([0, 0, 0, 1, 1, 1, 1, 0])
X_TEST = np.array(
    [[-3, 0, 0], [0.5, 0, 0], [2.4, 0, 0], [3, 0, 0], [2.6, 1, 0], [9, 0, 0]], dtype=float
)
X = np.array([1.0, 0.0, 0.0])
CFS = np.array([[4, 0, 0], [3, 2, 1], [2, 1, 0]], dtype=float)
TARGET, K = 1, 4

SCHEMA = FeatureSchema(
    (
        Feature("a", Kind.CONTINUOUS, -3.0, 9.0),
        Feature("b", Kind.INTEGER, 0.0, 3.0, decimals=0),
        Feature("c", Kind.CATEGORICAL, 0.0, 2.0, categories=("red", "green", "blue")),
    )
)
RULES = SCHEMA.with_rules({"b": Rule.NON_INCREASING, "c": Rule.NO_CHANGE})


@pytest.fixture(scope="module")
def tree():
    return DecisionTreeClassifier(max_depth=1, random_state=0).fit(X_TRAIN, Y_TRAIN)


@pytest.fixture(scope="module")
def ctx(tree):
    return MetricContext(SCHEMA, X_TRAIN, Y_TRAIN, X_TEST, tree.predict_proba, knn_test_size=2)


@pytest.fixture(scope="module")
def ece(tree):
    return MetricContext(
        SCHEMA, X_TRAIN, Y_TRAIN, X_TEST, tree.predict_proba, compat="ece", knn_test_size=2
    )


@pytest.fixture(scope="module")
def row(ctx):
    return ctx.compute(X, CFS, TARGET, K, runtime=1.25, schema=RULES)


@pytest.fixture(scope="module")
def erow(ece):
    return ece.compute(X, CFS, TARGET, K, runtime=1.25, schema=RULES)


def close(a, b, tol=1e-9):
    return a == pytest.approx(b, abs=tol)


# ------------------------------------------------------------------------------ premises


def test_premise_tree(tree):
    t = tree.tree_
    assert t.feature[0] == 0 and t.threshold[0] == 2.5
    np.testing.assert_allclose(tree.predict_proba(CFS), [[0.2, 0.8], [0.2, 0.8], [1, 0]])
    np.testing.assert_array_equal(tree.predict(X_TEST), [0, 0, 0, 1, 1, 1])


def test_guarded_mad():
    # a: 2.0 (plain MAD); b: MAD 0 -> mean |b - median| = 6/8; constant column -> 1.0
    X = np.column_stack([X_TRAIN[:, 0], X_TRAIN[:, 1], np.full(8, 7.0)])
    np.testing.assert_allclose(guarded_mad(X), [2.0, 0.75, 1.0])


def test_names_and_directions(row, erow):
    assert list(row) == list(METRIC_NAMES) == list(erow)
    assert DIRECTIONS["distance_l2"] == "down" and DIRECTIONS["diversity_l2"] == "up"
    assert DIRECTIONS["plausibility_sum"] == "down" and DIRECTIONS["perc_valid_cf"] == "up"
    assert row["runtime"] == 1.25


# ------------------------------------------------------------------------------ validity


def test_validity(row, erow):
    # cfgen: valid = predicted == target 1 -> [T, T, F]
    assert row["nbr_cf"] == 3
    assert row["nbr_valid_cf"] == 2
    assert close(row["perc_valid_cf"], 2 / 3)
    assert close(row["perc_valid_cf_all"], 2 / 4)
    # ece: valid = predicted != predicted(x) = 0 -> same [T, T, F] here
    assert erow["nbr_valid_cf"] == 2 and close(erow["perc_valid_cf_all"], 0.5)


def test_validity_target_vs_any_other_class():
    # 3 classes on a line; x in class 0, target 2; the cf lands in class 1:
    # cfgen says invalid (not the target), ece says valid (differs from x's class)
    Xt = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
    yt = np.array([0, 0, 1, 1, 2, 2])
    model = DecisionTreeClassifier(random_state=0).fit(Xt, yt)
    schema = FeatureSchema((Feature("v", Kind.CONTINUOUS, 0.0, 5.0),))
    for compat, expected in (("cfgen", 0), ("ece", 1)):
        c = MetricContext(schema, Xt, yt, Xt, model.predict_proba, compat=compat)
        r = c.compute(np.array([0.0]), np.array([[2.5]]), 2, 1, 0.0)
        assert r["nbr_valid_cf"] == expected


# ------------------------------------------------------------------------------ actionability


def test_actionability(row, erow, ctx):
    # cfgen, rules b non_increasing, c no_change:
    #   cf0 [4,0,0]: none                        -> 0 violations
    #   cf1 [3,2,1]: b 0->2 up, c 0->1 changed   -> 2
    #   cf2 [2,1,0]: b 0->1 up                   -> 1
    assert row["nbr_actionable_cf"] == 1
    assert close(row["perc_actionable_cf"], 1 / 3) and close(row["perc_actionable_cf_all"], 1 / 4)
    assert row["nbr_valid_actionable_cf"] == 1  # cf0 only
    assert close(row["perc_valid_actionable_cf"], 1 / 3)
    assert close(row["perc_valid_actionable_cf_all"], 1 / 4)
    assert close(row["avg_nbr_violations_per_cf"], (0 + 2 + 1) / 3)
    assert close(row["avg_nbr_violations"], 3 / (3 * 3))
    # ece only knows no_change (c): violations [0, 1, 0] -> actionable cf0, cf2
    assert erow["nbr_actionable_cf"] == 2
    assert close(erow["perc_actionable_cf"], 2 / 3) and close(erow["perc_actionable_cf_all"], 2 / 4)
    assert erow["nbr_valid_actionable_cf"] == 1
    assert close(erow["avg_nbr_violations_per_cf"], 1 / 3)
    assert close(erow["avg_nbr_violations"], 1 / 9)
    # without the override the context's own schema (all rules none) applies
    free = ctx.compute(X, CFS, TARGET, K, 0.0)
    assert free["nbr_actionable_cf"] == 3 and free["avg_nbr_violations"] == 0


# ------------------------------------------------------------------------------ distance


def test_distance_cfgen(row):
    # per cf (r_cont = 2/3, r_cat = 1/3; MAD a 2, b .75; c: h = changed/1, j = 2h/(1+h)):
    #   cf0 d=[3,0,0]:  l2 3      mad 3/2          = 1.5      h 0 j 0
    #   cf1 d=[2,2,c]:  l2 sqrt8  mad 2/2 + 2/.75  = 11/3     h 1 j 1
    #   cf2 d=[1,1,0]:  l2 sqrt2  mad 1/2 + 1/.75  = 11/6     h 0 j 0
    l2 = [3, S8, S2]
    mad = [1.5, 11 / 3, 11 / 6]
    h = j = [0, 1, 0]
    l2j = [2 / 3 * a + 1 / 3 * b for a, b in zip(l2, j, strict=True)]  # 2, 2.219, 0.943
    mh = [2 / 3 * a + 1 / 3 * b for a, b in zip(mad, h, strict=True)]  # 1, 2.778, 1.222
    for name, v in (("l2", l2), ("mad", mad), ("j", j), ("h", h), ("l2j", l2j), ("mh", mh)):
        assert close(row[f"distance_{name}"], np.mean(v)), name
        assert close(row[f"distance_{name}_min"], min(v)), name
        assert close(row[f"distance_{name}_max"], max(v)), name
    # max of the combined per-cf distance is cf1's: 2/3 sqrt8 + 1/3 = 2.2190
    assert close(row["distance_l2j_max"], 2 / 3 * S8 + 1 / 3)


def test_distance_ece(erow):
    # MAD a = 1.4826 * 2, b = 1.0 (zero MAD -> 1); codes compared raw
    mad = [3 / MAD_A_ECE, 2 / MAD_A_ECE + 2, 1 / MAD_A_ECE + 1]
    assert close(erow["distance_mad"], np.mean(mad))
    assert close(erow["distance_l2"], (3 + S8 + S2) / 3)
    # Jaccard of (c != 0): cf1 {c} vs {} -> 1; Hamming of codes: [0, 1, 0]
    assert close(erow["distance_j"], 1 / 3) and close(erow["distance_h"], 1 / 3)
    # combined min/max aggregate each part separately, then combine:
    # l2j_max = 2/3 * max(l2)=3 + 1/3 * max(j)=1 = 2.3333 (cfgen: 2.2190, cf1's own value)
    assert close(erow["distance_l2j_max"], 2 / 3 * 3 + 1 / 3 * 1)
    assert close(erow["distance_mh_min"], 2 / 3 * min(mad) + 1 / 3 * 0)


def test_categorical_distances():
    # two categoricals: x codes (1, 0), cf codes (2, 0): one of two categories changed
    #   cfgen: h = 1/2, Jaccard on {(feature, value)} sets = 1 - |{c2=0}| / |{c1=1,c1=2,c2=0}|
    #          = 1 - 1/3 = 2/3 (= 2h/(n_cat+h) = 2/3)
    #   ece:   Hamming of codes 1/2; Jaccard of (code != 0): x (T, F), cf (T, F) -> 0
    Xt = np.array([[0, 0, 0], [1, 1, 1], [2, 2, 0], [3, 0, 1]], dtype=float)
    yt = np.array([0, 0, 1, 1])
    model = DecisionTreeClassifier(random_state=0).fit(Xt, yt)
    schema = FeatureSchema(
        (
            Feature("v", Kind.CONTINUOUS, 0.0, 3.0),
            Feature("c1", Kind.CATEGORICAL, 0, 2, categories=("p", "q", "r")),
            Feature("c2", Kind.CATEGORICAL, 0, 1, categories=("s", "t")),
        )
    )
    x, cf = np.array([0.0, 1, 0]), np.array([[0.0, 2, 0]])
    r = MetricContext(schema, Xt, yt, Xt, model.predict_proba).compute(x, cf, 1, 1, 0.0)
    assert close(r["distance_h"], 1 / 2) and close(r["distance_j"], 2 / 3)
    assert close(r["distance_l2"], 0.0)
    assert close(r["distance_mh"], 2 / 3 * 1 / 2)  # r_cat = 2/3
    assert close(r["avg_nbr_changes_per_cf"], 1.0)  # one category change = one change
    e = MetricContext(schema, Xt, yt, Xt, model.predict_proba, compat="ece").compute(x, cf, 1, 1, 0)
    assert close(e["distance_h"], 1 / 2) and close(e["distance_j"], 0.0)
    assert close(e["avg_nbr_changes_per_cf"], 0.5)  # the original's one-hot half weight


# ------------------------------------------------------------------------------ sparsity


def test_sparsity(row, erow):
    # changed features: cf0 {a}, cf1 {a,b,c}, cf2 {a,b} -> 1, 3, 2 (categorical weight 1)
    assert close(row["avg_nbr_changes_per_cf"], 2.0)
    assert close(row["avg_nbr_changes"], 6 / (3 * 3))
    # ece: categorical counts 0.5 -> 1, 2.5, 2
    assert close(erow["avg_nbr_changes_per_cf"], 5.5 / 3)
    assert close(erow["avg_nbr_changes"], 5.5 / 9)


# ------------------------------------------------------------------------------ diversity


def test_diversity_cfgen(row):
    # pairs: (cf0,cf1) d=[-1,2,c]: l2 sqrt5, mad .5 + 2/.75 = 19/6, h 1, j 1
    #        (cf0,cf2) d=[-2,1,0]: l2 sqrt5, mad 1 + 1/.75  = 7/3,  h 0, j 0
    #        (cf1,cf2) d=[-1,-1,c]: l2 sqrt2, mad .5 + 1/.75 = 11/6, h 1, j 1
    l2 = [S5, S5, S2]
    mad = [19 / 6, 7 / 3, 11 / 6]
    h = j = [1, 0, 1]
    l2j = [2 / 3 * a + 1 / 3 * b for a, b in zip(l2, j, strict=True)]
    mh = [2 / 3 * a + 1 / 3 * b for a, b in zip(mad, h, strict=True)]
    for name, v in (("l2", l2), ("mad", mad), ("j", j), ("h", h), ("l2j", l2j), ("mh", mh)):
        assert close(row[f"diversity_{name}"], np.mean(v)), name
        assert close(row[f"diversity_{name}_min"], min(v)), name
        assert close(row[f"diversity_{name}_max"], max(v)), name


def test_count_diversity(row, erow, tree):
    # differing features per pair: (0,1) a b c; (0,2) a b; (1,2) a b c
    # cfgen: over 3 pairs x 3 features: cont 6/9, cate 2/9 (weight 1), all 8/9
    assert close(row["count_diversity_cont"], 6 / 9)
    assert close(row["count_diversity_cate"], 2 / 9)
    assert close(row["count_diversity_all"], 8 / 9)
    # with a categorical weight of 0.5 applied per *feature*: cate = 0.5 * 2 / 9
    half = MetricContext(
        SCHEMA, X_TRAIN, Y_TRAIN, X_TEST, tree.predict_proba, categorical_weight=0.5
    )
    r = half.compute(X, CFS, TARGET, K, 0.0)
    assert close(r["count_diversity_cate"], 1 / 9) and close(r["count_diversity_all"], 7 / 9)
    # ece: weight 1 if the second cf's *index* j is in the continuous feature set {0, 1}, else .5;
    #      pairs (0,1) -> j=1 -> 1; (0,2) -> j=2 -> .5; (1,2) -> j=2 -> .5; divide by m^2 d = 27
    #      cont: 2*1 + 2*.5 + 2*.5 = 4;  cate: 1*1 + 0 + 1*.5 = 1.5;  all: 3 + 1 + 1.5 = 5.5
    assert close(erow["count_diversity_cont"], 4 / 27)
    assert close(erow["count_diversity_cate"], 1.5 / 27)
    assert close(erow["count_diversity_all"], 5.5 / 27)


def test_single_counterfactual_diversity_is_zero(ctx, ece):
    for c in (ctx, ece):
        r = c.compute(X, CFS[:1], TARGET, K, 0.0)
        for name in METRIC_NAMES:
            if name.startswith(("diversity_", "count_diversity_")):
                assert r[name] == 0.0, name


# ------------------------------------------------------------------------------ kNN


def test_knn_cfgen(row):
    # standardised (train mean/std): a: 3.5 / sqrt(5.25), b: .75 / sqrt(1.1875); c one-hot/sqrt2.
    # selection distance to x = 2/3 * L2(standardised a, b) + 1/3 * Jaccard(c):
    #   class 0 (x's): t1 .5/2.29*2/3 = .15, t2 1.4/2.29*2/3 = .41 (t0 4/2.29*2/3 = 1.16) -> t1, t2
    #   class 1 (target): t3 2/2.29*2/3 = .58, t4 sqrt(1.6^2/5.25 + 1/1.1875)*2/3 = .77,
    #                     (t5 8/2.29*2/3 = 2.33) -> t3, t4
    # 1-NN on {x:0, cf0:1, cf1:1, cf2:0}, squared standardised distances:
    #   t1 [.5,0,0]: x .25/5.25 = .05                                   -> 0, right
    #   t2 [2.4,0,0]: x 1.96/5.25 = .37, cf0 2.56/5.25 = .49, cf2 .16/5.25 + 1/1.1875 = .87
    #                                                                   -> 0, right
    #   t3 [3,0,0]: cf0 1/5.25 = .19, x 4/5.25 = .76                    -> 1, right
    #   t4 [2.6,1,0]: cf2 .36/5.25 = .07, cf0 1.96/5.25 + .84 = 1.22    -> 0, wrong (model says 1)
    assert close(row["accuracy_knn_sklearn"], 3 / 4)
    # same argmins under 2/3 * L2 + 1/3 * Jaccard (no categorical differs for the winners)
    assert close(row["accuracy_knn_dist"], 3 / 4)


def test_knn_ece(erow):
    # raw data, other class = any but x's; nearest to x: class 0 t1, t2; other t4 (1.26), t3 (1.33)
    # raw 1-NN: t1 -> x (0 ok); t2 -> cf2 sqrt(.16+1)=1.08 < x 1.4 (0 ok); t3 -> cf0 (1 ok);
    #           t4 -> cf2 .6 (0, wrong)
    assert close(erow["accuracy_knn_sklearn"], 3 / 4)
    assert close(erow["accuracy_knn_dist"], 3 / 4)


# ------------------------------------------------------------------------------ LOF


def _line_case(compat):
    # one continuous feature, training points 0..4 (LOF is scale-free: standardising is harmless)
    Xt = np.arange(5.0)[:, None]
    yt = np.array([0, 0, 0, 1, 1])
    model = DecisionTreeClassifier(random_state=0).fit(Xt, yt)
    schema = FeatureSchema((Feature("v", Kind.CONTINUOUS, 0.0, 4.0),))
    return MetricContext(schema, Xt, yt, Xt, model.predict_proba, compat=compat, lof_neighbors=2)


def test_lof_cfgen():
    # k = 2. k-distance: pt0 2, pt1 1, pt2 1, pt3 1, pt4 2.
    # lrd = 1 / mean reach-dist: pt0 (max(1,1), max(1,2)) -> 1/1.5 = 2/3; pt1 (max(2,1), 1) -> 2/3;
    #   pt2 (1, 1) -> 1; pt3 2/3; pt4 2/3.
    # q = 2: neighbours 2 (d 0) and 1 or 3 (d 1): reach (max(1,0), max(1,1)) -> lrd 1;
    #   LOF = mean(lrd 1, 2/3) / 1 = 5/6
    # q = 6: neighbours 4 (d 2), 3 (d 3): reach (max(2,2), max(1,3)) = (2, 3) -> lrd .4;
    #   LOF = mean(2/3, 2/3) / .4 = 5/3
    r = _line_case("cfgen").compute(np.array([0.0]), np.array([[2.0], [6.0]]), 1, 2, 0.0)
    assert close(r["lof"], (5 / 6 + 5 / 3) / 2, tol=1e-6)


def test_lof_ece_is_constant_one():
    # the original averaged |LocalOutlierFactor.predict| = |+-1|: always 1.0, inlier or outlier
    r = _line_case("ece").compute(np.array([0.0]), np.array([[2.0], [60.0]]), 1, 2, 0.0)
    assert r["lof"] == 1.0


def test_no_categorical_features():
    # cfgen: Jaccard/Hamming of nothing = 0; ece (as its DPG port): NaN, combined parts skip it
    r = _line_case("cfgen").compute(np.array([0.0]), np.array([[2.0], [6.0]]), 1, 2, 0.0)
    assert r["distance_j"] == 0.0 and r["distance_h"] == 0.0
    assert close(r["distance_l2j"], r["distance_l2"])
    e = _line_case("ece").compute(np.array([0.0]), np.array([[2.0], [6.0]]), 1, 2, 0.0)
    assert math.isnan(e["distance_j"]) and math.isnan(e["distance_h"])
    assert close(e["distance_mh"], e["distance_mad"]) and e["diversity_h"] == 0.0


# ------------------------------------------------------------------------------ delta


def test_delta(row, erow):
    # cfgen: p1(cf) - p1(x) = [.8 - 0, .8 - 0, 0 - 0]
    assert close(row["delta"], 1.6 / 3) and close(row["delta_min"], 0.0)
    assert close(row["delta_max"], 0.8)
    # ece on labels: |y_cf - y_x| = [1, 1, 0]
    assert close(erow["delta"], 2 / 3) and erow["delta_min"] == 0 and erow["delta_max"] == 1


# ------------------------------------------------------------------------------ plausibility


def test_plausibility_cfgen(row):
    # mh(cf, r) = 2/3 (|da|/2 + |db|/.75) + 1/3 [c differs], nearest *training* row of the cf's
    # predicted class (true labels):
    #   cf0 [4,0,0] class 1: r3 [3,0,0] 2/3*.5 = 1/3; r4 1.22; r5 2.44; r6 2/3        -> 1/3
    #   cf1 [3,2,1] class 1: r3 2.11; r4 [4,1,1] 2/3*(.5+4/3) = 11/9; r5 [5,2,2] 2/3*1 + 1/3 = 1;
    #                        r6 3.11                                                 -> 1
    #   cf2 [2,1,0] class 0: r0 2/3*(1+4/3) = 14/9; r1 2/3*(.5+4/3) + 1/3 = 14/9;
    #                        r2 [2,0,2] 2/3*4/3 + 1/3 = 11/9; r7 3.78                -> 11/9
    s = 1 / 3 + 1 + 11 / 9  # 23/9
    assert close(row["plausibility_sum"], s)
    assert close(row["plausibility_max_nbr_cf"], s / 4)
    assert close(row["plausibility_nbr_cf"], s / 3)
    assert close(row["plausibility_nbr_valid_cf"], s / 2)
    assert close(row["plausibility_nbr_actionable_cf"], s / 1)
    assert close(row["plausibility_nbr_valid_actionable_cf"], s / 1)


def test_plausibility_ece(erow, tree):
    # anchor = the FIRST test row the model puts in the cf's class (the original arg-sorts a scalar
    # mean distance, so index 0 always wins): class 1 -> t3 [3,0,0], class 0 -> t0 [-3,0,0]
    #   cf0 vs t3: 2/3 * (1/2.9652)               cf1 vs t3: 2/3 * (0 + 2/1) + 1/3
    #   cf2 vs t0: 2/3 * (5/2.9652 + 1/1)
    s = 2 / 3 * (1 / MAD_A_ECE) + (2 / 3 * 2 + 1 / 3) + 2 / 3 * (5 / MAD_A_ECE + 1)
    assert close(erow["plausibility_sum"], s)
    assert close(erow["plausibility_max_nbr_cf"], s / 4)
    assert close(erow["plausibility_nbr_cf"], s / 3)
    assert close(erow["plausibility_nbr_valid_cf"], s / 2)
    assert close(erow["plausibility_nbr_actionable_cf"], s / 2)  # ece: 2 actionable
    assert close(erow["plausibility_nbr_valid_actionable_cf"], s / 1)
    # the intended anchor (test row of the class nearest to x): class 0 -> t1 [.5,0,0]
    near = MetricContext(
        SCHEMA,
        X_TRAIN,
        Y_TRAIN,
        X_TEST,
        tree.predict_proba,
        compat="ece",
        ece_plausibility_anchor="nearest_to_x",
    ).compute(X, CFS, TARGET, K, 0.0, schema=RULES)
    s_near = 2 / 3 * (1 / MAD_A_ECE) + (2 / 3 * 2 + 1 / 3) + 2 / 3 * (1.5 / MAD_A_ECE + 1)
    assert close(near["plausibility_sum"], s_near)


def test_plausibility_zero_denominators(ctx, ece):
    # only cf2 (invalid, in class 0): cfgen -> NaN for "per valid", ece falls back to the sum
    r = ctx.compute(X, CFS[2:], TARGET, K, 0.0)
    assert close(r["plausibility_sum"], 11 / 9) and math.isnan(r["plausibility_nbr_valid_cf"])
    e = ece.compute(X, CFS[2:], TARGET, K, 0.0)
    assert e["plausibility_nbr_valid_cf"] == e["plausibility_sum"] > 0


# ------------------------------------------------------------------------------ empty set


def test_empty_set_cfgen(ctx):
    r = ctx.compute(X, np.empty((0, 3)), TARGET, K, 2.0)
    counts = [n for n in METRIC_NAMES if n.startswith(("nbr_", "perc_"))]
    assert all(r[n] == 0 for n in counts)
    rest = [n for n in METRIC_NAMES if n not in counts and n != "runtime"]
    assert all(math.isnan(r[n]) for n in rest), [n for n in rest if not math.isnan(r[n])]
    assert r["runtime"] == 2.0
    assert ctx.compute(X, [], TARGET, K, 0.0)["nbr_cf"] == 0  # a plain empty list works too


def test_empty_set_ece(ece):
    r = ece.compute(X, np.empty((0, 3)), TARGET, K, 0.0)
    assert r["perc_valid_cf"] == 0 and r["accuracy_knn_dist"] == 0 and r["delta"] == 0
    assert r["plausibility_sum"] == 0 and math.isnan(r["distance_l2"]) and math.isnan(r["lof"])
    assert math.isnan(r["count_diversity_all"]) and math.isnan(r["avg_nbr_violations"])


def test_bad_inputs(ctx):
    with pytest.raises(ValueError):
        ctx.compute(X[:2], CFS, TARGET, K, 0.0)
    with pytest.raises(ValueError):
        MetricContext(SCHEMA, X_TRAIN, Y_TRAIN, X_TEST, lambda A: A, compat="dice")
    other = FeatureSchema(SCHEMA.features[:2] + (Feature("c", Kind.CONTINUOUS, 0, 2),))
    with pytest.raises(ValueError):
        ctx.compute(X, CFS, TARGET, K, 0.0, schema=other)


# ------------------------------------------------------------------------------ aggregate


def test_aggregate():
    rows = [
        {"distance_l2": 1.0, "lof": math.nan, "method": "ga", "nbr_cf": 5},
        {"distance_l2": 2.0, "lof": math.nan, "method": "ga", "nbr_cf": 4},
        {"distance_l2": 6.0, "lof": 1.5, "method": "ga", "nbr_cf": 5},
    ]
    a = aggregate(rows, seed=3)
    d = a["distance_l2"]
    assert d["n"] == 3 and close(d["mean"], 3.0)
    assert close(d["std"], math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2))  # sqrt 7
    # n = 3: the 27 equally likely resamples give mean 1 (all "1") and mean 6 (all "6") with
    # probability 1/27 = 3.7% each, more than the 2.5% tails, so the percentile CI is exactly [1, 6]
    assert d["ci_low"] == 1.0 and d["ci_high"] == 6.0
    assert a["lof"] == {"mean": 1.5, "std": None, "n": 1, "ci_low": 1.5, "ci_high": 1.5}
    assert "method" not in a
    assert aggregate(rows, seed=3) == a  # deterministic
    json.dumps(a, allow_nan=False)  # strict JSON
    assert aggregate([{"x": math.nan}])["x"]["n"] == 0


def test_aggregate_ci_matches_normal_theory():
    # 50 normal values: the bootstrap CI of the mean is close to mean ± 1.96·s/√n
    v = np.random.default_rng(0).normal(10.0, 2.0, size=50)
    d = aggregate([{"x": float(x)} for x in v], seed=1, n_boot=20_000)["x"]
    half = 1.96 * v.std(ddof=1) / math.sqrt(len(v))
    assert abs(d["ci_low"] - (v.mean() - half)) < 0.1 * half
    assert abs(d["ci_high"] - (v.mean() + half)) < 0.1 * half
    narrow = aggregate([{"x": float(x)} for x in v], seed=1, confidence=0.5)["x"]
    assert d["ci_low"] < narrow["ci_low"] < narrow["ci_high"] < d["ci_high"]


# ------------------------------------------------------------------------------ mixed distance


def test_distance_mixed(row, erow):
    # MAD-scaled L1 over a, b (MAD 2, .75) + 1 per changed categorical (c):
    #   cf0 [4,0,0]: 3/2 = 1.5;  cf1 [3,2,1]: 2/2 + 2/.75 + 1 = 14/3;
    #   cf2 [2,1,0]: 1/2 + 1/.75 = 11/6
    v = [1.5, 14 / 3, 11 / 6]
    for r in (row, erow):  # cfgen's definition in both modes (not part of the original suite)
        assert close(r["distance_mixed"], np.mean(v))
        assert close(r["distance_mixed_min"], 1.5) and close(r["distance_mixed_max"], 14 / 3)


def test_distance_mixed_is_what_the_search_optimises(ctx):
    from cfgen.search.distance import MixedDistance, feature_scale

    rng = np.random.default_rng(0)
    x = X_TRAIN[3]
    cfs = np.column_stack([rng.uniform(-3, 9, 6), rng.integers(0, 4, 6), rng.integers(0, 3, 6)])
    metric = MixedDistance(feature_scale(X_TRAIN, SCHEMA), SCHEMA.categorical)
    expected = metric.to(metric.scaled(cfs), metric.scaled(x))
    r = ctx.compute(x, cfs, 1, 6, 0.0)
    assert close(r["distance_mixed"], expected.mean(), 1e-12)
    assert close(r["distance_mixed_max"], expected.max(), 1e-12)


def test_scales_directions_and_docs():
    from cfgen.metrics import COUNT_LIKE, SCALES

    assert set(SCALES) == set(DIRECTIONS) == set(METRIC_NAMES)
    assert SCALES["nbr_valid_cf"] == "count" and SCALES["perc_valid_cf_all"] == "share"
    assert SCALES["avg_nbr_changes_per_cf"] == "count" and SCALES["avg_nbr_changes"] == "share"
    assert SCALES["distance_mixed"] == "distance" and DIRECTIONS["distance_mixed"] == "down"
    assert all(n.startswith(("nbr_", "perc_")) for n in COUNT_LIKE) and len(COUNT_LIKE) == 10
    doc = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text()
    for name in METRIC_NAMES:  # every column is documented (a family row covers _min/_max)
        base = name.removesuffix("_min").removesuffix("_max")
        assert f"`{name}`" in doc or f"`{base}`" in doc, name


# ------------------------------------------------------------------------------ batches


def _random_case(seed: int, n_tasks: int = 40):
    """Three classes, a categorical with 4 codes, an integer; sets of 0..6 with repeats."""
    rng = np.random.default_rng(seed)
    Xt = np.column_stack([rng.normal(0, 2, 200), rng.integers(0, 5, 200), rng.integers(0, 4, 200)])
    yt = (Xt[:, 0] > 0).astype(int) + (Xt[:, 2] >= 2)
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(Xt, yt)
    schema = FeatureSchema(
        (
            Feature("a", Kind.CONTINUOUS, -6.0, 6.0),
            Feature("b", Kind.INTEGER, 0.0, 4.0, decimals=0),
            Feature("c", Kind.CATEGORICAL, 0.0, 3.0, categories=("p", "q", "r", "s")),
        )
    )
    rules = [schema, schema.with_rules({"b": Rule.NON_INCREASING, "c": Rule.NO_CHANGE}),
             schema.with_rules({"a": Rule.NON_DECREASING})]
    X = Xt[rng.integers(0, 200, n_tasks)]
    sets = []
    for t in range(n_tasks):
        m = int(rng.integers(0, 7))
        cfs = Xt[rng.integers(0, 200, m)].copy()
        if m >= 2 and t % 3 == 0:
            cfs[1] = cfs[0]  # a duplicate: zero-distance pairs and kNN ties
        sets.append(cfs)
    targets = rng.integers(0, 3, n_tasks)
    schemas = [rules[t % 3] for t in range(n_tasks)]
    return Xt[:120], yt[:120], Xt[120:], model, schema, X, sets, targets, schemas


@pytest.mark.parametrize("compat", ["cfgen", "ece"])
def test_batch_equals_one_query_at_a_time(compat):
    Xtr, ytr, Xte, model, schema, X, sets, targets, schemas = _random_case(1)
    ctx = MetricContext(schema, Xtr, ytr, Xte, model.predict_proba, compat=compat)
    runtimes = np.arange(len(X)) / 10
    cols = ctx.evaluate(X, sets, targets, 4, runtimes, schemas)
    assert list(cols) == list(METRIC_NAMES)
    for t in range(len(X)):
        one = ctx.compute(X[t], sets[t], int(targets[t]), 4, runtimes[t], schema=schemas[t])
        for name, v in one.items():
            assert cols[name][t] == pytest.approx(v, rel=1e-12, abs=1e-12, nan_ok=True), (t, name)
    # the sizes really cover empty, single and larger sets
    assert {0, 1, 2, 6} <= {len(s) for s in sets}


def test_evaluate_without_tasks(ctx):
    cols = ctx.evaluate(np.zeros((0, 3)), [], [], 4, [])
    assert list(cols) == list(METRIC_NAMES) and all(len(v) == 0 for v in cols.values())


# ------------------------------------------------------------------------------ run rows


@dataclasses.dataclass
class NewTaskResult:
    """The runner's TaskResult(index, explanation, error, peak_rss, pid) (until it lands)."""

    index: int
    explanation: Explanation
    error: str | None = None
    peak_rss: int = 0
    pid: int = 0


def _three_tasks():
    # query t1 = [.5, 0, 0] (class 0), target 1, k 4; the tree puts CFS in classes [1, 1, 0]
    tasks = [Task(i, 1, 1, 0, i, seed=i) for i in range(3)]
    ok = Explanation(CFS, 1, K, 0.5, best_fitness=np.array([3.0, 2.0]), generations=2)
    late = Explanation(CFS, 1, K, 0.0125, reason="time limit", timed_out=True, generations=1)
    crashed = Explanation.empty(3, 1, K, 0.25, reason="failed")
    results = [NewTaskResult(0, ok), NewTaskResult(1, late),
               NewTaskResult(2, crashed, error="ValueError: boom\nTraceback ...")]
    return tasks, results


def test_timed_out_and_failed_tasks_are_failures(ctx):
    tasks, results = _three_tasks()
    frame = metrics_frame(ctx, tasks, results, K, {0: RULES})
    assert list(frame.columns) == list(COLUMNS)
    ok, late, crashed = (frame.iloc[i] for i in range(3))
    assert ok["perc_valid_cf_all"] == 0.5 and ok["nbr_cf"] == 3 and ok["final_fitness"] == 2.0
    # over the limit: a failure whatever it returned (before: validity 1.0 · 0 failed)
    for r in (late, crashed):
        assert all(r[n] == 0 for n in COUNT_LIKE)
        assert math.isnan(r["distance_mixed"]) and math.isnan(r["lof"])
    assert late["runtime"] == 0.0125 and bool(late["timed_out"]) and late["reason"] == "time limit"
    assert crashed["runtime"] == 0.25 and crashed["error"] == "ValueError: boom"
    s = summarize_rows(frame)
    assert (s["n_tasks"], s["n_failed"], s["n_timed_out"], s["n_errors"]) == (3, 2, 1, 1)
    assert close(s["validity"], 0.5 / 3)
    assert s["metrics"]["perc_valid_cf_all"]["n"] == 3
    assert s["metrics"]["distance_mixed"]["n"] == 1


def test_summarize_rows_from_csv_text(ctx, tmp_path):
    tasks, results = _three_tasks()
    frame = metrics_frame(ctx, tasks, results, K)
    frame.loc[1, "error"] = "also raised"  # timed out *and* raised: one failure
    path = tmp_path / "metrics.csv"
    frame.to_csv(path, index=False)
    back = pd.read_csv(path)
    s, t = summarize_rows(back), summarize_rows(frame.to_dict("records"))
    assert (s["n_failed"], s["n_timed_out"], s["n_errors"]) == (2, 1, 2)
    assert s["validity"] == t["validity"] and s["n_failed"] == t["n_failed"]
    assert summarize_rows([])["n_tasks"] == 0 and summarize_rows([])["validity"] == 0.0


def test_task_row_is_the_frame_row(ctx):
    tasks, results = _three_tasks()
    frame = metrics_frame(ctx, tasks, results, K, {0: RULES})
    for t, r in zip(tasks, results, strict=True):
        row = task_row(ctx, t, r, K, RULES)
        assert list(row) == list(COLUMNS)
        for name, v in row.items():
            w = frame.iloc[t.index][name]
            assert v == w or (math.isnan(v) and math.isnan(w)), name


def test_real_search_over_its_time_limit_counts_as_failed(cfg_factory):
    # the genetic search with a limit it cannot meet: every task is timed out; the run must
    # not report them as valid (issue 17 #2: "validity 1.000 · 4 tasks (0 failed)")
    from cfgen.methods import method_factory
    from cfgen.plan import Combinations
    from cfgen.problem import Problem
    from cfgen.runner import WorkerContext, run_tasks

    cfg = cfg_factory("method.time_limit=0.0001", "method.bounds.mode=none")
    problem = Problem.from_config(cfg.dataset, cfg.model)
    comb = Combinations.for_schema(problem.schema, ["none"])
    queries = [0, 3, 5, 10]
    targets = (problem.predict(problem.X_test[queries]) + 1) % problem.n_classes
    tasks = [Task(i, q, int(t), 0, 0, seed=i)
             for i, (q, t) in enumerate(zip(queries, targets, strict=True))]
    wctx = WorkerContext(problem, method_factory(cfg.method), None, comb, 3)
    results = run_tasks(tasks, wctx, False, None, progress=False)
    assert all(r.timed_out for r in results)
    assert any(len(r.counterfactuals) for r in results)  # it did return something
    mctx = MetricContext(problem.schema, problem.X_train, problem.y_train, problem.X_test,
                         problem.predictor.predict_proba)
    frame = metrics_frame(mctx, tasks, results, 3)
    s = summarize_rows(frame)
    assert s["n_failed"] == s["n_timed_out"] == 4 and s["validity"] == 0.0
    assert (frame["nbr_valid_cf"] == 0).all() and (frame["runtime"] > 0).all()


# ------------------------------------------------------------------------------ plots


def _iris_case(n_reps: int = 3):
    """A RandomForest on iris and fabricated-but-realistic search results for one query."""
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    data = load_iris()
    Xi, yi = data.data, data.target
    model = RandomForestClassifier(n_estimators=7, max_depth=4, random_state=42).fit(Xi, yi)
    q = Xi[64]  # a typical versicolor (class 1); ask for virginica (class 2)
    target = 2
    pool = Xi[(yi == target) & (model.predict(Xi) == target)]
    exps = []
    for r in range(n_reps):
        rng = np.random.default_rng(r)
        cfs = []
        for p in pool[rng.permutation(len(pool))]:
            for t in np.linspace(0.1, 1.0, 19):
                c = np.round(q + t * (p - q), 1)
                if model.predict(c[None])[0] == target:
                    cfs.append(c)
                    break
            if len(cfs) == 4:
                break
        cfs = np.array(cfs)
        g = 40
        gen = np.arange(g)
        best = 0.6 + 2.4 * np.exp(-gen / (6 + 2 * r)) + rng.normal(0, 0.02, g)
        best = np.minimum.accumulate(best)
        frac_invalid = 0.9 * np.exp(-gen / 5) + 0.03
        mean = best + 1.2 + frac_invalid * 1e6 * (1 + rng.normal(0, 0.05, g))
        path = q + (cfs[0] - q) * (1 - np.exp(-gen / 6))[:, None] + rng.normal(0, 0.04, (g, 4))
        exps.append(
            Explanation(
                counterfactuals=cfs,
                target=target,
                k=4,
                seconds=0.8 + 0.1 * r,
                best_fitness=best,
                mean_fitness=mean,
                best_per_generation=path,
                generations=g,
            )
        )
    schema = FeatureSchema(
        tuple(
            Feature(
                n.replace(" (cm)", ""), Kind.CONTINUOUS, Xi[:, j].min(), Xi[:, j].max(), decimals=1
            )
            for j, n in enumerate(data.feature_names)
        )
    )
    return Xi, yi, q, exps, schema, list(data.target_names), model


def test_plots(tmp_path):
    pytest.importorskip("matplotlib")  # the optional "plots" extra
    from cfgen.plots.search import plot_change_heatmap, plot_fitness, plot_pca_path

    Xi, yi, q, exps, schema, names, _ = _iris_case()
    paths = [
        plot_fitness(exps, tmp_path / "fitness.png"),
        plot_pca_path(Xi, yi, q, exps[0], tmp_path / "pca.png", class_names=names),
        plot_change_heatmap(q, exps[0], tmp_path / "sub" / "changes.png", schema=schema),
    ]
    for p in paths:
        assert isinstance(p, Path) and p.exists() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert p.stat().st_size > 10_000


def test_metrics_on_iris_case():
    # the fabricated counterfactuals really are valid, and compute copes with a real forest
    Xi, yi, q, exps, schema, _, model = _iris_case(1)
    ctx = MetricContext(schema, Xi, yi, Xi, model.predict_proba)
    r = ctx.compute_explanation(q, exps[0])
    assert r["perc_valid_cf"] == 1.0 and r["delta"] > 0 and r["lof"] > 0.5


def test_plots_of_an_empty_search(tmp_path):
    pytest.importorskip("matplotlib")
    from cfgen.plots.search import plot_change_heatmap, plot_fitness, plot_pca_path

    Xi, yi, q, _, schema, _, _ = _iris_case(1)
    e = Explanation(np.empty((0, 4)), target=2, k=4, seconds=1.0, reason="none found")
    assert plot_fitness([e], tmp_path / "f.png").exists()
    assert plot_pca_path(Xi, yi, q, e, tmp_path / "p.png").exists()
    assert plot_change_heatmap(q, e, tmp_path / "h.png", schema=schema).exists()
