"""features_on_new_data: build_features is requested when matches were loaded, or the fixtures changed content,
since the latest successful build, and not otherwise (on a real Dagster instance: materialization records and a
successful run of a job named build_features)."""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from time2bet_assets.defs.features.sensors import (
    RAW_FIXTURES,
    RAW_MATCHES,
    Latest,
    features_on_new_data,
    stale_reason,
)


def test_stale_reason():
    old, new = Latest(10.0, 1, "a"), Latest(30.0, 5, "b")
    assert stale_reason(None, None, None, None) is None
    assert stale_reason(None, old, None, None) == "never built"
    assert stale_reason(20.0, new, None, None) == "matches loaded since the last build"
    assert stale_reason(20.0, old, Latest(30.0, 6, "a"), "a") is None   # fixtures refreshed, same content
    assert stale_reason(20.0, old, Latest(30.0, 6, "b"), "a") == "fixtures changed since the last build"
    assert stale_reason(40.0, new, Latest(30.0, 6, "b"), "a") is None   # built after both


def _landed(instance, key: dg.AssetKey, version: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(key, tags={DATA_VERSION_TAG: version}))


def _build(instance) -> None:
    @dg.asset
    def features():
        return 1

    dg.Definitions(assets=[features], jobs=[dg.define_asset_job("build_features", selection=[features])]) \
        .resolve_job_def("build_features").execute_in_process(instance=instance)


def _tick(instance):
    return features_on_new_data.evaluate_tick(dg.build_sensor_context(instance=instance))


def test_the_sensor_follows_the_raw_data():
    with dg.instance_for_test() as instance:
        assert _tick(instance).skip_message                     # nothing ingested
        _landed(instance, RAW_MATCHES, "m1")
        first = _tick(instance).run_requests
        assert len(first) == 1 and first[0].tags["time2bet/reason"] == "never built"
        _build(instance)
        assert _tick(instance).skip_message                     # built after the data
        _landed(instance, RAW_FIXTURES, "f1")
        changed = _tick(instance).run_requests
        assert changed and changed[0].tags["time2bet/reason"] == "fixtures changed since the last build"
        _build(instance)
        _landed(instance, RAW_FIXTURES, "f1")                   # refreshed, the same file
        assert _tick(instance).skip_message
        _landed(instance, RAW_MATCHES, "m2")
        again = _tick(instance).run_requests
        assert again and again[0].run_key != first[0].run_key   # a new run key per new data
