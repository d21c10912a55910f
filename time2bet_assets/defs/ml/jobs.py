"""Jobs of the ML area."""

import dagster as dg

from time2bet_assets.defs.ml.assets import batch_predictions, candidate_model, registered_model, training_dataset

# the serving area's export, named by key: the service picks the new predictions up without a restart
SERVING_SNAPSHOT = dg.AssetKey(["serving_snapshot"])

train_and_promote_job = dg.define_asset_job(
    "train_and_promote",
    selection=dg.AssetSelection.assets(training_dataset, candidate_model, registered_model, batch_predictions,
                                       SERVING_SNAPSHOT),
    description="Snapshot the training dataset, train and log a candidate, register it, gate it, predict fixtures, export the serving snapshot.",
)

predict_upcoming_job = dg.define_asset_job(
    "predict_upcoming",
    selection=dg.AssetSelection.assets(batch_predictions, SERVING_SNAPSHOT),
    description="Predict the upcoming fixtures with the current champion (and challenger), sealing them in the "
                "prediction ledger, and export the serving snapshot: after new features, without retraining.",
)
