"""Drift reports (Evidently 0.7): a shifted feature is found and an unchanged one is not, predictions and outcomes
are tested against the reference window, target drift waits for results, and the HTML report is written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from time2bet.monitoring.drift import drift_report, reference_sample

FEATURES = ["elo_diff", "home_rest_days", "home_points_last5", "h2h_meetings_last5"]


def _frame(n: int, seed: int, *, shift: float = 0.0, home_share: float = 0.45, played: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet([4.5, 2.7, 3.0], n)
    result = rng.choice(["H", "D", "A"], n, p=[home_share, 0.27, 0.73 - home_share])
    frame = pd.DataFrame({
        "elo_diff": rng.normal(shift, 100, n), "home_rest_days": rng.integers(3, 8, n).astype(float),
        "home_points_last5": rng.integers(0, 16, n).astype(float), "h2h_meetings_last5": np.nan,
        "p_home": p[:, 0], "p_draw": p[:, 1], "p_away": p[:, 2], "result": result,
        "home_goals": rng.poisson(1.5, n), "away_goals": rng.poisson(1.1, n)})
    if not played:
        frame[["result", "home_goals", "away_goals"]] = None
    return frame


def test_a_shifted_feature_drifts_and_the_report_is_written(tmp_path):
    reference = _frame(1000, 1)
    current = _frame(120, 2, shift=250.0, home_share=0.7)
    current.loc[:9, ["result", "home_goals", "away_goals"]] = None   # ten not played yet
    result = drift_report(reference, current, features=FEATURES, html_path=tmp_path / "drift" / "w.html")
    by = result.columns.set_index("column_name")
    assert by.loc["elo_diff", "drifted"] and by.loc["elo_diff", "statistic"] < 1e-6
    assert not by.loc["home_rest_days", "drifted"] and by.loc["home_rest_days", "method"] == "ks"
    assert "h2h_meetings_last5" in result.skipped   # no values on either side: not testable
    assert (result.features_tested, result.features_drifted) == (3, 1)
    assert result.share_drifted == pytest.approx(1 / 3) and not result.dataset_drift
    assert set(result.p_values("prediction")) == {"p_home", "p_draw", "p_away"}
    assert result.prediction_drift is False
    assert result.target_drift is True and result.p_values("target")["result"] < 1e-6
    assert by.loc["result", "method"] == "chisquare" and "goals" in result.p_values("target")
    assert (result.n_reference, result.n_current, result.n_current_played) == (1000, 120, 110)
    assert result.html.exists() and result.html.stat().st_size > 10_000
    text = result.html.read_text()
    assert text.lstrip().startswith("<!DOCTYPE html>") and "elo_diff" in text and "home_rest_days" in text
    # every feature has its row; only the drifted one unfolds to its plots (values over the rows, distribution)
    assert "elo_diff (mean +/- std)" in text and "home_rest_days (mean +/- std)" not in text


def test_target_drift_waits_for_results():
    result = drift_report(_frame(500, 3), _frame(40, 4, played=False), features=FEATURES[:2], html_path=None)
    assert result.target_drift is None and result.n_current_played == 0
    assert set(result.columns["kind"]) == {"feature", "prediction"} and result.html is None


def test_a_large_reference_is_sampled_the_same_way_every_time():
    reference, current = _frame(12_000, 3), _frame(60, 4, shift=30.0)
    first = drift_report(reference, current, features=FEATURES, html_path=None, max_reference_rows=2_000)
    again = drift_report(reference, current, features=FEATURES, html_path=None, max_reference_rows=2_000)
    whole = drift_report(reference, current, features=FEATURES, html_path=None, max_reference_rows=None)
    assert (first.n_reference, whole.n_reference) == (2_000, 12_000)
    pd.testing.assert_frame_equal(first.columns, again.columns)   # a fixed sample: the same p-values
    # the sample's p-values stay close to the whole window's (the current week's side sets the test's power)
    p, p_whole = first.p_values("feature"), whole.p_values("feature")
    assert all(abs(p[c] - p_whole[c]) < 0.1 for c in p)


def test_the_reference_sample_is_the_rows_a_report_compares_with():
    """The drift asset predicts the champion's probabilities on reference_sample's rows only: a report on that sample
    must be the report on the whole window, and a small window is kept whole."""
    reference, current = _frame(12_000, 5), _frame(60, 6, shift=30.0)
    sample = reference_sample(reference, 2_000)
    assert len(sample) == 2_000 and sample.index.is_monotonic_increasing
    on_sample = drift_report(sample, current, features=FEATURES, html_path=None, max_reference_rows=2_000)
    on_whole = drift_report(reference, current, features=FEATURES, html_path=None, max_reference_rows=2_000)
    pd.testing.assert_frame_equal(on_sample.columns, on_whole.columns)
    assert len(reference_sample(reference.head(500), 2_000)) == 500


def test_feature_p_values_are_evidentlys_value_drift_of_each_column():
    """The report reads the features' p-values from the table the preset renders instead of one ValueDrift per
    feature (whose plots the preset discards): they must be what ValueDrift says of each column."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    reference, current = _frame(2_000, 7), _frame(80, 8, shift=60.0)
    tested = FEATURES[:3]
    result = drift_report(reference, current, features=tested, html_path=None)
    definition = DataDefinition(numerical_columns=tested)
    snapshot = Report([ValueDrift(column=c, method="ks", threshold=0.05) for c in tested]).run(
        current_data=Dataset.from_pandas(current[tested], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[tested], data_definition=definition))
    values = {m["config"]["column"]: float(m["value"]) for m in json.loads(snapshot.json())["metrics"]}
    assert result.p_values("feature") == pytest.approx(values, abs=1e-12)
    assert result.p_values("feature")["elo_diff"] < 0.05 < result.p_values("feature")["home_rest_days"]
