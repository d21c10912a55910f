"""Resources of the ML area: the MLflow run of a Dagster run (dagster-mlflow), the model registry, the folder of
versioned dataset snapshots, the promotion gate's thresholds, and the shared warehouse resource of
``time2bet_assets.lib``."""

from pathlib import Path

import dagster as dg
from dagster_mlflow import end_mlflow_on_run_finished, mlflow_tracking
from dagster_mlflow.resources import CONFIG_SCHEMA as MLFLOW_TRACKING_CONFIG

from time2bet.serving_contract import DEFAULT_FAMILY, MODEL_NAME
from time2bet.settings import Settings
from time2bet_assets.lib.ledger import ledger_resource
from time2bet_assets.lib.warehouse import warehouse_resource


@dg.resource(config_schema={**MLFLOW_TRACKING_CONFIG, "artifact_location": dg.Field(str)},
             description="dagster-mlflow's mlflow_tracking: one MLflow run per Dagster run, tagged dagster_run_id, "
                         "ended by the end_mlflow_on_run_finished hook")
def mlflow_run(context: dg.InitResourceContext):
    """dagster-mlflow's ``mlflow_tracking``, its experiment created first where our artifacts go: its
    ``set_experiment`` would create it with MLflow's default, ./mlruns under the working directory (docs/adr/0005)."""
    from time2bet.mlflow_store import experiment_id, use_tracking

    config = context.resource_config
    use_tracking(config["mlflow_tracking_uri"])
    experiment_id(config["experiment_name"], config["artifact_location"])
    yield from mlflow_tracking.resource_fn(context)


def end_mlflow_run_unless_hooked(context: dg.AssetExecutionContext) -> None:
    """End the Dagster run's MLflow run now when no ``end_mlflow_on_run_finished`` hook will: the hook exists only on
    the jobs that declare it (train_and_promote), not on the implicit job of an ad-hoc materialization (the UI's
    Materialize, ``dg.materialize``), where the run would stay RUNNING and active in the process (docs/adr/0005)."""
    import mlflow

    if end_mlflow_on_run_finished not in context.job_def.hook_defs:
        mlflow.end_run()


class ModelRegistryResource(dg.ConfigurableResource):
    """MLflow's model registry (the tracking store: local SQLite by default) and the registered model's name; the
    experiment and artifact location of the training runs not made by ``mlflow_run`` (the baseline fallback's); the
    configured model family (``model.family``), whose best version holds ``champion``, trained unless the run's
    config of candidate_model names another (time2bet.ml.registry.family_aliases)."""

    tracking_uri: str
    artifact_location: str
    model_name: str = MODEL_NAME
    experiment: str = MODEL_NAME
    family: str = DEFAULT_FAMILY


class DatasetStoreResource(dg.ConfigurableResource):
    """Immutable training-dataset snapshots, one Parquet file per data version."""

    root: str

    def path(self, name: str, version: str) -> Path:
        folder = Path(self.root) / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{version}.parquet"


class RetrainingResource(dg.ConfigurableResource):
    """The retraining sensor's thresholds (time2bet.monitoring.retraining.RetrainingPolicy, from Settings), the
    monitoring folder whose live-quality scoreboard it reads (time2bet.scoreboard_store; never the warehouse), and
    the registry that says which version is champion (``tracking_uri`` None: not asked)."""

    monitoring_dir: str
    tracking_uri: str | None = None
    model_name: str = MODEL_NAME
    every_days: float = 7.0
    feature_drift_share: float = 0.5
    on_prediction_drift: bool = True
    on_target_drift: bool = True
    live_logloss_margin: float = 0.02
    min_matches: int = 100

    def policy(self):
        from time2bet.monitoring.retraining import RetrainingPolicy

        return RetrainingPolicy(every_days=self.every_days, feature_drift_share=self.feature_drift_share,
                                on_prediction_drift=self.on_prediction_drift, on_target_drift=self.on_target_drift,
                                live_logloss_margin=self.live_logloss_margin, min_matches=self.min_matches)

    def champion_version(self) -> str | None:
        """The registry's champion version now (None: no registry given, no model or no champion yet)."""
        from mlflow.exceptions import MlflowException

        from time2bet.ml.registry import alias_version
        from time2bet.mlflow_store import registry_client
        from time2bet.serving_contract import CHAMPION

        if self.tracking_uri is None:
            return None
        try:
            return alias_version(registry_client(self.tracking_uri), self.model_name, CHAMPION)
        except MlflowException:
            return None

    @classmethod
    def from_settings(cls, settings: Settings) -> "RetrainingResource":
        from time2bet.monitoring.retraining import RetrainingPolicy

        policy = RetrainingPolicy.from_settings(settings)
        return cls(monitoring_dir=str(settings.monitoring_dir), tracking_uri=settings.mlflow_tracking_uri,
                   model_name=settings.model_name, every_days=policy.every_days,
                   feature_drift_share=policy.feature_drift_share, on_prediction_drift=policy.on_prediction_drift,
                   on_target_drift=policy.on_target_drift, live_logloss_margin=policy.live_logloss_margin,
                   min_matches=policy.min_matches)


class CandidateHyperparameters(dg.ConfigurableResource):
    """The candidates' hyper-parameters per candidate (conf/model; time2bet.ml.training.hyperparameters_of)."""

    values: dict


class GatePolicy(dg.ConfigurableResource):
    """Promotion gate thresholds (see time2bet.ml.promotion_gate.promotion_gate)."""

    tolerance: float = 0.002
    max_ece: float = 0.05
    n_folds: int = 3


def ml_resources(settings: Settings) -> dict[str, dg.ConfigurableResource | dg.ResourceDefinition]:
    return {
        "mlflow": mlflow_run.configured({"experiment_name": MODEL_NAME,   # the training runs' experiment
                                         "mlflow_tracking_uri": settings.mlflow_tracking_uri,
                                         "artifact_location": settings.mlflow_artifacts}),
        "registry": ModelRegistryResource(tracking_uri=settings.mlflow_tracking_uri,
                                          artifact_location=settings.mlflow_artifacts, model_name=settings.model_name,
                                          family=settings.model_family),
        "datasets": DatasetStoreResource(root=str(settings.home / "datasets")),
        "gate": GatePolicy(**(settings.gate_policy or {})),
        "hyperparameters": CandidateHyperparameters(values={name: dict(params) for name, params in
                                                            (settings.hyperparameters or {}).items()
                                                            if isinstance(params, dict)}),
        "retraining": RetrainingResource.from_settings(settings),
        "warehouse": warehouse_resource(settings),
        "ledger": ledger_resource(settings),
    }
