"""Walk-forward training on synthetic matches with a known signal, its MLflow record and its determinism."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import skops.io

from time2bet.ml import training
from time2bet.ml.metrics import encode_outcomes, log_loss
from time2bet.ml.tracking import SKOPS_TRUSTED_TYPES, canonical_skops, log_training_run
from time2bet.ml.training import (
    FORM_PROXY,
    cross_validate,
    feature_importance,
    fit_model,
    train_candidate,
    walk_forward_splits,
)
from time2bet.mlflow_store import registry_client
from time2bet.serving_contract import model_input

from .synthetic import FEATURES, SEASONS


def test_walk_forward_splits_train_on_every_earlier_season():
    seasons = ["2000-01", "1998-99", "2001-02", "1999-00", "2000-01"]  # unordered, repeated, across 2000
    folds = walk_forward_splits(seasons, 2)
    assert [(f.index, f.train_seasons, f.valid_season) for f in folds] == [
        (0, ("1998-99", "1999-00"), "2000-01"),
        (1, ("1998-99", "1999-00", "2000-01"), "2001-02"),
    ]
    with pytest.raises(ValueError, match="need 5 seasons"):
        walk_forward_splits(seasons, 3, min_train_seasons=2)


@pytest.fixture(scope="module")
def xgb_result(matches):
    return train_candidate(matches, FEATURES, "xgboost")


def test_cross_validate_scores_model_and_references_on_the_same_matches(matches):
    cv = cross_validate(matches, FEATURES, "logreg", n_folds=2)
    folds = cv.folds
    assert folds["valid_season"].tolist() == list(SEASONS[-2:])
    assert folds["n"].tolist() == [300, 300]
    with_odds = matches.groupby("season")["market_prob_home"].count()
    assert folds["n_with_odds"].tolist() == with_odds[list(SEASONS[-2:])].tolist()
    assert cv.reference_feature == "elo_diff"
    # the signal is learnt: better than forecasting last seasons' outcome frequencies
    y = encode_outcomes(matches["result"])
    base_rate = log_loss(y, np.tile(np.bincount(y) / len(y), (len(y), 1)))
    assert (folds["model_log_loss"] < base_rate - 0.03).all()
    # the market quotes the truth with noise, so it should be hard to beat
    assert cv.summary["gap_to_market_log_loss"] == pytest.approx(
        cv.summary["model_on_odds_log_loss"] - cv.summary["market_log_loss"]
    )
    assert cv.summary["market_log_loss"] < cv.summary["model_log_loss"]
    assert len(cv.predictions) == 600 and cv.predictions["match_id"].is_unique


def test_reference_falls_back_to_goal_difference_form_without_ratings(matches):
    cv = cross_validate(matches.drop(columns="elo_diff"), FEATURES[:-1], "logreg", n_folds=1)
    assert cv.reference_feature == FORM_PROXY
    assert np.isfinite(cv.summary["elo_log_loss"])


def test_fit_model_calibrates_on_the_last_training_season(matches):
    one_season = matches[matches["season"] == SEASONS[0]]
    with pytest.raises(ValueError, match="two training seasons"):
        fit_model(one_season, FEATURES, "logreg")
    train = matches[matches["season"].isin(SEASONS[:3])]
    model = fit_model(train, FEATURES, "logreg")
    base = training.base_estimator(model)
    # the pipeline's imputer saw only the first two seasons: the calibration season stayed out of its fit
    assert base[0].n_features_in_ == len(FEATURES)
    fit_part = model_input(train[train["season"] != SEASONS[2]], FEATURES)
    np.testing.assert_allclose(base[0].statistics_, fit_part.median())
    p = model.predict_proba(model_input(train, FEATURES))
    assert model.classes_.tolist() == [0, 1, 2]
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_train_candidate_chooses_the_lower_walk_forward_log_loss(matches):
    result = train_candidate(matches, FEATURES, n_folds=2)
    assert set(result.candidate_log_loss) == {"logreg", "xgboost"}
    assert result.model_name == min(result.candidate_log_loss, key=result.candidate_log_loss.get)
    assert result.cv.model_name == result.model_name
    assert result.train_seasons == SEASONS and result.n_train == len(matches)
    importance = feature_importance(result.model, FEATURES)
    assert importance.index[0] == "elo_diff"  # the sharpest view of strength


def test_training_is_deterministic(matches, xgb_result):
    """Same data and code twice: walk-forward metrics and predictions equal exactly, and the pickled model
    (the calibrated XGBoost with its booster) is byte-identical."""
    again = train_candidate(matches, FEATURES, "xgboost")
    pd.testing.assert_frame_equal(again.cv.folds, xgb_result.cv.folds, check_exact=True)
    pd.testing.assert_frame_equal(again.cv.predictions, xgb_result.cv.predictions, check_exact=True)
    assert pickle.dumps(again.model) == pickle.dumps(xgb_result.model)
    x = model_input(matches, FEATURES)
    assert np.array_equal(again.model.predict_proba(x), xgb_result.model.predict_proba(x))


def test_log_training_run_records_everything_and_pyfunc_returns_probabilities(
    matches, xgb_result, tracking, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # anything MLflow wrote relative to the working directory would land here
    run = log_training_run(xgb_result, matches, data_version="features@abc123", experiment="test_training",
                           **tracking)
    client = registry_client(tracking["tracking_uri"])
    logged = client.get_run(run.run_id).data
    assert logged.tags["data_version"] == logged.params["data_version"] == "features@abc123"
    assert logged.params["model_name"] == "xgboost" and logged.params["reference_feature"] == "elo_diff"
    (dataset_input,) = client.get_run(run.run_id).inputs.dataset_inputs
    assert dataset_input.dataset.name == "training_window" and dataset_input.dataset.digest == "features@abc123"
    assert json.loads(dataset_input.dataset.profile)["num_rows"] == len(matches)
    assert [(t.key, t.value) for t in dataset_input.tags] == [("mlflow.data.context", "training")]
    history = client.get_metric_history(run.run_id, "fold.model_log_loss")
    assert [m.step for m in history] == [0, 1, 2]
    assert [m.value for m in history] == xgb_result.cv.folds["model_log_loss"].tolist()
    for key in ("cv.model_log_loss", "cv.elo_log_loss", "cv.market_log_loss", "cv.gap_to_market_log_loss",
                "cv.n_with_odds", "candidate.xgboost.log_loss"):
        assert key in logged.metrics
    plots = {a.path for a in client.list_artifacts(run.run_id, "plots")}
    assert plots == {"plots/reliability.png", "plots/feature_importance.png", "plots/log_loss_per_fold.png"}

    model = mlflow.pyfunc.load_model(run.model_uri)
    x = model_input(matches, FEATURES).head(40)
    p = model.predict(x)
    assert isinstance(p, np.ndarray) and p.shape == (40, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)  # XGBoost computes in float32
    assert np.array_equal(p, xgb_result.model.predict_proba(x))
    assert list(tmp_path.iterdir()) == []


def test_logged_model_bytes_are_the_same_for_the_same_model(matches, xgb_result, tracking, tmp_path, monkeypatch):
    """skops alone writes different bytes on every save (memory addresses, uuids, timestamps); the archive we
    log is canonical, so two logs of one model hold the same model.skops, and it loads to the same model."""
    raw = []
    for _ in range(2):
        buffer = io.BytesIO()
        skops.io.dump(xgb_result.model, buffer)
        raw.append(buffer.getvalue())
    assert raw[0] != raw[1]  # the problem this solves; if skops ever fixes it, this test says so
    assert canonical_skops(raw[0]) == canonical_skops(raw[1]) == canonical_skops(canonical_skops(raw[0]))

    monkeypatch.chdir(tmp_path)
    logged = []
    for i in range(2):
        run = log_training_run(xgb_result, matches, data_version="features@abc123", experiment="test_bytes",
                               **tracking)
        model_id = run.model_uri.removeprefix("models:/")
        location = registry_client(tracking["tracking_uri"]).get_logged_model(model_id).artifact_location
        local = mlflow.artifacts.download_artifacts(artifact_uri=f"{location}/model.skops",
                                                    dst_path=str(tmp_path / str(i)))
        logged.append(Path(local).read_bytes())
    assert logged[0] == logged[1] == canonical_skops(raw[0])
    loaded = skops.io.load(io.BytesIO(logged[0]), trusted=SKOPS_TRUSTED_TYPES)
    x = model_input(matches, FEATURES)
    assert np.array_equal(loaded.predict_proba(x), xgb_result.model.predict_proba(x))
