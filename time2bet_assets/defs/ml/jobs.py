"""Jobs of the ML area: training and promotion, predictions of the upcoming fixtures, rollback of the champion."""

import dagster as dg

from time2bet_assets.defs.ml.assets import batch_predictions, candidate_model, registered_model, training_dataset
from time2bet_assets.defs.ml.goals import goals_model
from time2bet_assets.defs.ml.resources import ModelRegistryResource, end_mlflow_on_run_finished

# the serving area's export, named by key: the service picks the new predictions up without a restart
SERVING_SNAPSHOT = dg.AssetKey(["serving_snapshot"])
REGISTERED_MODEL = registered_model.key

train_and_promote_job = dg.define_asset_job(
    "train_and_promote",
    selection=dg.AssetSelection.assets(training_dataset, candidate_model, registered_model, goals_model,
                                       batch_predictions, SERVING_SNAPSHOT),
    description="Snapshot the training dataset, train and log a candidate, register it, gate it, predict fixtures, "
                "export the serving snapshot; fit, register and gate the goals model (the service's markets).",
    # dagster-mlflow: the run's MLflow run (the `mlflow` resource's) ends FINISHED after the last step, FAILED at a
    # failed one
    hooks={end_mlflow_on_run_finished},
)

predict_upcoming_job = dg.define_asset_job(
    "predict_upcoming",
    selection=dg.AssetSelection.assets(batch_predictions, SERVING_SNAPSHOT),
    description="Predict the upcoming fixtures with the current champion (and challenger), sealing them in the "
                "prediction ledger, and export the serving snapshot: after new features, without retraining.",
)


class RollbackConfig(dg.Config):
    """Why the champion is rolled back: recorded on the restored version and in the registry's audit trail."""

    reason: str = "manual rollback (Dagster job rollback_champion)"


@dg.op(description="Give `champion` back to the version the current champion replaced (time2bet.ml.registry.rollback, "
                   "as `time2bet rollback`); the service follows without a restart.")
def rollback_champion_op(context: dg.OpExecutionContext, config: RollbackConfig,
                         registry: ModelRegistryResource) -> str:
    from time2bet.ml.registry import alias_version, rollback
    from time2bet.mlflow_store import registry_client
    from time2bet.serving_contract import CHAMPION

    before = alias_version(registry_client(registry.tracking_uri), registry.model_name, CHAMPION)
    try:
        version = rollback(registry.model_name, config.reason, tracking_uri=registry.tracking_uri)
    except LookupError as exc:
        raise dg.Failure(description=str(exc)) from exc
    context.log.info(f"{registry.model_name} champion rolled back from v{before} to v{version}: {config.reason}")
    # on the registered_model asset's page, beside the gate's decisions
    context.log_event(dg.AssetObservation(REGISTERED_MODEL, metadata={
        "rollback": f"champion v{before} -> v{version}", "reason": config.reason, "model_version": version}))
    return version


@dg.job(name="rollback_champion", description="Roll the champion back to the version it replaced (config: reason); "
                                               "the Dagster twin of `time2bet rollback`.")
def rollback_champion_job():
    rollback_champion_op()
