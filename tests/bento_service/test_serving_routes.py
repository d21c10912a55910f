"""Several models: a per-division model registered, gated and served beside the pooled one (TIME2BET_ROUTES).

The sample site may never earn a route (compare_routes decides where one ships), so the route is forced through
configuration: one division's model is trained on its rows, registered under its own name and gated (its own
challenger, champion and audit trail), then a real `bentoml serve` started with the route answers that division
with it and every other division with the pooled model."""

from __future__ import annotations

import httpx
import pytest

from time2bet.ml.registry import describe_champion, promote, register_challenger
from time2bet.ml.routes import route_model_name, train_division_model
from time2bet.mlflow_store import registry_client
from time2bet.serving_contract import CHALLENGER, CHAMPION, MODEL_NAME
from time2bet.warehouse.client import Warehouse
from time2bet_assets.defs.ml.assets import PLAYED_MATCHES_SQL

pytestmark = pytest.mark.heavy


def _fixtures_of(client: httpx.Client, division: str) -> list[dict]:
    """Requests for the upcoming fixtures of ``division`` (the sample platform has some in every division)."""
    matches = client.get("/matches", params={"division": division}).json()["matches"]
    assert matches, f"no upcoming fixture in {division}"
    return [{"home_team": m["home_team"], "away_team": m["away_team"], "division": division,
             "kickoff_date": m["match_date"]} for m in matches]


@pytest.fixture(scope="module")
def routed_division(settings) -> tuple[str, str, str, str]:
    """(division, its registered model, champion version, challenger version): the division's model trained and
    gated; promoted by hand (recorded in its audit trail) when the gate kept it challenger, since the test needs it
    served; the champion's model registered again as the route's challenger, for A/B within the route."""
    frame = Warehouse.from_url(settings.warehouse_url).read_sql(PLAYED_MATCHES_SQL)
    seasons = frame.groupby("division")["season"].nunique()
    division = str(seasons[seasons >= 4].index.sort_values()[0])
    name = route_model_name(division)
    outcome = train_division_model(frame, division, name, tracking_uri=settings.mlflow_tracking_uri,
                                   data_version="test-routes", artifact_location=settings.mlflow_artifacts,
                                   n_folds=1, hyperparameters=settings.hyperparameters,
                                   gate_policy=settings.gate_policy)
    if not outcome.promoted:
        promote(name, outcome.version, "forced for the routing test", tracking_uri=settings.mlflow_tracking_uri)
    champion = describe_champion(name, tracking_uri=settings.mlflow_tracking_uri)
    assert champion.tags.get("division") == division and any("as challenger" in e for e in champion.audit)
    source = registry_client(settings.mlflow_tracking_uri).get_model_version(name, champion.version).source
    challenger = register_challenger(source, name, {"division": division}, tracking_uri=settings.mlflow_tracking_uri)
    return division, name, champion.version, challenger


def test_a_routed_division_is_answered_by_its_own_model(platform_env, routed_division, start_bento_server):
    division, name, champion, challenger = routed_division
    server = start_bento_server({**platform_env, "TIME2BET_ROUTES": f"{division}={name}",
                                 "TIME2BET_CHALLENGER_SHARE": "0.5"})
    with httpx.Client(base_url=server.url, timeout=30) as client:
        info = client.get("/model/info").json()
        assert info["name"] == MODEL_NAME and info["routes"] == {division: name}
        served = {(m["name"], m["alias"], m["version"]) for m in info["models"]}
        assert {(name, CHAMPION, champion), (name, CHALLENGER, challenger)} <= served
        assert (MODEL_NAME, CHAMPION, info["version"]) in served
        other = min(d for d in client.get("/teams").json()["divisions"] if d != division)
        routed, pooled = _fixtures_of(client, division), _fixtures_of(client, other)

        answer = client.post("/predict", json=routed[0])
        assert answer.status_code == 200, answer.text
        model, variant = answer.json()["model"], answer.json()["variant"]
        assert model["name"] == name and model["version"] == (champion if variant == CHAMPION else challenger)
        answer = client.post("/predict", json=pooled[0])
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"]["name"] == MODEL_NAME

        # a batch is split by route, each row answered by its division's model, in request order; A/B per route
        mixed = [m for pair in zip(pooled, routed, strict=False) for m in pair]
        batch = client.post("/predict/batch", json={"matches": mixed})
        assert batch.status_code == 200, batch.text
        predictions = batch.json()["predictions"]
        assert [p["division"] for p in predictions] == [m["division"] for m in mixed]
        assert [p["model"]["name"] for p in predictions] == [name if m["division"] == division else MODEL_NAME
                                                            for m in mixed]
        routed_answers = {(p["variant"], p["model"]["version"]) for p in predictions if p["division"] == division}
        assert routed_answers == {(CHAMPION, champion), (CHALLENGER, challenger)}

        metrics = client.get("/metrics").text
        assert f'variant="{name}@{CHAMPION}"' in metrics and f'variant="{name}@{CHALLENGER}"' in metrics
