"""The registered model a worker serves: ``models:/<name>@champion`` from the MLflow registry, loaded once."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from time2bet.ml.training import model_input

DEFAULT_MODEL_NAME = "match_outcome"   # = time2bet.ml.registry.DEFAULT_NAME
ALIAS = "champion"
OUTCOMES = ("home", "draw", "away")    # the model's probability columns, in order (H/D/A)


@dataclass
class ServedModel:
    name: str
    alias: str
    version: str
    run_id: str | None
    data_version: str
    metrics: dict[str, float]
    input_features: list[str]
    loaded_at: dt.datetime
    pyfunc: object

    @classmethod
    def load(cls, tracking_uri: str, name: str = DEFAULT_MODEL_NAME, alias: str = ALIAS) -> ServedModel:
        import mlflow
        from mlflow import MlflowClient

        mlflow.set_tracking_uri(tracking_uri)
        client = MlflowClient(tracking_uri)
        mv = client.get_model_version_by_alias(name, alias)
        # the version itself (not the alias) so a promotion during the load cannot mix two versions
        pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}")
        metrics: dict[str, float] = {}
        if mv.run_id:
            try:
                metrics = {k: float(v) for k, v in client.get_run(mv.run_id).data.metrics.items()}
            except Exception:  # noqa: BLE001 - a deleted run leaves the model servable
                metrics = {}
        return cls(
            name=name, alias=alias, version=str(mv.version), run_id=mv.run_id,
            data_version=mv.tags.get("data_version", ""), metrics=metrics,
            input_features=list(pyfunc.metadata.get_input_schema().input_names()),
            loaded_at=dt.datetime.now(dt.UTC), pyfunc=pyfunc,
        )

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """(n, 3) H/D/A probabilities for feature rows (extra columns are ignored)."""
        if len(features) == 0:
            return np.empty((0, 3))
        probs = pd.DataFrame(self.pyfunc.predict(model_input(features, self.input_features))).to_numpy(dtype=float)
        if probs.shape != (len(features), 3):
            raise RuntimeError(f"model returned shape {probs.shape}, expected ({len(features)}, 3)")
        return probs
