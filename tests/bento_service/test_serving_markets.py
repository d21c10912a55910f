"""Markets in serving: POST /predict and /predict/batch with ``markets: true`` add the goals model's markets (its own
champion, ``match_goals``, named in ``goals_model``) beside the 1X2 champion's probabilities; without it the response
is what it always was. On the session's server and platform (whose training registered both models)."""

from __future__ import annotations

import time

import numpy as np
import orjson
import pytest

from bento_service import scoring
from bento_service.model import ServedModel
from bento_service.snapshot import RequestError
from time2bet.ml.goals_model import AH_LINES, GOALS_MODEL_NAME, TOP_SCORES
from time2bet.mlflow_store import registry_client
from time2bet.serving_contract import CHAMPION, MODEL_NAME

DEFAULT_KEYS = {"variant", "home_team", "away_team", "division", "kickoff_date", "probabilities", "model",
                "features_as_of", "snapshot_loaded_at"}
SWAP_WAIT_S = 60


def _requests(batch_features) -> list[dict]:
    return [{"home_team": r.home_team, "away_team": r.away_team, "division": r.division,
             "kickoff_date": str(r.match_date)[:10]} for r in batch_features.itertuples()]


def _champion(settings, name: str) -> str:
    return str(registry_client(settings.mlflow_tracking_uri).get_registered_model(name).aliases[CHAMPION])


def _check_markets(prediction: dict) -> None:
    markets = prediction["markets"]
    one_x_two = markets["probabilities"]
    assert sum(one_x_two.values()) == pytest.approx(1.0, abs=1e-9)
    assert markets["over_under_2_5"]["over"] + markets["over_under_2_5"]["under"] == pytest.approx(1.0, abs=1e-12)
    assert 0 < markets["over_under_2_5"]["over"] < 1
    assert markets["both_teams_to_score"]["yes"] + markets["both_teams_to_score"]["no"] == pytest.approx(1.0)
    handicaps = markets["asian_handicap"]
    assert [h["line"] for h in handicaps] == list(AH_LINES)
    for h in handicaps:
        assert h["win"] + h["push"] + h["lose"] == pytest.approx(1.0, abs=1e-9)
        if h["line"] % 1:
            assert h["push"] == 0.0   # a half line cannot push
    at_zero = handicaps[AH_LINES.index(0.0)]   # draw no bet: the home win wins, the draw pushes
    assert at_zero["win"] == pytest.approx(one_x_two["home"]) and at_zero["push"] == pytest.approx(one_x_two["draw"])
    wins = [h["win"] for h in handicaps]
    assert wins == sorted(wins)   # the more goals the home side is given, the likelier its bet wins
    assert markets["expected_goals"]["home"] > 0 and markets["expected_goals"]["away"] > 0
    scores = [s["probability"] for s in markets["most_likely_scores"]]
    assert len(scores) == TOP_SCORES and scores == sorted(scores, reverse=True) and sum(scores) < 1


def test_markets_only_when_asked_from_both_champions(client, settings, batch_features):
    request = _requests(batch_features)[0]
    lean = client.post("/predict", json=request)
    assert lean.status_code == 200, lean.text
    assert set(lean.json()) == DEFAULT_KEYS and b"markets" not in lean.content   # the default response: unchanged
    assert client.post("/predict", json={**request, "markets": False}).json() == lean.json()

    rich = client.post("/predict", json={**request, "markets": True})
    assert rich.status_code == 200, rich.text
    body = rich.json()
    assert set(body) == DEFAULT_KEYS | {"goals_model", "markets"}
    assert body["probabilities"] == lean.json()["probabilities"]   # the 1X2 is the 1X2 champion's, as without
    assert body["model"]["name"] == MODEL_NAME and body["model"]["version"] == _champion(settings, MODEL_NAME)
    assert body["goals_model"]["name"] == GOALS_MODEL_NAME
    assert body["goals_model"]["version"] == _champion(settings, GOALS_MODEL_NAME)
    assert body["goals_model"]["alias"] == CHAMPION
    _check_markets(body)
    info = client.get("/model/info").json()
    assert info["goals_model"]["name"] == GOALS_MODEL_NAME
    assert info["goals_model"]["version"] == body["goals_model"]["version"]
    assert info["goals_model"]["metrics"]["heldout.ou_2_5_log_loss"] > 0


