"""cfgen.report.optimum: the "closest ÷ optimum" column, on hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cfgen.report.optimum import closest_over_optimum


def frame():
    rows = [  # dataset, method, query, distance, timed_out
        ("d", "exact", 0, 2.0, False), ("d", "exact", 1, 4.0, False),
        ("d", "exact", 2, 1.0, True),  # not proven: query 2 is left out
        ("d", "ga", 0, 2.0, False), ("d", "ga", 1, 5.0, False), ("d", "ga", 2, 1.0, False),
        ("d", "nice", 0, np.nan, False), ("d", "nice", 1, 8.0, False),
    ]
    df = pd.DataFrame(rows, columns=["dataset", "method", "query", "distance_search_min",
                                     "timed_out"])
    return df.assign(target=1, combination=0)


def test_ratios_over_the_proven_optimum():
    out = closest_over_optimum(frame()).set_index("method")
    assert list(out.index) == ["exact", "ga", "nice"]
    assert out.loc["exact", "closest_over_optimum_median"] == 1.0
    assert out.loc["ga", "queries"] == 2  # query 2 has no proven optimum
    assert out.loc["ga", "closest_over_optimum_median"] == pytest.approx((1.0 + 1.25) / 2)
    assert out.loc["ga", "closest_over_optimum_p90"] == pytest.approx(1.0 + 0.9 * 0.25)
    assert out.loc["ga", "at_optimum"] == 0.5
    assert out.loc["nice", "queries"] == 1 and out.loc["nice", "closest_over_optimum_p90"] == 2.0


def test_no_exact_run_gives_an_empty_table():
    df = frame()
    assert closest_over_optimum(df[df.method != "exact"]).empty
