"""Resources of the ML area: MLflow (tracking + registry), the folder of versioned dataset snapshots, the promotion
gate's thresholds, and the shared warehouse resource of ``time2bet_assets.lib``."""

from pathlib import Path

import dagster as dg

from time2bet.serving_contract import MODEL_NAME
from time2bet.settings import Settings
from time2bet_assets.lib.ledger import ledger_resource
from time2bet_assets.lib.warehouse import warehouse_resource


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking server / registry (a local SQLite store by default) and the registered model's name."""

    tracking_uri: str
    artifact_location: str
    model_name: str = MODEL_NAME
    experiment: str = MODEL_NAME


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


class GatePolicy(dg.ConfigurableResource):
    """Promotion gate thresholds (see time2bet.ml.promotion_gate.promotion_gate)."""

    tolerance: float = 0.002
    max_ece: float = 0.05
    n_folds: int = 3


def ml_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "mlflow": MlflowResource(tracking_uri=settings.mlflow_tracking_uri, artifact_location=settings.mlflow_artifacts,
                                 model_name=settings.model_name),
        "datasets": DatasetStoreResource(root=str(settings.home / "datasets")),
        "gate": GatePolicy(),
        "retraining": RetrainingResource.from_settings(settings),
        "warehouse": warehouse_resource(settings),
        "ledger": ledger_resource(settings),
    }
