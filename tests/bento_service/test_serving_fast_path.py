"""In-process: the service's fast path (Snapshot.resolve_many, feature_matrix, ServedModel.predict_matrix,
bento_service.scoring) gives exactly what the reference path (resolve, features, predict) gives, which
test_serving_snapshot.py compares with the batch path (train/serve skew)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from types import SimpleNamespace

import numpy as np
import orjson
import pandas as pd
import pytest
from pydantic import ValidationError

from bento_service import scoring
from bento_service.model import ModelSet
from bento_service.schemas import MAX_BATCH, BatchRequest, MatchColumns, MatchRequest, Prediction
from bento_service.snapshot import MODEL_FEATURES, RequestError
from time2bet.serving_contract import model_input


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
    # bit-identical for XGBoost; a logistic-regression champion (the baseline fallback) can differ in the last
    # bit: its matrix product sums in an order that depends on the memory layout (DataFrame vs C-ordered array)
    np.testing.assert_allclose(served_model.predict_matrix(x), reference, rtol=0, atol=1e-15)
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


@pytest.mark.parametrize("share", [0.0, 0.5])
def test_predictions_json_is_the_prediction_schema(snapshot, served_model, batch_features, share):
    """The bytes built from pieces are exactly pydantic's JSON of the Prediction models, row for row, in order."""
    matches = _matches(batch_features) + _matches(batch_features, 3)
    challenger = dataclasses.replace(served_model, alias="challenger", version="99")
    models = ModelSet(champion=served_model, challenger=challenger if share else None)
    scored = scoring.score(models, snapshot, matches, share)
    expected = []
    for m, variant, kickoff, p in zip(matches, scored.variants, scored.fixtures.kickoffs, scored.probs, strict=True):
        model = models.get(variant)
        expected.append(Prediction(
            variant=variant, home_team=m.home_team, away_team=m.away_team, division=m.division,
            kickoff_date=kickoff, probabilities={"home": p[0], "draw": p[1], "away": p[2]},
            model={"name": model.name, "version": model.version, "alias": model.alias,
                   "data_version": model.data_version, "family": model.family},
            features_as_of=snapshot.features_as_of, snapshot_loaded_at=snapshot.loaded_at).model_dump_json(exclude_unset=True))
    assert scored.predictions_json() == ("[" + ",".join(expected) + "]").encode()
    counts = scored.outcome_counts()
    assert sum(counts.values()) == len(matches)
    assert {v for _, v in counts} == ({"champion", "challenger"} if share else {"champion"})
    for (outcome, variant), n in counts.items():
        column = ("home", "draw", "away").index(outcome)
        assert n == sum(1 for v, p in zip(scored.variants, scored.probs) if v == variant and p.argmax() == column)


def _batch_body(batch_features, **changes) -> dict:
    matches = [m.model_dump(mode="json") for m in _matches(batch_features)]
    matches[1] = {k: v for k, v in {**matches[1], **changes}.items() if v is not _DROP}
    return {"matches": matches}


_DROP = object()


@pytest.mark.parametrize("body", [
    "valid", "no dates", {"kickoff_date": None}, {"home_team": " Padded "}, {"home_team": ""},
    {"home_team": "x" * 65}, {"division": "D" * 9}, {"home_team": 7}, {"home_team": ["a"]}, {"away_team": _DROP},
    {"extra": 1}, {"kickoff_date": "2025-02-30"}, {"kickoff_date": 0}, {"kickoff_date": "2025-W10-6"},
    {"kickoff_date": "2025-08-01T00:00:00"}, {"kickoff_date": {"y": 2025}}, "not a list", "empty", "top extra",
    "too many", "item not an object", "not json", "markets", "markets not a boolean", "markets in a match",
])
def test_batch_columns_accept_what_batch_request_accepts_with_the_same_values(batch_features, body):
    """MatchColumns.from_batch_json (the batch route's parser) never accepts what BatchRequest refuses, gives the
    same values when both accept, and accepts every plain valid batch (it declines only names to strip)."""
    if isinstance(body, dict):
        raw = orjson.dumps(_batch_body(batch_features, **body))
    elif body == "valid":
        raw = orjson.dumps(_batch_body(batch_features))
    elif body == "no dates":
        raw = orjson.dumps({"matches": [{k: v for k, v in m.items() if k != "kickoff_date"}
                                        for m in _batch_body(batch_features)["matches"]]})
    else:
        raw = {"not a list": b'{"matches": {"a": 1}}', "empty": b'{"matches": []}',
               "top extra": orjson.dumps({**_batch_body(batch_features), "x": 1}),
               "too many": orjson.dumps({"matches": _batch_body(batch_features)["matches"][:1] * (MAX_BATCH + 1)}),
               "item not an object": b'{"matches": ["E0"]}', "not json": b'{"matches": [\xff',
               "markets": orjson.dumps({**_batch_body(batch_features), "markets": True}),
               "markets not a boolean": orjson.dumps({**_batch_body(batch_features), "markets": "true"}),
               "markets in a match": orjson.dumps(_batch_body(batch_features, markets=True))}[body]
    try:
        batch = BatchRequest.model_validate_json(raw)
        expected = MatchColumns.of(batch.matches, batch.markets)
    except ValidationError:
        expected = None
    got = MatchColumns.from_batch_json(raw)
    if body == "markets":
        assert got is not None and got.markets and got == expected
    elif body in ("valid", "no dates") or body == {"kickoff_date": None}:
        assert got is not None and got == expected
    elif body == {"home_team": " Padded "}:
        assert got is None and expected is not None   # declined: the pydantic fallback strips it
    else:
        assert got is None and expected is None


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


