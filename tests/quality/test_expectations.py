"""time2bet.quality.expectations.validate: table-level expectations see the whole frame, column expectations the
columns they read (GX copies the batch's whole frame once per column expectation), and the report joins both."""

from __future__ import annotations

import pandas as pd

from time2bet.quality.expectations import validate


def _suite(gx) -> list:
    e = gx.expectations
    return [e.ExpectTableColumnsToMatchSet(column_set=["key", "goals", "odds"], exact_match=True),
            e.ExpectColumnValuesToBeBetween(column="goals", min_value=0, max_value=15),
            e.ExpectColumnValuesToNotBeNull(column="odds")]


def test_a_table_level_and_a_column_failure_are_both_reported_with_the_offending_rows(tmp_path):
    frame = pd.DataFrame({"key": ["a", "b", "c", "d"], "goals": [1, 40, 2, 3], "odds": [1.5, 2.0, 3.0, 4.0],
                          "unexpected": list("wxyz")})
    report = validate(frame, "probe", _suite, key_columns=["key"], docs_dir=tmp_path / "docs")
    assert not report.success and round(report.success_percent, 2) == round(100 / 3, 2)
    failed = {f["expectation"]: f for f in report.failures}
    assert set(failed) == {"expect_table_columns_to_match_set", "expect_column_values_to_be_between"}
    assert failed["expect_column_values_to_be_between"]["examples"] == [{"key": "b", "goals": 40}]
    assert (tmp_path / "docs" / "index.html").exists()

    report = validate(frame.drop(columns="unexpected").assign(goals=[1, 2, 2, 3]), "probe", _suite,
                      key_columns=["key"])
    assert report.success and report.success_percent == 100.0 and not report.failures
