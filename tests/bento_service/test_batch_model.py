"""The model side of a large POST /predict/batch: each distinct row scored once (model._distinct_rows) and the rows
split across cores (model._Chunked) give the model's own predict_proba, bit for bit, on a trained XGBoost
candidate, on the platform's champion and on rows built to defeat the row hash."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from bento_service import model as served
from bento_service.model import DISTINCT_ROWS, PARALLEL_ROWS, _distinct_rows, _temperature_scaled
from bento_service.schemas import MatchRequest
from bento_service.snapshot import MODEL_FEATURES


def _rows_with_repeats(rng, n: int, distinct: int) -> np.ndarray:
    base = rng.normal(size=(distinct, len(MODEL_FEATURES)))
    base[rng.random(base.shape) < 0.2] = np.nan
    return base[rng.integers(distinct, size=n)]


def _assert_rebuilds(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """_distinct_rows' answer rebuilds x bit for bit (NaN payloads and signed zeros included)."""
    found = _distinct_rows(x)
    if found is not None:
        rows, position = found
        assert np.array_equal(x[rows][position].view(np.uint64), x.view(np.uint64))
        assert len(rows) < len(x)
    return found


def test_distinct_rows_groups_equal_rows_only():
    rng = np.random.default_rng(3)
    x = _rows_with_repeats(rng, 5_000, 1_200)
    rows, _ = _assert_rebuilds(x)
    assert len(rows) == len(np.unique(x.view(np.dtype((np.void, x.shape[1] * 8))).ravel()))
    assert _distinct_rows(np.arange(DISTINCT_ROWS * 3.0).reshape(-1, 3)) is None   # all distinct: None


def test_rows_that_only_share_a_hash_are_scored_on_their_own(monkeypatch):
    rng = np.random.default_rng(4)
    x = _rows_with_repeats(rng, 3_000, 500)
    x[1] = x[0]
    x[2] = x[0]
    x[2, 5] = -0.0 if x[0, 5] == 0.0 else x[0, 5] * (1 + 2**-52)   # the last bit differs
    x[3] = x[0]
    x[3, 7] = np.float64(np.nan) if not np.isnan(x[0, 7]) else np.copysign(np.nan, -1.0)   # NaN of another sign
    monkeypatch.setattr(served, "_hash_weights", lambda n: np.zeros(n))   # every row collides with every other
    _rows, position = _assert_rebuilds(x)   # the same bits as the representative: merged; any other: on its own
    assert position[0] == position[1] != position[2] != position[3] != position[0]


@pytest.fixture(scope="module")
def xgboost_candidate():
    from time2bet.ml.training import fit_model

    rng = np.random.default_rng(7)
    n = 1500
    frame = pd.DataFrame(rng.normal(size=(n, len(MODEL_FEATURES))), columns=list(MODEL_FEATURES))
    frame["season"] = np.repeat(["2019-20", "2020-21", "2021-22"], n // 3)
    frame["result"] = np.where(frame[MODEL_FEATURES[0]] > 0.3, "H", np.where(frame[MODEL_FEATURES[1]] > 0, "D", "A"))
    return fit_model(frame, list(MODEL_FEATURES), "xgboost")


@pytest.mark.parametrize("n, distinct", [(DISTINCT_ROWS, 300), (PARALLEL_ROWS * 5, 4_000), (12_000, 12_000)])
def test_the_xgboost_shortcut_gives_predict_proba_bits_with_repeated_rows(xgboost_candidate, n, distinct):
    shortcut = _temperature_scaled(xgboost_candidate)
    assert shortcut is not None
    x = _rows_with_repeats(np.random.default_rng(n), n, distinct)
    np.testing.assert_array_equal(shortcut(x), xgboost_candidate.predict_proba(x))


def test_the_champion_gives_its_own_bits_on_a_batch_with_repeated_matches(snapshot, served_model):
    """A batch as clients send it: every pair of a few teams per division at many dates, most past the rest-day
    cap (so the same model row again): predict_matrix equals the registered model's own predict_proba."""
    kickoff = max(snapshot.last_played.values()) + dt.timedelta(days=1)
    matches = []
    for division, country in sorted(snapshot.divisions.items()):
        names = sorted(snapshot.teams.loc[snapshot.teams["country"] == country, "team"])[:6]
        matches += [MatchRequest(home_team=h, away_team=a, division=division,
                                 kickoff_date=kickoff + dt.timedelta(days=d))
                    for h in names for a in names if h != a for d in range(0, 90, 3)]
    assert len(matches) >= DISTINCT_ROWS
    x = snapshot.feature_matrix(snapshot.resolve_many(matches))
    found = _assert_rebuilds(x)
    assert found is not None and len(found[0]) < len(x)   # there are repeated rows to score once
    got = served_model.predict_matrix(x)
    reference = np.asarray(served_model.pyfunc.get_raw_model().predict_proba(x), dtype=float)
    if type(served_model.pyfunc.get_raw_model().calibrated_classifiers_[0].estimator.estimator).__name__ \
            == "XGBClassifier":
        np.testing.assert_array_equal(got, reference)
    else:   # the logistic-regression baseline keeps every row; its matrix product may round the last bit
        np.testing.assert_allclose(got, reference, rtol=0, atol=1e-15)
