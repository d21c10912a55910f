"""The goals model's asset: fitted beside the 1X2 candidate on the same training dataset, logged, registered as
``match_goals`` and gated (time2bet.ml.goals_model); the service serves its markets from ``match_goals@champion``."""

from pathlib import Path

import dagster as dg
import pandas as pd

from time2bet_assets.defs.ml.resources import ModelRegistryResource


@dg.asset(group_name="ml", kinds={"mlflow", "scipy"})
def goals_model(context: dg.AssetExecutionContext, training_dataset: str,
                registry: ModelRegistryResource) -> dg.Output[dict]:
    """Dixon-Coles per division (time decay, latest fit of the training window; the latest season held out as for
    the 1X2 gate), logged to the MLflow experiment ``match_goals`` with its held-out 1X2 and over/under 2.5
    log-loss, registered, and made ``champion`` when it is the first or not worse on over/under 2.5 than the
    champion on the same matches. A dataset where no division has enough matches for a fit registers nothing."""
    from time2bet.ml.goals_model import GOALS_MODEL_NAME
    from time2bet.ml.goals_training import train_register_and_gate

    frame = pd.read_parquet(training_dataset)
    data_version = Path(training_dataset).stem
    try:
        outcome = train_register_and_gate(frame, tracking_uri=registry.tracking_uri, data_version=data_version,
                                          artifact_location=f"{registry.artifact_location.rstrip('/')}/"
                                                            f"{GOALS_MODEL_NAME}")
    except ValueError as exc:   # too few matches: the markets stay unavailable (503 no_goals_model), 1X2 unaffected
        context.log.warning(str(exc))
        return dg.Output({"version": None, "promoted": False}, metadata={"decision": str(exc)})
    context.log.info(outcome.describe())
    return dg.Output(
        {"version": outcome.version, "promoted": outcome.promoted, "run_id": outcome.run_id},
        metadata={"model_version": outcome.version, "mlflow_run_id": outcome.run_id,
                  "decision": outcome.describe(), **{f"heldout_{k}": v for k, v in outcome.scores.items()}})
