"""cfgen.codec: one schema inference and one codec for every entry point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cfgen.codec import Codec, id_like_columns, infer_levels, stray_text_cells
from cfgen.errors import ConfigError
from cfgen.schema import Kind, Rule, actionability_violations


@pytest.fixture
def mixed() -> pd.DataFrame:
    """Every kind of column a user hands over."""
    return pd.DataFrame(
        {
            "size": [2, 10, 2, 10, 10, 2],  # numeric, declared categorical
            "colour": ["red", "blue", "green", "red", "blue", "blue"],
            "member": [True, False, True, True, False, False],
            "age": [30.0, 41.0, 25.0, 60.0, 33.0, 47.0],  # whole numbers stored as floats
            "income": [1.5, 2.25, 3.0, 4.125, 2.0, 1.0],
            "kids": [0, 1, 2, 0, 3, 1],
        }
    )


def test_one_rule_for_kinds_and_category_order(mixed):
    codec = Codec.fit(mixed, categorical=["size"])
    f = {ft.name: ft for ft in codec.schema.features}
    assert f["size"].kind is Kind.CATEGORICAL and f["size"].categories == ("2", "10")
    assert f["colour"].categories == ("blue", "green", "red")
    assert f["member"].kind is Kind.CATEGORICAL and f["member"].categories == ("False", "True")
    assert f["age"].kind is Kind.INTEGER and f["kids"].kind is Kind.INTEGER
    assert f["income"].kind is Kind.CONTINUOUS and f["income"].decimals == 3
    assert (f["age"].low, f["age"].high) == (25.0, 60.0)
    X = codec.encode(mixed)
    np.testing.assert_array_equal(X[:, 0], [0, 1, 0, 1, 1, 0])  # 2 -> 0, 10 -> 1
    np.testing.assert_array_equal(X[:, 1], [2, 0, 1, 2, 0, 0])
    np.testing.assert_array_equal(X[:, 2], [1, 0, 1, 1, 0, 0])


def test_decode_gives_the_users_values_and_dtypes(mixed):
    codec = Codec.fit(mixed, categorical=["size"])
    back = codec.decode(codec.encode(mixed))
    assert back["size"].tolist() == [2, 10, 2, 10, 10, 2] and back["size"].dtype == np.int64
    assert back["member"].dtype == bool and back["member"].tolist() == mixed["member"].tolist()
    assert back["colour"].tolist() == mixed["colour"].tolist()
    assert back["age"].dtype == np.int64 and back["kids"].dtype == np.int64
    fitted = codec.decode(codec.encode(mixed), as_fitted=True)
    assert fitted["age"].dtype == np.float64  # the dtype the user's model was fitted on
    pd.testing.assert_frame_equal(fitted.drop(columns=["colour"]), mixed.drop(columns=["colour"]))


def test_queries_reordered_arrays_and_series(mixed):
    codec = Codec.fit(mixed, categorical=["size"])
    ref = codec.encode(mixed)
    shuffled = mixed[list(reversed(mixed.columns))].assign(extra=1)
    np.testing.assert_array_equal(codec.encode(shuffled), ref)
    np.testing.assert_array_equal(codec.encode(mixed.to_numpy(dtype=object)), ref)
    np.testing.assert_array_equal(codec.encode(mixed.iloc[3]), ref[3:4])
    np.testing.assert_array_equal(codec.encode(dict(mixed.iloc[1])), ref[1:2])
    # a category written as text still finds its code ("10" is the level 10)
    np.testing.assert_array_equal(codec.encode(mixed.assign(size="10"))[:, 0], np.ones(6))


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (lambda f: f.drop(columns=["kids"]), "query rows lack the columns kids"),
        (
            lambda f: f.assign(colour="purple"),
            "column 'colour' has a category not seen in "
            "training: 'purple' (known: blue, green, red)",
        ),
        (lambda f: f.assign(income="lots"), "column 'income' has a non-numeric value 'lots'"),
        (lambda f: f.to_numpy()[:, :4], "query rows have shape (6, 4): expected rows of 6"),
        (lambda f: f.assign(age=np.nan), "query rows have missing values in age"),
    ],
)
def test_bad_queries_one_line(mixed, rows, expected):
    codec = Codec.fit(mixed, categorical=["size"])
    with pytest.raises(ConfigError) as info:
        codec.encode(rows(mixed))
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_level_order_rules():
    assert infer_levels(pd.Series([10, 2, 2.0, 33])).values == (2, 10, 33)
    assert infer_levels(pd.Series([1.5, 0.5])).values == (0.5, 1.5)
    assert infer_levels(pd.Series(["b", "a", None, "c"])).values == ("a", "b", "c")
    assert infer_levels(pd.Series([1, "a"], dtype=object)).values == ("1", "a")
    cat = pd.Series(pd.Categorical(["lo", "hi", "mid"], categories=["lo", "mid", "hi"]))
    codec = Codec.fit(pd.DataFrame({"level": cat, "v": [1.0, 2.0, 3.5]}))
    assert codec.schema.features[0].categories == ("lo", "mid", "hi")
    np.testing.assert_array_equal(
        codec.encode(pd.DataFrame({"level": ["hi"], "v": [1.0]})), [[2.0, 1.0]]
    )
    assert list(codec.decode([[1.0, 2.0]])["level"]) == ["mid"]


def test_identity_only_for_numeric_codes():
    codes = pd.DataFrame({"c": [0, 1, 2, 1], "x": [0.1, 0.2, 0.3, 0.4]})
    assert Codec.fit(codes, categorical=["c"]).identity
    assert not Codec.fit(codes.assign(c=[2, 10, 2, 10]), categorical=["c"]).identity
    assert not Codec.fit(codes.assign(c=list("abca"))).identity


def test_arrays_with_index_arguments():
    X = np.array([[0, 1.5], [1, 2.5], [1, 0.5]])
    codec = Codec.fit(X, categorical=[0], feature_names=["kind", "dose"])
    assert codec.names == ["kind", "dose"] and codec.schema.features[0].categories == ("0", "1")
    with pytest.raises(ConfigError, match="categorical: column index 5 is out of range 0..1"):
        Codec.fit(X, categorical=[5])


def test_rules_ranges_and_features_to_vary(mixed):
    codec = Codec.fit(
        mixed,
        categorical=["size"],
        actionability={"age": "non_decreasing"},
        ranges={"income": [1, 3]},
        features_to_vary=["age", "income"],
    )
    rules = {f.name: f.rule for f in codec.schema.features}
    assert rules["age"] is Rule.NON_DECREASING and rules["income"] is Rule.NONE
    assert all(rules[n] is Rule.NO_CHANGE for n in ("size", "colour", "member", "kids"))
    assert codec.schema.permitted == [None, None, None, None, (1.0, 3.0), None]
    with pytest.raises(ConfigError, match="ranges.colour is not allowed: 'colour' is categorical"):
        Codec.fit(mixed, ranges={"colour": [0, 1]})
    with pytest.raises(ConfigError, match=r"ranges.age=\[9, 1\] is not allowed: expected low"):
        Codec.fit(mixed, ranges={"age": [9, 1]})
    with pytest.raises(ConfigError, match=r"features_to_vary=\[\] is not allowed"):
        Codec.fit(mixed, features_to_vary=[])
    with pytest.raises(ConfigError, match="actionability.age='sideways' is not allowed"):
        Codec.fit(mixed, actionability={"age": "sideways"})


def test_permitted_range_counts_as_a_violation():
    x = np.array([30.0, 1.0, 80.0])
    cfs = np.array(
        [
            [40.0, 1.0, 80.0],  # inside the range: fine
            [75.0, 1.0, 80.0],  # moved age out of [18, 70]: one violation
            [40.0, 1.0, 60.0],  # third feature (no range) moved: fine
            [10.0, 1.0, 80.0],  # below the range: one violation
            [35.0, 1.0, 85.0],  # query already out of range on f2 and moved further: one
            [35.0, 1.0, 80.0],  # f2 left at its (out-of-range) value: no action, no violation
        ]
    )
    rules = [Rule.NONE, Rule.NONE, Rule.NONE]
    permitted = [(18.0, 70.0), None, (0.0, 70.0)]
    np.testing.assert_array_equal(
        actionability_violations(x, cfs, rules, permitted=permitted), [0, 1, 0, 1, 1, 0]
    )
    np.testing.assert_array_equal(actionability_violations(x, cfs, rules), np.zeros(6))


def test_stray_text_and_id_like_columns():
    frame = pd.DataFrame(
        {
            "ID": [7, 3, 9, 1],
            "row": [0, 1, 2, 3],
            "name": ["ann", "bob", "cy", "di"],
            "glucose": ["88", "abc", "120", "95"],
            "grade": ["a", "b", "a", "b"],
            "score": [0.5, 0.25, 0.125, 0.75],
            "year": [2001, 1999, 2010, 2005],
        }
    )
    stray = stray_text_cells(frame)
    assert list(stray) == ["glucose"] and stray["glucose"].to_dict() == {1: "abc"}
    assert stray_text_cells(frame, skip=["glucose"]) == {}
    ids = id_like_columns(frame)
    assert list(ids) == ["ID", "row", "name"]  # unique floats and years are data, not ids
    assert list(id_like_columns(frame, skip=["ID"])) == ["row", "name"]


def test_fit_refuses_columns_without_values(mixed):
    with pytest.raises(ConfigError, match=r"column 'age' has no values \(all 6 rows are missing"):
        Codec.fit(mixed.assign(age=np.nan))
    with pytest.raises(ConfigError, match="integer=.* is not allowed: 'colour' is categorical"):
        Codec.fit(mixed, integer=["colour"])
