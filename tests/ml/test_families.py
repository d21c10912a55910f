"""Model families on synthetic matches: the goals model as a candidate and as inputs, the family in MLflow."""

from __future__ import annotations

import numpy as np
import pytest

from time2bet.features.market_ratings import MARKET_RATING_FEATURES
from time2bet.ml.families import family_features, with_family_columns
from time2bet.ml.goals import GOALS_FEATURES
from time2bet.ml.tracking import log_training_run
from time2bet.ml.training import (
    GOALS_1X2,
    GOALS_CANDIDATE,
    feature_importance,
    fit_model,
    model_params,
    train_candidate,
)
from time2bet.mlflow_store import registry_client

from .synthetic import FEATURES


@pytest.fixture(scope="module")
def aware(matches):
    frame = matches.assign(home_team_id=matches["home_team"], away_team_id=matches["away_team"])
    return with_family_columns(frame, "market-aware")


def test_family_columns_and_features(aware):
    assert set(GOALS_FEATURES) | set(MARKET_RATING_FEATURES) <= set(aware.columns)
    later = aware["season"] > aware["season"].min()
    assert aware.loc[later, "goals_p_home"].notna().mean() > 0.9  # fitted from the second season on
    assert family_features(FEATURES) == [*FEATURES, *GOALS_FEATURES]
    assert family_features(FEATURES, "market-aware", goals=False) == [*FEATURES, *MARKET_RATING_FEATURES]
    with pytest.raises(ValueError, match="unknown model family"):
        family_features(FEATURES, "oracle")


def test_goals_candidate_and_family_in_the_mlflow_run(aware, tracking, tmp_path, monkeypatch):
    features = family_features(FEATURES, "market-aware")
    result = train_candidate(aware, features, candidates=("logreg", GOALS_CANDIDATE), family="market-aware")
    scores = result.candidate_log_loss
    assert set(scores) == {"logreg", GOALS_CANDIDATE}
    assert scores[GOALS_CANDIDATE] < np.log(3) - 0.02  # the goals model alone knows who is stronger
    goals_only = fit_model(aware, features, GOALS_CANDIDATE)
    assert list(feature_importance(goals_only, features).index.sort_values()) == sorted(GOALS_1X2)
    assert model_params(goals_only, GOALS_CANDIDATE)["inputs"] == ",".join(GOALS_1X2)
    monkeypatch.chdir(tmp_path)
    run = log_training_run(result, aware, data_version="synthetic", experiment="test_families", **tracking)
    data = registry_client(tracking["tracking_uri"]).get_run(run.run_id).data
    assert data.tags["family"] == data.params["family"] == "market-aware"
