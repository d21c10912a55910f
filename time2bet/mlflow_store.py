"""The MLflow store a process talks to: one tracking store that is also the model registry.

Floor layer, so that the service loads registered models without importing the training code."""

from __future__ import annotations

import mlflow
from mlflow import MlflowClient


def use_tracking(tracking_uri: str) -> None:
    """Point this process's MLflow client, and the registry (same store), at ``tracking_uri``."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)


def registry_client(tracking_uri: str) -> MlflowClient:
    """A client of this store's runs *and* registry, and the process pointed at it (pyfunc loading of models:/
    URIs reads the process-wide URIs). ``MlflowClient(uri)`` alone would use a registry URI set earlier in the
    process, say by a training run on another store."""
    use_tracking(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def experiment_id(name: str, artifact_location: str | None = None) -> str:
    """The id of experiment ``name`` in the current store, created with ``artifact_location`` if it is new (MLflow's
    own ``set_experiment`` would put the artifacts of a new experiment in ./mlruns under the working directory)."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(name, artifact_location=artifact_location)
