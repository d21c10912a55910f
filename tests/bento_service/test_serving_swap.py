"""Over HTTP: hot swap of the champion, A/B with a challenger, a failed load -- against the session's server
(which polls the registry every second and sends half the matches to a `challenger` when one exists).

The module moves the registry's aliases and puts them back (and waits until the server serves the original
champion alone again), so the other modules see the platform as built whatever the order."""

from __future__ import annotations

import datetime as dt
import threading
import time

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bento_service.model import assign_variant
from tests.bento_service.polling import wait_for
from time2bet.serving_contract import CHALLENGER, CHAMPION

NAME = "match_outcome"
SHARE = 0.5   # = conftest.CHALLENGER_SHARE


def samples(client, metric: str) -> dict[frozenset, float]:
    """{frozenset(labels.items()): value} of one metric family in /metrics."""
    out = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == metric:
                out[frozenset(s.labels.items())] = s.value
    return out


def value(client, metric: str, **labels) -> float:
    return samples(client, metric).get(frozenset(labels.items()), 0.0)


@pytest.fixture(scope="module")
def registry(settings, client):
    """MlflowClient + the champion as built; restores champion and (no) challenger at the end."""
    from time2bet.ml.registry import promote
    from time2bet.mlflow_store import registry_client

    uri = settings.mlflow_tracking_uri
    mc = registry_client(uri)
    original = mc.get_model_version_by_alias(NAME, CHAMPION)
    assert CHALLENGER not in mc.get_registered_model(NAME).aliases, "the platform left a challenger alias"
    yield mc, original
    if CHALLENGER in mc.get_registered_model(NAME).aliases:
        mc.delete_registered_model_alias(NAME, CHALLENGER)
    if str(mc.get_model_version_by_alias(NAME, CHAMPION).version) != str(original.version):
        promote(NAME, str(original.version), "restore after the serving swap tests", tracking_uri=uri)

    def restored() -> bool:
        info = client.get("/model/info").json()
        return info["version"] == str(original.version) and info["challenger"] is None

    wait_for("the original champion alone again", restored)


def copy_of(mc, mv, description: str) -> str:
    """A new version of the same model (same source and run), as a retrain of identical data would give."""
    new = mc.create_model_version(NAME, mv.source, run_id=mv.run_id, tags=dict(mv.tags), description=description,
                                  model_id=getattr(mv, "model_id", None))
    return str(new.version)


@pytest.fixture(scope="module")
def body(batch_features) -> dict:
    r = batch_features.iloc[0]
    return {"home_team": r.home_team, "away_team": r.away_team, "division": r.division,
            "kickoff_date": pd.Timestamp(r.match_date).date().isoformat()}


def test_champion_hot_swap_under_load(client, server_url, registry, settings, body):
    from time2bet.ml.registry import promote

    mc, _ = registry
    current = mc.get_model_version_by_alias(NAME, CHAMPION)
    assert client.get("/model/info").json()["version"] == (old := str(current.version))
    new = copy_of(mc, current, "hot swap test")
    successes_before = value(client, "time2bet_model_swaps_total", outcome="success", variant=CHAMPION)
    results: list[tuple[int, str | None]] = []
    started, stop = threading.Event(), threading.Event()

    def stream():   # sequential requests until told to stop, then 20 more; at most 5000 / 120 s
        deadline, after_stop = time.monotonic() + 120, 0
        with httpx.Client(base_url=server_url, timeout=30) as c:
            while len(results) < 5000 and after_stop < 20 and time.monotonic() < deadline:
                try:
                    r = c.post("/predict", json=body)
                    results.append((r.status_code, r.json()["model"]["version"] if r.status_code == 200 else r.text))
                except httpx.HTTPError as exc:
                    results.append((0, repr(exc)))
                started.set()
                after_stop += stop.is_set()

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    try:
        assert started.wait(30), "no /predict answered"
        promote(NAME, new, "hot swap test", tracking_uri=settings.mlflow_tracking_uri)
        wait_for(f"/model/info to report v{new}", lambda: client.get("/model/info").json()["version"] == new)
    finally:
        stop.set()
        thread.join(timeout=150)
    assert not thread.is_alive()
    failed = [r for r in results if r[0] != 200]
    assert not failed, failed[:5]
    versions = [v for _, v in results]
    assert versions[0] == old and versions[-1] == new
    switch = versions.index(new)
    assert set(versions[:switch]) == {old} and set(versions[switch:]) == {new}   # one swap, never back
    assert value(client, "time2bet_model_swaps_total", outcome="success", variant=CHAMPION) > successes_before
    assert value(client, "time2bet_model_info", version=new, variant=CHAMPION) == 1
    assert value(client, "time2bet_model_info", version=old, variant=CHAMPION) == 0


