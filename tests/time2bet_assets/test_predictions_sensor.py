"""predictions_on_new_features: predict_upcoming is requested when the upcoming fixtures' features were rebuilt, or
the champion changed (a training, a rollback), since the latest batch_predictions, and not while a run that
predicts or changes the champion is under way (on a real Dagster instance: materialization and observation records,
a run record)."""

from __future__ import annotations

import dagster as dg

from time2bet_assets.defs.ml.sensors import (
    BATCH_PREDICTIONS,
    REGISTERED_MODEL,
    UPCOMING_MATCH_FEATURES,
    predictions_on_new_features,
)


def _materialized(instance, key: dg.AssetKey) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(key))


def _tick(instance):
    return predictions_on_new_features.evaluate_tick(dg.build_sensor_context(instance=instance))


def test_the_sensor_follows_the_features_and_the_champion():
    with dg.instance_for_test() as instance:
        _materialized(instance, UPCOMING_MATCH_FEATURES)
        assert "no registered model" in _tick(instance).skip_message   # the first training predicts
        _materialized(instance, REGISTERED_MODEL)
        _materialized(instance, BATCH_PREDICTIONS)                     # ... as train_and_promote does
        assert "up to date" in _tick(instance).skip_message

        _materialized(instance, UPCOMING_MATCH_FEATURES)               # a build_features run
        first = _tick(instance).run_requests
        assert len(first) == 1 and first[0].tags["time2bet/reason"] == "features rebuilt"
        assert first[0].job_name in (None, "predict_upcoming")
        assert _tick(instance).run_requests[0].run_key == first[0].run_key   # the daemon launches it once
        _materialized(instance, BATCH_PREDICTIONS)
        assert _tick(instance).skip_message

        # a rollback observes registered_model: the fixtures are predicted again with the restored champion
        instance.report_runless_asset_event(dg.AssetObservation(REGISTERED_MODEL, metadata={"rollback": "v2 -> v1"}))
        rolled = _tick(instance).run_requests
        assert rolled and rolled[0].tags["time2bet/reason"] == "champion changed"
        assert rolled[0].run_key != first[0].run_key


def test_the_sensor_waits_for_a_training_under_way():
    with dg.instance_for_test() as instance:
        for key in (UPCOMING_MATCH_FEATURES, REGISTERED_MODEL):
            _materialized(instance, key)
        instance.add_run(dg.DagsterRun(job_name="train_and_promote", run_id="a" * 36,
                                       status=dg.DagsterRunStatus.STARTED))
        assert "train_and_promote run is under way" in _tick(instance).skip_message
