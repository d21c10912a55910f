"""The goals model as a registered MLflow model: fit per division, pyfunc round trip, markets, and its gate."""

from __future__ import annotations

import dataclasses

import mlflow
import numpy as np
import pandas as pd
import pytest

from time2bet.ml import goals_model, goals_training
from time2bet.ml.goals_model import GOALS_MODEL_NAME
from time2bet.mlflow_store import registry_client


@pytest.fixture(scope="module")
def frame(matches) -> pd.DataFrame:
    """The synthetic matches with team ids (the marts carry both), and a second division too small for a fit."""
    small = matches[matches["season"] == matches["season"].max()].head(40).assign(division="E1")
    out = pd.concat([matches, small], ignore_index=True)
    return out.assign(home_team_id=out["home_team"], away_team_id=out["away_team"])


def test_markets_of_one_score_matrix_agree():
    lam, mu, rho = np.array([1.6, 0.9]), np.array([1.1, 1.4]), np.array([-0.1, 0.05])
    out = goals_model.markets_of(lam, mu, rho)
    np.testing.assert_allclose(out["one_x_two"].sum(axis=1), 1.0)
    assert np.all((out["over_2_5"] > 0) & (out["over_2_5"] < 1)) and np.all((out["btts"] > 0) & (out["btts"] < 1))
    ah = out["asian_handicap"]
    assert ah.shape == (2, len(goals_model.AH_LINES), 3)
    np.testing.assert_allclose(ah.sum(axis=2), 1.0)
    line_0 = goals_model.AH_LINES.index(0.0)   # draw no bet: win = home win, push = draw
    np.testing.assert_allclose(ah[:, line_0, :2], out["one_x_two"][:, :2])
    np.testing.assert_allclose(out["expected_goals"], np.column_stack([lam, mu]))
    assert out["most_likely_scores"][0][0][2] >= out["most_likely_scores"][0][1][2]
    # each match's own rho: the same lam/mu with another rho moves only the low scores' cells
    alone = goals_model.markets_of(lam[1:], mu[1:], rho[1:])
    np.testing.assert_allclose(alone["one_x_two"][0], out["one_x_two"][1])


def test_registered_goals_model_round_trip_and_gate(frame, tracking):
    uri = tracking["tracking_uri"]
    first = goals_training.train_register_and_gate(frame, tracking_uri=uri, data_version="synthetic-1",
                                                artifact_location=tracking["artifact_location"])
    assert first.promoted and first.champion_version is None
    assert 0.9 < first.scores["log_loss_1x2"] < 1.1 and 0.55 < first.scores["ou_2_5_log_loss"] < 0.72
    assert first.scores["n"] == (frame["season"] == frame["season"].max()).sum() - 40   # E1 has no fit

    # the pyfunc as the service loads it: the same numbers as the fits it was logged from
    served = goals_model.load_goals(f"models:/{GOALS_MODEL_NAME}@champion")
    assert served.divisions == {"E0"}
    train = frame[frame["season"] != frame["season"].max()]
    fits = goals_training.fit_divisions(train)
    rows = frame.tail(50)
    lam, mu, rho = served.expected_goals(rows["division"], rows["home_team_id"], rows["away_team_id"])
    e0 = (rows["division"] == "E0").to_numpy()
    want_lam, want_mu = fits["E0"].expected_goals(rows["home_team_id"][e0], rows["away_team_id"][e0])
    np.testing.assert_allclose(lam[e0], want_lam, rtol=1e-12)
    np.testing.assert_allclose(mu[e0], want_mu, rtol=1e-12)
    assert np.all(rho[e0] == fits["E0"].rho) and np.isnan(lam[~e0]).all()
    # and through MLflow's generic pyfunc interface (its signature: the three id columns in, three numbers out)
    generic = mlflow.pyfunc.load_model(f"models:/{GOALS_MODEL_NAME}@champion")
    out = generic.predict(rows[list(goals_model.GOALS_INPUT)].astype(str).reset_index(drop=True))
    assert list(out.columns) == list(goals_model.GOALS_OUTPUT)
    np.testing.assert_allclose(out["exp_home_goals"].to_numpy()[e0], want_lam, rtol=1e-12)

    client = registry_client(uri)
    run = client.get_run(first.run_id)
    assert run.data.metrics["heldout.ou_2_5_log_loss"] == pytest.approx(first.scores["ou_2_5_log_loss"])
    assert run.data.tags["family"] == "independent"

    # the same data again: not worse on the same matches (a tie), so the new version becomes champion
    second = goals_training.train_register_and_gate(frame, tracking_uri=uri, data_version="synthetic-1",
                                                 artifact_location=tracking["artifact_location"])
    assert second.promoted and second.champion_version == first.version
    assert second.champion_ou_2_5_log_loss == pytest.approx(second.scores["ou_2_5_log_loss"])

    # a worse model (no team strengths, a wild home advantage) is registered but stays challenger
    worse = {d: dataclasses.replace(f, attack=np.zeros_like(f.attack), defence=np.zeros_like(f.defence),
                                    home_advantage=1.2) for d, f in fits.items()}
    model = goals_model.GoalsPyfunc()
    model.fits = worse
    evaluation = frame[frame["season"] == frame["season"].max()]
    scores = goals_training.held_out_scores(model, evaluation)
    logged = goals_training.log_goals_model(worse, scores, train, tracking_uri=uri, data_version="synthetic-worse")
    third = goals_training.gate_goals(logged, scores, evaluation, "2023-24", tracking_uri=uri)
    assert not third.promoted and third.champion_version == second.version
    assert scores["ou_2_5_log_loss"] > third.champion_ou_2_5_log_loss
    aliases = client.get_registered_model(GOALS_MODEL_NAME).aliases
    assert str(aliases["champion"]) == second.version and str(aliases["challenger"]) == third.version
    assert client.get_model_version(GOALS_MODEL_NAME, third.version).tags["goals_gate.decision"] == "rejected"
