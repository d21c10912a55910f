"""In-process: the serving snapshot builds the batch path's feature rows (train/serve skew), model helpers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from bento_service.snapshot import MODEL_FEATURES, RequestError


def _requests(frame: pd.DataFrame) -> list[tuple[str, str, str, dt.date]]:
    return [(r.home_team, r.away_team, r.division, pd.Timestamp(r.match_date).date()) for r in frame.itertuples()]


def test_feature_lists_are_the_platforms():
    from time2bet_assets.defs.ml.assets import MODEL_FEATURES as PLATFORM_FEATURES

    assert MODEL_FEATURES == PLATFORM_FEATURES


def test_feature_rows_equal_the_batch_path_for_every_upcoming_fixture(snapshot, batch_features):
    rows = [snapshot.resolve(*r) for r in _requests(batch_features)]
    served = snapshot.features(pd.DataFrame(rows))
    assert served["match_id"].tolist() == batch_features["match_id"].tolist()   # same ids as the mart
    for column in ("division", "home_team_id", "away_team_id"):
        assert served[column].tolist() == batch_features[column].tolist()
    ours = served[list(MODEL_FEATURES)].astype("float64").to_numpy()
    theirs = batch_features[list(MODEL_FEATURES)].astype("float64").to_numpy()
    mismatched = ~np.isclose(ours, theirs, rtol=0, atol=1e-9, equal_nan=True)
    assert not mismatched.any(), sorted({MODEL_FEATURES[j] for j in np.where(mismatched.any(axis=0))[0]})


def test_model_reproduces_the_stored_champion_predictions(snapshot, served_model, batch_features):
    rows = [snapshot.resolve(*r) for r in _requests(batch_features)]
    probs = served_model.predict(snapshot.features(pd.DataFrame(rows)))
    stored = snapshot.stored("champion").set_index("match_id").loc[batch_features["match_id"]]
    np.testing.assert_allclose(probs, stored[["p_home", "p_draw", "p_away"]].to_numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)


def test_served_model_describes_the_champion(served_model, settings):
    from time2bet.mlflow_store import registry_client

    mv = registry_client(settings.mlflow_tracking_uri).get_model_version_by_alias("match_outcome", "champion")
    assert (served_model.version, served_model.run_id) == (str(mv.version), mv.run_id)
    assert served_model.data_version == mv.tags["data_version"]
    assert served_model.metrics and all(isinstance(v, float) for v in served_model.metrics.values())
    assert served_model.input_features == list(MODEL_FEATURES)
    assert served_model.predict(pd.DataFrame(columns=list(MODEL_FEATURES))).shape == (0, 3)


def test_unknown_team_suggests_close_names(snapshot):
    known = snapshot.teams[snapshot.teams["country"] == snapshot.divisions["E0"]]["team"].iloc[0]
    with pytest.raises(RequestError) as err:
        snapshot.team_id("E0", known[:-1] + "x")
    assert err.value.reason == "unknown_team"
    assert known in err.value.detail["closest"]


def test_team_names_match_case_insensitively(snapshot):
    known = snapshot.teams[snapshot.teams["country"] == snapshot.divisions["E0"]]["team"].iloc[0]
    assert snapshot.team_id("E0", known.upper()) == snapshot.team_id("E0", known)


@pytest.mark.parametrize("reason", ["unknown_division", "same_team", "kickoff_not_after_latest_match"])
def test_requests_the_snapshot_cannot_answer(snapshot, batch_features, reason):
    home, away, division, date = _requests(batch_features)[0]
    home_last = snapshot.last_played[snapshot.team_id(division, home)]
    args = {"unknown_division": (home, away, "XX9", date), "same_team": (home, home, division, date),
            "kickoff_not_after_latest_match": (home, away, division, home_last)}[reason]
    with pytest.raises(RequestError) as err:
        snapshot.resolve(*args)
    assert err.value.reason == reason and err.value.status == 422


def test_default_kickoff_is_after_both_teams_latest_match(snapshot, batch_features):
    home, away, division, _ = _requests(batch_features)[0]
    row = snapshot.resolve(home, away, division, None)
    assert row["match_date"] > snapshot.last_played[row["home_team_id"]]
    assert row["match_date"] > snapshot.last_played[row["away_team_id"]]
