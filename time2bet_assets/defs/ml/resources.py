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
        "warehouse": warehouse_resource(settings),
        "ledger": ledger_resource(settings),
    }