def test_batch_markets_row_by_row_and_close_to_the_1x2_champion(client, batch_features):
    requests = _requests(batch_features)
    got = client.post("/predict/batch", json={"matches": requests, "markets": True})
    assert got.status_code == 200, got.text
    predictions = got.json()["predictions"]
    assert len(predictions) == len(requests)
    for prediction in predictions:
        _check_markets(prediction)
    # the batch answers each row as /predict does
    single = client.post("/predict", json={**requests[-1], "markets": True}).json()
    assert predictions[-1]["markets"] == single["markets"]
    assert "markets" not in client.post("/predict/batch", json={"matches": requests[:2]}).text
    # two models of one match: the score matrix's 1X2 is close to the 1X2 champion's, not the same numbers
    champion = np.array([[p["probabilities"][k] for k in ("home", "draw", "away")] for p in predictions])
    goals = np.array([[p["markets"]["probabilities"][k] for k in ("home", "draw", "away")] for p in predictions])
    assert np.abs(champion - goals).max() > 1e-3
    assert np.abs(champion - goals).mean() < 0.15
    assert np.corrcoef(champion[:, 0], goals[:, 0])[0, 1] > 0.3


@pytest.mark.parametrize("markets", ["yes", "true", 1, ["over_2_5"], None])
def test_markets_must_be_a_boolean(client, batch_features, markets):
    request = _requests(batch_features)[0]
    for path, body in (("/predict", {**request, "markets": markets}),
                       ("/predict/batch", {"matches": [request], "markets": markets})):
        got = client.post(path, json=body)
        assert got.status_code == 422, got.text
        assert got.json()["error"] == "bool_type" and got.json()["errors"][0]["loc"][-1] == "markets"
    inside = client.post("/predict/batch", json={"matches": [{**request, "markets": True}]})
    assert inside.status_code == 422 and inside.json()["error"] == "extra_forbidden"   # the batch asks, not a match


def test_a_division_without_a_goals_fit_is_refused_with_its_index(settings, snapshot, served_model, batch_features):
    """In-process (the session's snapshot and champion): a goals model without the asked division's fit."""
    from bento_service.model import ModelSet

    goals = ServedModel.load(settings.mlflow_tracking_uri, GOALS_MODEL_NAME)
    fitted = goals.pyfunc.unwrap_python_model()
    requests = _requests(batch_features)
    dropped = requests[-1]["division"]
    fitted.fits = {d: f for d, f in fitted.fits.items() if d != dropped}   # this worker-less copy only
    scored = scoring.score(ModelSet(champion=served_model), snapshot, _as_matches(requests), 0.0)
    with pytest.raises(RequestError) as refused:
        scoring.add_markets(scored, goals)
    assert refused.value.status == 422 and refused.value.reason == "markets_unavailable"
    assert refused.value.detail["division"] == dropped
    assert refused.value.detail["index"] == next(i for i, r in enumerate(requests) if r["division"] == dropped)


def test_the_markets_json_is_the_prediction_schemas(snapshot, served_model, settings, batch_features):
    """In-process: the response bytes with markets (built from pieces) are pydantic's JSON of Prediction, row for
    row, and the default bytes carry no trace of them."""
    from bento_service.model import ModelSet
    from bento_service.schemas import Prediction

    goals = ServedModel.load(settings.mlflow_tracking_uri, GOALS_MODEL_NAME)
    scored = scoring.score(ModelSet(champion=served_model), snapshot, _as_matches(_requests(batch_features)), 0.0)
    lean = scored.predictions_json()
    rows = orjson.loads(scoring.add_markets(scored, goals).predictions_json())
    assert [Prediction.model_validate(row).model_dump(mode="json", exclude_unset=True) for row in rows] == rows
    assert all(row["goals_model"]["version"] == goals.version for row in rows)
    assert [{k: v for k, v in row.items() if k not in ("goals_model", "markets")} for row in rows] == \
        orjson.loads(lean)


def _as_matches(requests):
    from bento_service.schemas import MatchRequest

    return [MatchRequest(**r) for r in requests]


def test_the_goals_model_is_followed_when_its_champion_moves(client, settings, batch_features):
    """A new goals version made champion is served without a restart, as the 1X2 champion is; then moved back."""
    client_ = registry_client(settings.mlflow_tracking_uri)
    before = _champion(settings, GOALS_MODEL_NAME)
    source = client_.get_model_version(GOALS_MODEL_NAME, before).source
    copy = str(client_.create_model_version(GOALS_MODEL_NAME, source, tags={"data_version": "test-copy"}).version)
    request = {**_requests(batch_features)[0], "markets": True}
    try:
        client_.set_registered_model_alias(GOALS_MODEL_NAME, CHAMPION, copy)
        deadline = time.monotonic() + SWAP_WAIT_S
        while (served := client.post("/predict", json=request).json()["goals_model"])["version"] != copy:
            assert time.monotonic() < deadline, f"still serving goals v{served['version']}, not v{copy}"
            time.sleep(0.5)
        assert served["data_version"] == "test-copy"
    finally:
        client_.set_registered_model_alias(GOALS_MODEL_NAME, CHAMPION, before)
    deadline = time.monotonic() + SWAP_WAIT_S
    while client.post("/predict", json=request).json()["goals_model"]["version"] != before:
        assert time.monotonic() < deadline, "the goals champion was not moved back"
        time.sleep(0.5)