@pytest.mark.parametrize("candidate", ["logreg", "xgboost"])
def test_the_temperature_shortcut_serves_both_candidates_bit_for_bit(candidate):
    """model._temperature_scaled is taken for every candidate training fits, and gives the wrapper's bits, for one
    row and for a batch large enough to be split across cores."""
    from bento_service.model import PARALLEL_ROWS, _linear_scores, _temperature_scaled
    from time2bet.ml.training import fit_model

    rng = np.random.default_rng(7)
    n = 1500
    frame = pd.DataFrame(rng.normal(size=(n, len(MODEL_FEATURES))), columns=list(MODEL_FEATURES))
    frame["season"] = np.repeat(["2019-20", "2020-21", "2021-22"], n // 3)
    frame["result"] = np.where(frame[MODEL_FEATURES[0]] > 0.3, "H", np.where(frame[MODEL_FEATURES[1]] > 0, "D", "A"))
    model = fit_model(frame, list(MODEL_FEATURES), candidate)
    shortcut = _temperature_scaled(model)
    assert shortcut is not None
    if candidate == "logreg":   # the pipeline's own steps in numpy are taken too
        assert _linear_scores(model.calibrated_classifiers_[0].estimator.estimator) is not None
    x = rng.normal(size=(PARALLEL_ROWS + 5, len(MODEL_FEATURES)))
    x[rng.random(x.shape) < 0.05] = np.nan
    np.testing.assert_array_equal(shortcut(x), model.predict_proba(x))
    np.testing.assert_array_equal(shortcut(x[:1]), model.predict_proba(x[:1]))


def _every_pair_of_a_division(snapshot) -> list[MatchRequest]:
    """Every ordered pair of the teams of each division's country that played the division's latest season (one
    kickoff date after everybody's latest match): what a real client asks about, far beyond the fixtures."""
    kickoff = max(snapshot.last_played.values()) + dt.timedelta(days=3)
    matches = []
    for division, country in sorted(snapshot.divisions.items()):
        names = sorted(snapshot.teams.loc[snapshot.teams["country"] == country, "team"])[:12]
        matches += [MatchRequest(home_team=h, away_team=a, division=division, kickoff_date=kickoff)
                    for h in names for a in names if h != a]
    return matches


def test_any_pair_is_answered_from_the_team_table_equal_to_features(snapshot):
    """No per-pair work on the request path: once the snapshot is loaded, rows of pairs never asked about come from
    the precomputed team table (features() is not called) and equal features()'s, for every pair."""
    assert snapshot.team_table() is not None
    matches = _every_pair_of_a_division(snapshot)
    assert len(matches) > 100
    fresh = dataclasses.replace(snapshot, _rows={})
    fresh.team_table()

    def no_features(_):
        raise AssertionError("features() called on the request path")

    reference = _reference(snapshot, matches)
    fresh.features = no_features
    np.testing.assert_array_equal(fresh.feature_matrix(fresh.resolve_many(matches)), reference)


def test_a_table_that_disagrees_with_features_is_not_used(snapshot, monkeypatch, caplog):
    fresh = dataclasses.replace(snapshot, _rows={})
    original = fresh.features

    def shifted(fixtures):   # what a drift between the table and the reference path would look like
        out = original(fixtures)
        out["h2h_meetings_last5"] = out["h2h_meetings_last5"] + 1
        return out

    monkeypatch.setattr(fresh, "features", shifted)
    assert fresh.team_table() is None and "differs from features()" in caplog.text
    matches = _every_pair_of_a_division(snapshot)[:20]
    np.testing.assert_array_equal(fresh.feature_matrix(fresh.resolve_many(matches)), _reference(fresh, matches))
