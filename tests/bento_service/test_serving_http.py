"""Over HTTP against one real `bentoml serve` on loopback (started once per session by conftest)."""

from __future__ import annotations

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bento_service.schemas import MAX_BATCH


@pytest.fixture(scope="module")
def fixtures(batch_features) -> list[dict]:
    return [{"home_team": r.home_team, "away_team": r.away_team, "division": r.division,
             "kickoff_date": pd.Timestamp(r.match_date).date().isoformat(), "match_id": r.match_id}
            for r in batch_features.itertuples()]


def _body(fixture: dict) -> dict:
    return {k: v for k, v in fixture.items() if k != "match_id"}


def test_health_routes(client):
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_predict_equals_the_stored_batch_predictions(client, fixtures):
    for fixture in fixtures:
        got = client.post("/predict", json=_body(fixture))
        assert got.status_code == 200, got.text
        stored = client.get(f"/predict/{fixture['match_id']}")
        assert stored.status_code == 200, stored.text
        p, s = got.json(), stored.json()
        assert p["probabilities"] == pytest.approx({"home": s["p_home"], "draw": s["p_draw"], "away": s["p_away"]},
                                                   abs=1e-9)
        assert p["model"]["version"] == s["model_version"] and p["model"]["alias"] == "champion"
        assert p["model"]["data_version"] == s["data_version"]
        assert p["features_as_of"] and p["snapshot_loaded_at"]


def test_predict_without_date_uses_the_next_day_with_no_data(client, fixtures):
    got = client.post("/predict", json={k: v for k, v in _body(fixtures[0]).items() if k != "kickoff_date"})
    assert got.status_code == 200, got.text
    assert got.json()["kickoff_date"] > got.json()["features_as_of"]


def test_batch_matches_single_predictions(client, fixtures):
    got = client.post("/predict/batch", json={"matches": [_body(f) for f in fixtures]})
    assert got.status_code == 200, got.text
    batch = got.json()["predictions"]
    assert len(batch) == len(fixtures)
    single = client.post("/predict", json=_body(fixtures[-1])).json()
    assert batch[-1]["probabilities"] == pytest.approx(single["probabilities"], abs=1e-12)


def test_batch_bounds(client, fixtures):
    assert client.post("/predict/batch", json={"matches": []}).status_code == 422
    too_many = client.post("/predict/batch", json={"matches": [_body(fixtures[0])] * (MAX_BATCH + 1)})
    assert too_many.status_code in (413, 422), too_many.text
    unknown = {**_body(fixtures[0]), "home_team": "Nobody FC"}
    bad = client.post("/predict/batch", json={"matches": [_body(fixtures[0]), unknown]})
    assert bad.status_code == 422 and bad.json()["error"] == "unknown_team" and bad.json()["index"] == 1


@pytest.mark.parametrize("change, error", [
    ({"home_team": "Nobody FC"}, "unknown_team"),
    ({"division": "XX9"}, "unknown_division"),
    ({"kickoff_date": "2025-13-45"}, None),
    ({"kickoff_date": "yesterday"}, None),
    ({"kickoff_date": 20250301}, None),
    ({"home_team": 42}, None),
    ({"division": ["E0"]}, None),
    ({"extra": 1}, "extra_forbidden"),
    ({"home_team": "A" * 100_000}, "string_too_long"),
    ({"home_team": ""}, None),
])
def test_bad_requests_are_4xx_json_saying_what_is_wrong(client, fixtures, change, error):
    got = client.post("/predict", json={**_body(fixtures[0]), **change})
    assert 400 <= got.status_code < 500, got.text
    body = got.json()
    assert body["error"] and body["message"]
    if error:
        assert body["error"] == error
    assert len(got.content) < 5_000   # never echoes a huge input back


def test_unknown_team_names_the_closest_known_names(client, fixtures):
    name = fixtures[0]["home_team"]
    body = client.post("/predict", json={**_body(fixtures[0]), "home_team": name[:-1]}).json()
    assert body["error"] == "unknown_team" and name in body["closest"]


def test_same_team_twice_and_missing_field_and_malformed_json(client, fixtures):
    f = _body(fixtures[0])
    same = client.post("/predict", json={**f, "away_team": f["home_team"]})
    assert same.status_code == 422 and same.json()["error"] == "same_team"
    missing = client.post("/predict", json={"home_team": f["home_team"]})
    assert missing.status_code == 422 and missing.json()["error"] == "missing"
    broken = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422 and broken.json()["error"]


def test_huge_body_is_refused(client):
    got = client.post("/predict", content=b"x" * (5 * 1024 * 1024), headers={"content-type": "application/json"})
    assert got.status_code == 413 and got.json()["error"] == "body_too_large"


