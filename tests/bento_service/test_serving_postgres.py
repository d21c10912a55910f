"""The whole chain and the service on the PostgreSQL warehouse: a fresh database of our own on 127.0.0.1:5432,
the platform built on it (sample site -> ingest -> dbt features -> training -> champion -> batch predictions),
then a second real `bentoml serve` reading it. What the service answers is compared with what PostgreSQL holds,
read directly with psycopg (no DuckDB anywhere: the platform's home has no DuckDB file). The database is
dropped at the end."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest

pytestmark = pytest.mark.postgres

MODEL_NAME = "match_outcome"


@pytest.fixture(scope="module")
def pg_url(postgres_server_url):
    """A fresh database time2bet_svc_<hex>, dropped (only this one) at the end of the module."""
    import psycopg

    name = f"time2bet_svc_{uuid.uuid4().hex}"
    with psycopg.connect(postgres_server_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def pg_platform(pg_url, platform_builder, tmp_path_factory) -> dict[str, str]:
    return platform_builder(tmp_path_factory.mktemp("pg_platform"), {"TIME2BET_WAREHOUSE_URL": pg_url})


@pytest.fixture(scope="module")
def pg_predictions(pg_url, pg_platform) -> list[dict]:
    """The champion's rows of predictions.upcoming_matches, straight from PostgreSQL."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(pg_url, row_factory=dict_row) as con:
        rows = con.execute("SELECT * FROM predictions.upcoming_matches WHERE variant = 'champion' "
                           "ORDER BY match_date, match_id").fetchall()
    for r in rows:   # a timestamp column on PostgreSQL (pandas writes datetime64): the day is what the API takes
        r["day"] = (r["match_date"].date() if isinstance(r["match_date"], dt.datetime) else r["match_date"]).isoformat()
    return rows


@pytest.fixture(scope="module")
def pg_server(pg_platform, start_bento_server):
    server = start_bento_server(pg_platform)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pg_client(pg_server):
    with httpx.Client(base_url=pg_server.url, timeout=30) as c:
        yield c


def test_the_chain_ran_on_postgres(pg_platform, pg_url, pg_predictions):
    from pathlib import Path

    from time2bet.mlflow_store import registry_client

    assert pg_platform["TIME2BET_WAREHOUSE_URL"] == pg_url
    home = Path(pg_platform["TIME2BET_HOME"])
    assert not list(home.rglob("*.duckdb")), "a DuckDB file was written: the warehouse URL did not reach a stage"
    champion = registry_client(pg_platform["MLFLOW_TRACKING_URI"]).get_model_version_by_alias(MODEL_NAME, "champion")
    assert champion.version
    assert pg_predictions, "no champion predictions in predictions.upcoming_matches"
    assert {r["model_version"] for r in pg_predictions} == {str(champion.version)}
    for r in pg_predictions:
        assert r["p_home"] + r["p_draw"] + r["p_away"] == pytest.approx(1.0, abs=1e-6)   # float32 model output


def test_the_service_reads_the_postgres_warehouse(pg_client, pg_predictions):
    info = pg_client.get("/model/info")
    assert info.status_code == 200, info.text
    assert info.json()["version"] == pg_predictions[0]["model_version"]

    listed = pg_client.get("/matches")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["count"] == len(pg_predictions)
    assert [m["match_id"] for m in body["matches"]] == [r["match_id"] for r in pg_predictions]


def test_predict_equals_the_batch_predictions_in_postgres(pg_client, pg_predictions):
    """POST /predict of each upcoming fixture (features assembled from the snapshot read from PostgreSQL) gives
    the probabilities the batch path stored there; GET /predict/{match_id} returns the stored row."""
    for r in pg_predictions:
        request = {"home_team": r["home_team"], "away_team": r["away_team"], "division": r["division"],
                   "kickoff_date": r["day"]}
        got = pg_client.post("/predict", json=request)
        assert got.status_code == 200, got.text
        p = got.json()
        assert p["probabilities"] == pytest.approx({"home": r["p_home"], "draw": r["p_draw"], "away": r["p_away"]},
                                                   abs=1e-9)
        assert p["model"]["version"] == r["model_version"] and p["model"]["data_version"] == r["data_version"]

        stored = pg_client.get(f"/predict/{r['match_id']}")
        assert stored.status_code == 200, stored.text
        s = stored.json()
        assert (s["home_team"], s["away_team"], s["division"], s["match_date"]) == (
            r["home_team"], r["away_team"], r["division"], r["day"])
        assert (s["p_home"], s["p_draw"], s["p_away"]) == pytest.approx((r["p_home"], r["p_draw"], r["p_away"]),
                                                                          abs=1e-12)

    batch = pg_client.post("/predict/batch", json={"matches": [
        {"home_team": r["home_team"], "away_team": r["away_team"], "division": r["division"],
         "kickoff_date": r["day"]} for r in pg_predictions]})
    assert batch.status_code == 200, batch.text
    assert [x["probabilities"]["home"] for x in batch.json()["predictions"]] == pytest.approx(
        [r["p_home"] for r in pg_predictions], abs=1e-9)


def test_bad_requests_on_postgres_are_4xx_too(pg_client, pg_predictions):
    r = pg_predictions[0]
    got = pg_client.post("/predict", json={"home_team": r["home_team"][:-1], "away_team": r["away_team"],
                                           "division": r["division"]})
    assert got.status_code == 422 and got.json()["error"] == "unknown_team"
    assert r["home_team"] in got.json()["closest"]
    assert pg_client.get("/predict/" + "0" * 32).status_code == 404
