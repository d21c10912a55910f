"""The Feast feature store (time2bet.features.feature_store) on the sample platform's warehouse: the online store
answers what the offline store answers point-in-time for the same entity and time, on SQLite and on the Redis
at 127.0.0.1:6379 (a project of its own, whose keys are deleted at the end); the repository's configuration
follows the settings (dev: file offline, SQLite online; a PostgreSQL warehouse and Redis: prod)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import numpy as np
import pandas as pd
import pytest

from time2bet.features import feature_store as fs
from time2bet.warehouse.client import Warehouse

LATER = dt.timedelta(days=7)   # the second version's rows are valid a week after the first's


def _settings(settings, tmp_path, online: str):
    return dataclasses.replace(settings, feast_dir=tmp_path / "feast", feast_online_store=online,
                               feast_project=f"t2b_test_{uuid.uuid4().hex[:12]}")


def _second_version(first: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """A later export: every number moved (so a lookup that mixed the versions up would show), valid a week on."""
    later = {}
    for view, frame in first.items():
        frame = frame.copy()
        if view != fs.MATCH_VIEW:
            for column in fs.FLOAT_FEATURES[view]:
                frame[column] = frame[column] + 1.0
            frame[fs.VALID_FROM] = frame[fs.VALID_FROM] + LATER
            frame[fs.EXPORTED_AT] = frame[fs.EXPORTED_AT] + dt.timedelta(seconds=1)
        later[view] = frame
    return later


@pytest.fixture(params=["sqlite", "redis"])
def materialized(request, settings, tmp_path):
    """A Feast repository of the platform with two versions offline and the newest materialized online."""
    feast_settings = _settings(settings, tmp_path, request.param)
    store = fs.open_store(feast_settings)
    fs.apply(store, feast_settings)
    warehouse = Warehouse.from_url(settings.warehouse_url)
    first = fs.state_frames(warehouse)
    second = _second_version(first)
    fs.write_offline(feast_settings, warehouse, first)
    fs.write_offline(feast_settings, warehouse, second)
    fs.materialize(store, second[fs.FORM_VIEW][fs.VALID_FROM].max().to_pydatetime() + dt.timedelta(seconds=1))
    try:
        yield store, first, second
    finally:
        store.teardown()
        if request.param == "redis":
            import redis

            client = redis.Redis.from_url(settings.redis_url)
            assert not list(client.scan_iter(f"*{feast_settings.feast_project}".encode())), "keys left in Redis"
            client.close()


def _offline(store, view: str, keys: list[str], at: pd.Timestamp) -> pd.DataFrame:
    key = fs.KEYS[view]
    entities = pd.DataFrame({key: keys, "event_timestamp": [at] * len(keys)})
    frame = store.get_historical_features(entity_df=entities, features=fs.feature_refs(view)).to_df()
    return frame.set_index(key).reindex(keys)


def _online(store, view: str, keys: list[str]) -> pd.DataFrame:
    key = fs.KEYS[view]
    rows = store.get_online_features(features=fs.feature_refs(view), entity_rows={key: keys}).to_dict()
    return pd.DataFrame(rows).set_index(key)


def _numbers(frame: pd.DataFrame, view: str) -> np.ndarray:
    return frame[list(fs.FLOAT_FEATURES[view])].astype("float64").to_numpy()


@pytest.mark.parametrize("view", fs.ONLINE_VIEWS)
def test_online_equals_offline_point_in_time(materialized, view):
    store, first, second = materialized
    key = fs.KEYS[view]
    keys = list(first[view][key])
    assert keys, f"the platform has no {view} rows"
    valid_from = first[view][fs.VALID_FROM].iloc[0]
    online = _online(store, view, keys)
    now = _offline(store, view, keys, valid_from + LATER + dt.timedelta(hours=1))
    then = _offline(store, view, keys, valid_from + dt.timedelta(hours=1))
    before = _offline(store, view, keys, valid_from - dt.timedelta(hours=1))
    # online: the newest version, as the offline store answers for a time after it; bit for bit
    assert np.array_equal(_numbers(online, view), _numbers(now, view), equal_nan=True)
    assert np.array_equal(_numbers(now, view), _numbers(second[view].set_index(key).reindex(keys), view), equal_nan=True)
    for column in fs.TEXT_FEATURES[view]:
        assert list(online[column]) == list(now[column]) == list(second[view][column])
    # point in time: between the versions the first one, before it nothing
    assert np.array_equal(_numbers(then, view), _numbers(first[view].set_index(key).reindex(keys), view), equal_nan=True)
    assert before[list(fs.FLOAT_FEATURES[view])].isna().all().all()


def test_online_state_reads_absent_entities_as_missing(materialized):
    """A team without a row and a pair that never met come back as NaN, as the snapshot's reindex gives them."""
    store, first, second = materialized
    team = first[fs.FORM_VIEW]["team_id"].iloc[0]
    state = fs.online_state(store, [team, "no-such-team"], ["no-such|pair"])
    assert state["form"].loc["no-such-team"].drop("previous_match_date").isna().all()
    assert state["form"].loc[team, "matches_played"] == second[fs.FORM_VIEW].set_index("team_id").loc[team, "matches_played"]
    assert state["team_state"].set_index("team_id").loc["no-such-team", ["elo", "pi_home", "pi_away"]].isna().all()
    assert state["head_to_head"].isna().all().all()


def test_repository_configuration_follows_the_settings(settings, tmp_path):
    dev = fs.repo_config(_settings(settings, tmp_path, "sqlite"))
    assert dev["offline_store"] == {"type": "file"}
    assert dev["online_store"] == {"type": "sqlite", "path": str(tmp_path / "feast" / "online.db")}
    prod = fs.repo_config(dataclasses.replace(
        _settings(settings, tmp_path, "redis"), redis_url="redis://redis.internal:6380/2",
        warehouse_url="postgresql://time2bet@db.internal:5433/warehouse"))
    assert prod["offline_store"] == {"type": "postgres", "host": "db.internal", "port": 5433, "database": "warehouse",
                                     "db_schema": "feast", "user": "time2bet", "password": "${PGPASSWORD}",
                                     "sslmode": "prefer"}
    assert prod["online_store"] == {"type": "redis", "connection_string": "redis.internal:6380,db=2"}
    written = fs.write_repo(_settings(settings, tmp_path, "sqlite")) / "feature_store.yaml"
    assert "online.db" in written.read_text()