def test_stored_prediction_unknown_id_is_404(client):
    got = client.get("/predict/0123456789abcdef")
    assert got.status_code == 404
    assert got.json()["error"] == "unknown_match_id" and got.json()["match_id"] == "0123456789abcdef"


def test_matches_filters(client, fixtures):
    everything = client.get("/matches").json()
    assert everything["count"] == len(fixtures)
    assert all(m["variant"] == "champion" for m in everything["matches"])
    division = fixtures[0]["division"]
    only = client.get("/matches", params={"division": division}).json()
    assert only["count"] == sum(f["division"] == division for f in fixtures)
    day = fixtures[0]["kickoff_date"]
    window = client.get("/matches", params={"date_from": day, "date_to": day}).json()
    assert window["count"] == sum(f["kickoff_date"] == day for f in fixtures)
    assert client.get("/matches", params={"division": "XX9"}).status_code == 422
    assert client.get("/matches", params={"date_from": "nope"}).status_code == 422
    assert client.get("/matches", params={"date_from": "2025-03-02", "date_to": "2025-03-01"}).status_code == 422


def test_model_info(client, settings):
    from time2bet.mlflow_store import registry_client

    info = client.get("/model/info").json()
    mv = registry_client(settings.mlflow_tracking_uri).get_model_version_by_alias("match_outcome", "champion")
    assert (info["name"], info["version"], info["alias"], info["run_id"]) == \
        ("match_outcome", str(mv.version), "champion", mv.run_id)
    assert info["data_version"] == mv.tags["data_version"] and info["metrics"] and info["loaded_at"]


def test_metrics(client, fixtures):
    client.post("/predict", json=_body(fixtures[0]))
    client.post("/predict", json={**_body(fixtures[0]), "division": "XX9"})
    client.post("/predict/batch", json={"matches": [_body(fixtures[0])] * 3})
    text = client.get("/metrics").text
    for needle in ('time2bet_requests_total{route="/predict",status="2xx",variant="champion"}',
                   'time2bet_requests_total{route="/predict",status="4xx",variant="none"}',
                   'time2bet_request_seconds_bucket{le="0.005",route="/predict",variant="champion"}',
                   'time2bet_batch_size_bucket{le="10.0",source="request"}',
                   "time2bet_predictions_total{outcome=", 'time2bet_model_info{variant="champion",version=',
                   'variant="champion"}',
                   'time2bet_validation_errors_total{reason="unknown_division"}', "time2bet_snapshot_age_seconds "):
        assert needle in text, needle


def _requests_total(client, route: str) -> dict[str, float]:
    """time2bet_requests_total of one route by status class (summed over variants)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "time2bet_requests_total" and sample.labels["route"] == route:
                out[sample.labels["status"]] = out.get(sample.labels["status"], 0) + sample.value
    return out


def test_each_prediction_request_is_counted_once(client, fixtures):
    """Valid bodies are answered ahead of BentoML's app (fast_path.PredictFront); others go on to the FastAPI
    route: either way one request is one count, under the route's template."""
    before = _requests_total(client, "/predict")
    for _ in range(3):
        assert client.post("/predict", json=_body(fixtures[0])).status_code == 200
    assert client.post("/predict", json={**_body(fixtures[0]), "home_team": "Nobody FC"}).status_code == 422
    assert client.post("/predict", json={**_body(fixtures[0]), "extra": 1}).status_code == 422   # declined
    assert client.post("/predict", content=b"\xff", headers={"content-type": "application/json"}).status_code == 400
    after = _requests_total(client, "/predict")
    assert after.get("2xx", 0) - before.get("2xx", 0) == 3
    assert after.get("4xx", 0) - before.get("4xx", 0) == 3
    batch = _requests_total(client, "/predict/batch")
    assert client.post("/predict/batch", json={"matches": [_body(f) for f in fixtures]}).status_code == 200
    assert client.post("/predict/batch", json={"matches": []}).status_code == 422
    after_batch = _requests_total(client, "/predict/batch")
    assert {k: after_batch.get(k, 0) - batch.get(k, 0) for k in ("2xx", "4xx")} == {"2xx": 1, "4xx": 1}


def test_the_fast_path_calls_the_documented_route_methods():
    """fast_path.PredictFront hands valid bodies to the very methods FastAPI documents for those routes."""
    from bento_service.fast_path import FAST_PATHS
    from bento_service.service import Time2BetService, app

    def routes(of):   # BentoML re-includes the class-view routes through a router (FastAPI >= 0.16x: wrapped)
        for route in of:
            inner = getattr(route, "original_router", None)
            yield from routes(inner.routes) if inner is not None else (route,)

    posts = {route.path: route.endpoint for route in routes(app.routes) if "POST" in getattr(route, "methods", ())}
    for path, fast in FAST_PATHS.items():
        assert posts[path] is getattr(Time2BetService.inner, fast.handler), path
