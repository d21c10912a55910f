"""retrain_when_needed on a real Dagster instance: it follows the training, the season files, the features, the drift
report and the live-quality scoreboard as their materializations land, and says why in the run's tags."""

from __future__ import annotations

import datetime as dt
import time

import dagster as dg
import pandas as pd

from time2bet.mlflow_store import registry_client
from time2bet.scoreboard_store import write_scoreboard
from time2bet.serving_contract import CHAMPION
from time2bet_assets.defs.ml.assets import TRAINING_REASON_TAG
from time2bet_assets.defs.ml.resources import RetrainingResource
from time2bet_assets.defs.ml.sensors import (
    DRIFT_REPORT,
    FCT_MATCH_FEATURES,
    RAW_MATCHES,
    REGISTERED_MODEL,
    TRAINING_DATASET,
    TRIGGER_TAG,
    retrain_when_needed,
)


def _landed(instance, key: dg.AssetKey, partition: str | None = None, **metadata) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition, metadata=metadata))
    time.sleep(0.01)   # distinct timestamps, in order


def _trained(instance, latest_season: str) -> None:
    _landed(instance, TRAINING_DATASET, latest_season=latest_season)
    _landed(instance, REGISTERED_MODEL)


def _tick(instance, monitoring_dir, tracking_uri: str | None = None):
    context = dg.build_sensor_context(instance=instance, resources={
        "retraining": RetrainingResource(monitoring_dir=str(monitoring_dir), tracking_uri=tracking_uri)})
    return retrain_when_needed.evaluate_tick(context)


def _requested(instance, monitoring_dir, tracking_uri: str | None = None) -> dg.RunRequest:
    requests = _tick(instance, monitoring_dir, tracking_uri).run_requests
    assert requests and len(requests) == 1
    assert requests[0].tags[TRAINING_REASON_TAG].startswith(f"automatic: {requests[0].tags[TRIGGER_TAG]}: ")
    return requests[0]


def test_the_sensor_follows_new_seasons_drift_and_live_quality(tmp_path):
    with dg.instance_for_test() as instance:
        assert "no training yet" in _tick(instance, tmp_path).skip_message
        _landed(instance, RAW_MATCHES, "E0|2024-25")
        _landed(instance, FCT_MATCH_FEATURES)
        _trained(instance, "2024-25")
        assert "no trigger since the last training" in _tick(instance, tmp_path).skip_message

        # a new season's first matches: wait for their features, then retrain once for the season
        _landed(instance, RAW_MATCHES, "E0|2025-26")
        assert "wait for their features" in _tick(instance, tmp_path).skip_message
        _landed(instance, FCT_MATCH_FEATURES)
        season = _requested(instance, tmp_path)
        assert season.tags[TRIGGER_TAG] == "new season" and season.run_key == "retrain:new-season:2025-26"
        _trained(instance, "2025-26")
        assert _tick(instance, tmp_path).skip_message

        # drift of the newest week reported since the training; an older report does not count
        _landed(instance, DRIFT_REPORT, "2025-08-11", share_of_drifted_features=0.2, prediction_drift=False,
                target_drift=True)
        drift = _requested(instance, tmp_path)
        assert drift.tags[TRIGGER_TAG] == "target drift" and drift.run_key == "retrain:target-drift:2025-08-11"

        # live quality worse than the Elo-only reference, in the scoreboard written after the training: judged for
        # the registry's champion only (v2 here; v1's rows are those of a version it replaced)
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        registry = registry_client(uri)
        registry.create_registered_model("match_outcome")
        for _ in range(2):
            registry.create_model_version("match_outcome", str(tmp_path / "model"))
        registry.set_registered_model_alias("match_outcome", CHAMPION, "2")
        row = {"week": dt.date(2025, 8, 11), "window": "rolling", "model_name": "match_outcome",
               "model_version": "1", "variant": "champion", "division": "ALL", "n": 120, "log_loss": 1.02,
               "n_elo": 120, "model_log_loss_on_elo": 1.02, "elo_log_loss": 1.0, "promotion_log_loss": 1.01,
               "computed_at": pd.Timestamp.now(tz="UTC").tz_localize(None)}
        write_scoreboard(pd.DataFrame([row]), tmp_path)
        assert _requested(instance, tmp_path, uri).tags[TRIGGER_TAG] == "target drift"   # not v1's quality
        write_scoreboard(pd.DataFrame([row, {**row, "model_version": "2"}]), tmp_path)
        quality = _requested(instance, tmp_path, uri)
        assert quality.tags[TRIGGER_TAG] == "live quality" and "Elo-only reference 1.0000" in quality.tags[
            TRAINING_REASON_TAG]

        _trained(instance, "2025-26")   # the retraining ran: what came before it is no evidence any more
        assert "no trigger" in _tick(instance, tmp_path).skip_message


def test_no_second_training_while_one_is_under_way(tmp_path):
    with dg.instance_for_test() as instance:
        _landed(instance, RAW_MATCHES, "E0|2024-25")
        _landed(instance, FCT_MATCH_FEATURES)
        _trained(instance, "2023-24")
        assert _requested(instance, tmp_path).tags[TRIGGER_TAG] == "new season"
        instance.add_run(dg.DagsterRun(job_name="train_and_promote", run_id="0" * 36,
                                       status=dg.DagsterRunStatus.STARTED))
        assert _tick(instance, tmp_path).skip_message == "a train_and_promote run is under way"
