"""In-process: the service's fast path (Snapshot.resolve_many, feature_matrix, ServedModel.predict_matrix,
bento_service.scoring) gives exactly what the reference path (resolve, features, predict) gives, which
test_serving_snapshot.py compares with the batch path (train/serve skew)."""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace

import numpy as np
import orjson
import pandas as pd
import pytest

from bento_service import scoring
from bento_service.model import ModelSet
from bento_service.schemas import MatchRequest, Prediction
from bento_service.snapshot import MODEL_FEATURES, RequestError
from time2bet.ml.training import model_input


def _matches(frame: pd.DataFrame, days: int = 0) -> list[MatchRequest]:
    return [MatchRequest(home_team=r.home_team, away_team=r.away_team, division=r.division,
                         kickoff_date=pd.Timestamp(r.match_date).date() + dt.timedelta(days=days))
            for r in frame.itertuples()]


def _reference(snapshot, matches) -> np.ndarray:
    rows = [snapshot.resolve(m.home_team, m.away_team, m.division, m.kickoff_date) for m in matches]
    return model_input(snapshot.features(pd.DataFrame(rows)), MODEL_FEATURES).to_numpy()


@pytest.mark.parametrize("days", [0, 1, 37, 400])
def test_feature_matrix_equals_features(snapshot, batch_features, days):
    matches = _matches(batch_features, days)
    fixtures = snapshot.resolve_many(matches)
    assert fixtures.match_ids() == [snapshot.resolve(m.home_team, m.away_team, m.division, m.kickoff_date)["match_id"]
                                    for m in matches]
    np.testing.assert_array_equal(snapshot.feature_matrix(fixtures), _reference(snapshot, matches))


def test_default_kickoff_and_repeated_pairs(snapshot, batch_features):
    first = _matches(batch_features.head(1))[0]
    matches = [first.model_copy(update={"kickoff_date": None}), first, first.model_copy(update={"kickoff_date": None})]
    fixtures = snapshot.resolve_many(matches)
    default = snapshot.resolve(first.home_team, first.away_team, first.division, None)["match_date"]
    assert fixtures.kickoffs == [default, first.kickoff_date, default]
    np.testing.assert_array_equal(snapshot.feature_matrix(fixtures), _reference(snapshot, matches))


def test_predict_matrix_equals_predict(snapshot, served_model, batch_features):
    matches = _matches(batch_features)
    x = snapshot.feature_matrix(snapshot.resolve_many(matches))
    reference = served_model.predict(pd.DataFrame(x, columns=list(MODEL_FEATURES)))
    np.testing.assert_array_equal(served_model.predict_matrix(x), reference)
    one_by_one = np.vstack([served_model.predict_matrix(x[i:i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(one_by_one, reference, rtol=0, atol=1e-12)


@pytest.mark.parametrize("change, reason", [
    ({"home_team": "Nobody FC"}, "unknown_team"), ({"division": "XX9"}, "unknown_division"),
    ("same", "same_team"), ("old", "kickoff_not_after_latest_match"),
])
def test_refused_requests_raise_what_resolve_raises_with_the_index(snapshot, batch_features, change, reason):
    matches = _matches(batch_features)
    bad = matches[1]
    if change == "same":
        bad = bad.model_copy(update={"away_team": bad.home_team})
    elif change == "old":
        home_id = snapshot.team_id(bad.division, bad.home_team)
        bad = bad.model_copy(update={"kickoff_date": snapshot.last_played[home_id]})
    else:
        bad = bad.model_copy(update=change)
    with pytest.raises(RequestError) as expected:
        snapshot.resolve(bad.home_team, bad.away_team, bad.division, bad.kickoff_date)
    with pytest.raises(RequestError) as got:
        snapshot.resolve_many([matches[0], bad, *matches[2:], bad])
    assert got.value.reason == expected.value.reason == reason
    assert got.value.detail == {**expected.value.detail, "index": 1}
    with pytest.raises(RequestError) as single:
        snapshot.resolve_many([bad])
    assert single.value.detail == expected.value.detail   # no index for a single request


def test_records_are_the_prediction_schema(snapshot, served_model, batch_features):
    matches = _matches(batch_features)
    scored = scoring.score(ModelSet(champion=served_model), snapshot, matches, 0.0)
    for record in scored.records():
        assert orjson.dumps(record) == Prediction(**record).model_dump_json().encode()
    counts = scored.outcome_counts()
    assert sum(counts.values()) == len(matches) and {v for _, v in counts} == {"champion"}


def test_micro_batcher_gives_each_request_its_own_rows(snapshot, served_model, batch_features):
    matches = _matches(batch_features)
    models = ModelSet(champion=served_model)
    alone = scoring.score(models, snapshot, matches, 0.0).probs

    async def concurrently():
        batcher = scoring.MicroBatcher(max_rows=4)
        results = await asyncio.gather(*[scoring.score_batched(batcher, models, snapshot, [m], 0.0)
                                         for m in matches])
        return np.vstack([r.probs for r in results])

    np.testing.assert_allclose(asyncio.run(concurrently()), alone, rtol=0, atol=1e-12)


def test_micro_batcher_keeps_each_requests_model(snapshot, served_model, batch_features):
    """Rows of different model objects (a swap while requests wait) are scored by their own model."""
    calls = []

    class Spy(SimpleNamespace):
        def predict_matrix(self, x):
            calls.append((self.tag, len(x)))
            return np.full((len(x), 3), float(self.tag))

    a, b = Spy(tag=1), Spy(tag=2)

    async def run():
        batcher = scoring.MicroBatcher()
        x = np.zeros((1, len(MODEL_FEATURES)))
        return await asyncio.gather(batcher.predict(a, x), batcher.predict(b, x), batcher.predict(a, x))

    results = asyncio.run(run())
    assert [float(r[0, 0]) for r in results] == [1.0, 2.0, 1.0]
    assert sorted(calls) == [(1, 2), (2, 1)]   # one call per model, the two rows of `a` together


def test_a_date_dependent_feature_turns_the_cache_off(snapshot, batch_features, monkeypatch, caplog):
    """Should a feature other than the rest days ever depend on the date, rows are built per date (no skew)."""
    import dataclasses

    fresh = dataclasses.replace(snapshot, _rows={}, _date_dependent=False)
    features = fresh.features
    column = next(c for c in MODEL_FEATURES if c not in ("home_rest_days", "away_rest_days"))

    def date_dependent(fixtures):
        out = features(fixtures)
        out[column] = out[column].astype(float) + pd.to_datetime(fixtures["match_date"]).dt.day.to_numpy()
        return out

    monkeypatch.setattr(fresh, "features", date_dependent)
    matches = _matches(batch_features, 3)
    got = fresh.feature_matrix(fresh.resolve_many(matches))
    assert fresh._date_dependent and "depends on the match date" in caplog.text
    np.testing.assert_array_equal(got, _reference(fresh, matches))
