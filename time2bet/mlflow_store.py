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