def test_ab_split_by_match_over_http(client, registry, snapshot, body):
    mc, original = registry
    champion = client.get("/model/info").json()["version"]
    challenger = copy_of(mc, original, "A/B test challenger")
    mc.set_registered_model_alias(NAME, CHALLENGER, challenger)

    def with_challenger() -> dict | None:
        info = client.get("/model/info").json()
        return info if info["challenger"] else None

    info = wait_for("a challenger in /model/info", with_challenger)
    assert info["challenger"]["version"] == challenger and info["challenger"]["alias"] == CHALLENGER
    assert [m["version"] for m in info["models"]] == [champion, challenger] and info["challenger_share"] == SHARE

    first = dt.date.fromisoformat(body["kickoff_date"])
    matches = [{**body, "kickoff_date": (first + dt.timedelta(days=d)).isoformat()} for d in range(40)]
    seen = set()
    for m in matches:
        match_id = snapshot.resolve(m["home_team"], m["away_team"], m["division"],
                                    dt.date.fromisoformat(m["kickoff_date"]))["match_id"]
        expected = assign_variant(match_id, SHARE)
        for _ in range(2):   # the same match twice: the same variant
            got = client.post("/predict", json=m)
            assert got.status_code == 200, got.text
            p = got.json()
            assert p["variant"] == expected == p["model"]["alias"]
            assert p["model"]["version"] == (champion if expected == CHAMPION else challenger)
        seen.add(expected)
    assert seen == {CHAMPION, CHALLENGER}   # 40 distinct matches at share 0.5

    batch = client.post("/predict/batch", json={"matches": matches})
    assert batch.status_code == 200, batch.text
    singles = [client.post("/predict", json=m).json() for m in matches]
    assert [p["variant"] for p in batch.json()["predictions"]] == [p["variant"] for p in singles]
    for b, s in zip(batch.json()["predictions"], singles, strict=True):
        assert b["probabilities"] == pytest.approx(s["probabilities"], abs=1e-12)

    stored = client.get(f"/predict/{snapshot.predictions['match_id'].iloc[0]}")
    assert stored.status_code == 200 and stored.json()["variant"] in (CHAMPION, CHALLENGER)
    predictions = samples(client, "time2bet_predictions_total")
    assert {dict(k)["variant"] for k in predictions} >= {CHAMPION, CHALLENGER}
    assert value(client, "time2bet_model_info", version=challenger, variant=CHALLENGER) == 1


def test_failed_load_keeps_the_served_model(client, registry, settings, body, tmp_path):
    from time2bet.ml.registry import promote, rollback

    mc, _ = registry
    serving = client.get("/model/info").json()["version"]
    broken = str(mc.create_model_version(NAME, str(tmp_path / "no-such-model"), tags={"data_version": "x"}).version)
    failures = value(client, "time2bet_model_swaps_total", outcome="failure", variant=CHAMPION)
    promote(NAME, broken, "a version that cannot load", tracking_uri=settings.mlflow_tracking_uri)
    try:
        wait_for("a counted failure", lambda: value(client, "time2bet_model_swaps_total", outcome="failure",
                                                    variant=CHAMPION) > failures)
        assert client.get("/model/info").json()["version"] == serving
        got = client.post("/predict", json=body)
        assert got.status_code == 200, got.text
        assert value(client, "time2bet_model_info", version=serving, variant=CHAMPION) == 1
    finally:
        rollback(NAME, "back from the broken version", tracking_uri=settings.mlflow_tracking_uri)
    assert str(mc.get_model_version_by_alias(NAME, CHAMPION).version) == serving
