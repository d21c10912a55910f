"""ML: training dataset, candidate model, registry and promotion gate, the goals model (goals.py), batch predictions;
predictions after new features and automatic retraining (sensors.py) and rollback (jobs.py)."""

import dagster as dg

from time2bet.settings import Settings
from time2bet_assets.defs.ml.assets import batch_predictions, candidate_model, registered_model, training_dataset
from time2bet_assets.defs.ml.goals import goals_model
from time2bet_assets.defs.ml.jobs import predict_upcoming_job, rollback_champion_job, train_and_promote_job
from time2bet_assets.defs.ml.resources import ml_resources
from time2bet_assets.defs.ml.sensors import predictions_on_new_features, retrain_when_needed


def ml_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[training_dataset, candidate_model, registered_model, goals_model, batch_predictions],
        jobs=[train_and_promote_job, predict_upcoming_job, rollback_champion_job],
        sensors=[predictions_on_new_features, retrain_when_needed],
        resources=ml_resources(settings),
    )
