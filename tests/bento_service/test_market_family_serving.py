"""Every served prediction says its model family (issue 16), over HTTP against the session's `bentoml serve`.

The platform's champion is of the independent family: POST /predict, /predict/batch, an async job's result,
/model/info and the published OpenAPI schema say so. Then a market-aware model (the platform's own training code,
time2bet.ml.families and fit_model, on the sample platform's played matches, with the market-implied ratings) is
registered tagged ``family=market-aware`` and made the ``challenger`` the server follows: the matches assigned to
it are scored on its own inputs (the snapshot's market ratings beside the marts' features), say
``market-aware``, and differ from the independent champion's; the ledger records of the server's answers carry
each model's family. The module puts the registry back (no challenger) and waits until the server serves the
champion alone again, so the other modules see the platform as built.

Why not through Dagster (tests/time2bet_assets/test_market_family.py): its walk-forward candidates cost about a
minute; one logistic regression fitted and saved by hand costs ~3 s and serves the same way."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tests.bento_service.polling import wait_for
from time2bet.serving_contract import CHALLENGER, CHAMPION, FAMILIES, FAMILY_TAG, MODEL_FEATURES, MODEL_NAME

DAYS = range(0, 28, 3)   # kickoff dates per fixture: distinct match ids, so both A/B arms get matches


@pytest.fixture(scope="module")
def requests_(batch_features) -> list[dict]:
    """Every upcoming fixture of the sample platform at several kickoff dates."""
    out = []
    for r in batch_features.itertuples():
        first = pd.Timestamp(r.match_date).date()
        out += [{"home_team": r.home_team, "away_team": r.away_team, "division": r.division,
                 "kickoff_date": (first + dt.timedelta(days=d)).isoformat()} for d in DAYS]
    return out


def _job_result(client, body: dict) -> dict:
    got = client.post("/jobs", json=body)
    assert got.status_code == 202, got.text
    job = got.json()["job_id"]
    wait_for(f"job {job} finished", lambda: client.get(f"/jobs/{job}").json()["status"] in ("completed", "failed"))
    result = client.get(f"/jobs/{job}/result")
    assert result.status_code == 200, result.text
    return result.json()


def test_the_independent_champion_says_its_family(client, requests_):
    info = client.get("/model/info").json()
    assert info["family"] == "independent" and info["challenger"] is None
    assert [m["family"] for m in info["models"]] == ["independent"]
    single = client.post("/predict", json=requests_[0])
    assert single.status_code == 200, single.text
    assert single.json()["model"]["family"] == "independent"
    body = {"matches": requests_[:5]}
    batch = client.post("/predict/batch", json=body)
    assert batch.status_code == 200, batch.text
    assert {p["model"]["family"] for p in batch.json()["predictions"]} == {"independent"}
    assert _job_result(client, body) == batch.json()

    schema = client.get("/openapi.json").json()["components"]["schemas"]
    for component in ("ModelRef", "ModelDetails"):
        assert "family" in schema[component]["required"]
        assert schema[component]["properties"]["family"]["enum"] == list(FAMILIES)
        assert "market-aware" in schema[component]["properties"]["family"]["description"]


@pytest.fixture(scope="module")
def market_aware(settings, client, tmp_path_factory):
    """A market-aware version of the registered model, the server's ``challenger`` while the test runs."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from time2bet.ml.families import platform_features, with_platform_columns
    from time2bet.ml.tracking import SKOPS_TRUSTED_TYPES
    from time2bet.ml.training import fit_model
    from time2bet.mlflow_store import registry_client
    from time2bet.serving_contract import model_input
    from time2bet.warehouse.client import Warehouse
    from time2bet_assets.defs.ml.assets import PLAYED_MATCHES_SQL

    features = platform_features("market-aware")
    played = with_platform_columns(Warehouse.from_url(settings.warehouse_url).read_sql(PLAYED_MATCHES_SQL),
                                   "market-aware")
    model = fit_model(played, features, "logreg")
    example = model_input(played, features).head(5)
    path = tmp_path_factory.mktemp("market-aware") / "model"
    mlflow.sklearn.save_model(model, path, signature=infer_signature(example, model.predict_proba(example)),
                              pyfunc_predict_fn="predict_proba", serialization_format="skops",
                              skops_trusted_types=SKOPS_TRUSTED_TYPES, pip_requirements=["scikit-learn"])
    registry = registry_client(settings.mlflow_tracking_uri)
    assert CHALLENGER not in registry.get_registered_model(MODEL_NAME).aliases, "the platform left a challenger"
    version = str(registry.create_model_version(
        MODEL_NAME, str(path), tags={FAMILY_TAG: "market-aware", "data_version": "market-aware test"}).version)
    registry.set_registered_model_alias(MODEL_NAME, CHALLENGER, version)
    try:
        wait_for("the market-aware challenger in /model/info",
                 lambda: (client.get("/model/info").json()["challenger"] or {}).get("version") == version)
        yield version, features
    finally:
        registry.delete_registered_model_alias(MODEL_NAME, CHALLENGER)
        wait_for("the champion alone again", lambda: client.get("/model/info").json()["challenger"] is None)


