"""TIME2BET_FEATURES=feast: the service's feature rows come from Feast's online store (materialized by the Dagster
asset feast_online_features) and equal the snapshot's, bit for bit, so the probabilities are the same: in process
on every ordered pair of teams of every division at three dates (season starts included), on the SQLite and the
Redis online store, and through a real `bentoml serve` configured for Feast."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import uuid
from types import SimpleNamespace

import dagster as dg
import numpy as np
import orjson
import pytest

from bento_service.online_features import FeastFeatures
from bento_service.snapshot import Snapshot
from time2bet.features.feature_store import open_store
from time2bet.serving_contract import MODEL_FEATURES, RATING_FEATURES
from time2bet.settings import Settings
from time2bet_assets.defs.features.feast import FeastRepoResource, feast_online_features
from time2bet_assets.lib.warehouse import WarehouseResource

TEAMS_PER_DIVISION = 8
# days after the latest played match: soon (rest days under the cap), later, and in the next season (season start)
DATE_OFFSETS = (dt.timedelta(days=3), dt.timedelta(days=60))


def _materialized(platform_env: dict[str, str], folder, **extra: str) -> dict[str, str]:
    """The platform's service environment for Feast, its state materialized by the Dagster asset."""
    env = {**platform_env, "TIME2BET_FEATURES": "feast", "TIME2BET_FEAST_DIR": str(folder / "repo"), **extra}
    settings = Settings.from_env(env)
    with dg.instance_for_test() as instance:
        result = dg.materialize([feast_online_features], instance=instance, resources={
            "warehouse": WarehouseResource(url=settings.warehouse_url),
            "feast_repo": FeastRepoResource.from_settings(settings)})
    assert result.success
    return env


@pytest.fixture(scope="module")
def feast_env(platform_env, tmp_path_factory) -> dict[str, str]:
    """Feast with its development online store (SQLite)."""
    return _materialized(platform_env, tmp_path_factory.mktemp("feast"))


@pytest.fixture(scope="module")
def redis_feast_env(platform_env, tmp_path_factory):
    """Feast with its production online store, Redis (the machine's), under a project of this test's own whose
    keys are deleted afterwards."""
    env = _materialized(platform_env, tmp_path_factory.mktemp("feast-redis"), TIME2BET_FEAST_ONLINE_STORE="redis",
                        TIME2BET_FEAST_PROJECT=f"t2b_serving_{uuid.uuid4().hex[:12]}")
    yield env
    settings = Settings.from_env(env)
    open_store(settings).teardown()
    import redis

    client = redis.Redis.from_url(settings.redis_url)
    assert not list(client.scan_iter(f"*{settings.feast_project}".encode())), "keys left in Redis"
    client.close()


def _requests(snapshot: Snapshot) -> list[SimpleNamespace]:
    """Every ordered pair of the first teams of each division, each at the three dates (consecutive)."""
    as_of = snapshot.features_as_of
    dates = [as_of + offset for offset in DATE_OFFSETS] + [dt.date(as_of.year + (as_of.month >= 7), 8, 23)]
    requests = []
    for division, country in sorted(snapshot.divisions.items()):
        names = sorted(snapshot.teams.loc[snapshot.teams["country"] == country, "team"])[:TEAMS_PER_DIVISION]
        for (home, away), date in itertools.product(itertools.permutations(names, 2), dates):
            requests.append(SimpleNamespace(home_team=home, away_team=away, division=division, kickoff_date=date))
    return requests


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def on_feast(request) -> Snapshot:
    """A snapshot of its own (the session's stays on its tables) whose feature rows come from Feast, on either
    online store."""
    settings = Settings.from_env(request.getfixturevalue("feast_env" if request.param == "sqlite"
                                                         else "redis_feast_env"))
    snapshot = Snapshot.load(settings.warehouse_url)
    snapshot.online = FeastFeatures.from_settings(settings)
    return snapshot


def test_feast_rows_and_probabilities_equal_the_snapshots(on_feast, snapshot, served_model):
    requests = _requests(snapshot)
    from_snapshot = snapshot.feature_matrix(snapshot.resolve_many(requests))
    from_feast = on_feast.feature_matrix(on_feast.resolve_many(requests))
    assert from_snapshot.dtype == from_feast.dtype == np.float64
    assert np.array_equal(from_snapshot, from_feast, equal_nan=True)
    ratings = from_feast[:, -len(RATING_FEATURES):]
    assert (ratings != ratings[0]).any(), "every pair rated alike: nothing was compared"
    # requests come as (pair, dates): the date moved the rest days (so rows were dated, not only looked up)
    rest = from_feast[:, list(MODEL_FEATURES).index("home_rest_days")]
    assert (rest[0::3] != rest[1::3]).any(), "every date gave the same rest days"
    assert np.array_equal(served_model.predict_matrix(from_snapshot), served_model.predict_matrix(from_feast))


def test_concurrent_requests_share_one_lookup_and_get_their_own_rows(on_feast, snapshot):
    """POST /predict's way (scoring.score_batched): requests waiting together are looked up together."""
    requests = _requests(snapshot)[:90]
    features = on_feast.online
    before = features.lookups

    async def all_at_once():
        return await asyncio.gather(*(features.coalesced(on_feast, on_feast.resolve_many([r])) for r in requests))

    rows = asyncio.run(all_at_once())
    assert features.lookups - before == 1
    for request, row in zip(requests, rows, strict=True):
        assert np.array_equal(row, snapshot.feature_matrix(snapshot.resolve_many([request])), equal_nan=True)


def test_a_service_on_feast_answers_as_the_snapshot(feast_env, snapshot, served_model, start_bento_server):
    """One real `bentoml serve` with TIME2BET_FEATURES=feast: its probabilities are those of the snapshot's rows
    through the same champion, exactly (JSON floats round-trip float64)."""
    requests = _requests(snapshot)[::7]
    expected = served_model.predict_matrix(snapshot.feature_matrix(snapshot.resolve_many(requests)))
    server = start_bento_server(feast_env)
    import httpx

    body = {"matches": [{"home_team": r.home_team, "away_team": r.away_team, "division": r.division,
                         "kickoff_date": r.kickoff_date.isoformat()} for r in requests]}
    response = httpx.post(f"{server.url}/predict/batch", json=body, timeout=60)
    assert response.status_code == 200, response.text
    answered = [[p["probabilities"][o] for o in ("home", "draw", "away")]
                for p in orjson.loads(response.content)["predictions"]]
    assert np.array_equal(np.array(answered), expected)
    # POST /predict, one at a time (one row per model call: a model call's float rounding may depend on its rows;
    # the coalesced lookups of concurrent requests are checked in process above)
    x = snapshot.feature_matrix(snapshot.resolve_many(requests[:24]))
    with httpx.Client(base_url=server.url, timeout=60) as client:
        singles = [client.post("/predict", json=m) for m in body["matches"][:24]]
    assert all(r.status_code == 200 for r in singles), [r.text for r in singles if r.status_code != 200][:1]
    answered = [[r.json()["probabilities"][o] for o in ("home", "draw", "away")] for r in singles]
    assert np.array_equal(np.array(answered), np.vstack([served_model.predict_matrix(row[None]) for row in x]))
