"""GET /teams over HTTP against the session's real `bentoml serve`: what POST /predict can be asked about."""

from __future__ import annotations


def test_teams_lists_the_divisions_and_the_names_predict_accepts(client, snapshot):
    got = client.get("/teams")
    assert got.status_code == 200, got.text
    divisions = got.json()["divisions"]
    assert divisions == dict(sorted(snapshot.divisions.items())) and divisions
    assert got.json()["teams"] == [] and got.json()["division"] is None

    for division, country in divisions.items():
        body = client.get("/teams", params={"division": division}).json()
        assert body["division"] == division and body["country"] == country
        expected = sorted(set(snapshot.teams.loc[snapshot.teams["country"] == country, "team"]))
        assert body["teams"] == expected and len(expected) >= 2
    # every listed pair is one POST /predict answers
    division = next(iter(divisions))
    first, second = client.get("/teams", params={"division": division}).json()["teams"][:2]
    answer = client.post("/predict", json={"division": division, "home_team": first, "away_team": second})
    assert answer.status_code == 200, answer.text


def test_teams_of_an_unknown_division_is_a_json_4xx(client):
    got = client.get("/teams", params={"division": "XX9"})
    assert got.status_code == 422
    assert got.json()["error"] == "unknown_division" and got.json()["known_divisions"]
    too_long = client.get("/teams", params={"division": "X" * 100})
    assert too_long.status_code == 422 and too_long.json()["error"] and too_long.json()["message"]