def test_a_market_aware_model_is_served_on_its_own_inputs_and_says_so(client, settings, snapshot, served_model,
                                                                        market_aware, requests_):
    from bento_service.model import ServedModel
    from time2bet.ledger import read_records

    version, features = market_aware
    assert features[:len(MODEL_FEATURES)] == list(MODEL_FEATURES) and len(features) > len(MODEL_FEATURES)
    info = client.get("/model/info").json()
    assert (info["family"], info["challenger"]["family"]) == ("independent", "market-aware")
    assert info["challenger"]["input_features"] == len(features)
    assert [m["family"] for m in info["models"]] == ["independent", "market-aware"]

    got = client.post("/predict/batch", json={"matches": requests_})
    assert got.status_code == 200, got.text
    batch = got.json()["predictions"]
    variants = [p["variant"] for p in batch]
    assert set(variants) == {CHAMPION, CHALLENGER}
    for p in batch:
        assert p["model"]["family"] == ("market-aware" if p["variant"] == CHALLENGER else "independent")
        assert p["model"]["version"] == version or p["variant"] == CHAMPION
    probs = np.array([[p["probabilities"][k] for k in ("home", "draw", "away")] for p in batch])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-9)

    # the market-aware rows are that model's numbers on its own inputs (pandas path: Snapshot.features with the
    # market ratings, pyfunc.predict), and not the independent champion's
    aware = np.array(variants) == CHALLENGER
    frame = snapshot.features(pd.DataFrame([snapshot.resolve(r["home_team"], r["away_team"], r["division"],
                                                             dt.date.fromisoformat(r["kickoff_date"]))
                                            for r in requests_]))
    model = ServedModel.load(settings.mlflow_tracking_uri, version=version, alias=CHALLENGER)
    assert model.family == "market-aware" and not model.reads_model_features
    np.testing.assert_allclose(probs[aware], model.predict(frame[aware]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(probs[~aware], served_model.predict(frame[~aware]), rtol=0, atol=1e-12)
    independent = served_model.predict(frame[aware])
    assert (np.abs(probs[aware] - independent).max(axis=1) > 1e-4).all()

    # POST /predict (the micro-batched path) and a job give the same answers, family included
    first = int(np.flatnonzero(aware)[0])
    assert 0 < aware[:20].sum() < 20
    single = client.post("/predict", json=requests_[first])
    assert single.status_code == 200, single.text
    assert single.json()["model"] == batch[first]["model"]
    assert single.json()["probabilities"] == pytest.approx(batch[first]["probabilities"], abs=1e-12)
    some = {"matches": requests_[:20]}   # both arms (checked below); the same rows as a batch: the same bits
    job = _job_result(client, some)
    assert job == client.post("/predict/batch", json=some).json()
    assert [p["model"] for p in job["predictions"]] == [p["model"] for p in batch[:20]]

    # every answer of the market-aware version is in the server's ledger, saying its family
    def recorded() -> tuple[pd.DataFrame] | None:   # flushed within TIME2BET_LEDGER_FLUSH_MS
        ledger = read_records(settings.ledger_dir)
        ours = ledger[ledger["model_version"].astype(str) == version]
        return (ours,) if len(ours) >= aware.sum() + 2 * aware[:20].sum() + 1 else None

    ours, = wait_for("the market-aware answers in the ledger", recorded)
    assert set(ours["model_family"]) == {"market-aware"} and set(ours["variant"]) == {CHALLENGER}
    ledger = read_records(settings.ledger_dir)
    champion = ledger[ledger["model_version"].astype(str) == served_model.version]
    assert len(champion) and set(champion["model_family"]) == {"independent"}
