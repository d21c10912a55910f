"""What monitoring needs to know about a registered model version, from the registry and its training run.

- the **promotion-time estimate** of its log-loss: ``gate.challenger_log_loss``, the log-loss the promotion gate
  measured on the held-out latest season (time2bet.ml.promotion_gate writes it on the version; a version registered
  without the gate has none);
- its **training window**: the rows of ``fct_match_features`` it was trained on. The version's ``data_version`` tag
  names the training-dataset snapshot (``<home>/datasets/training_dataset/<data_version>.parquet``), and the run's
  ``train_seasons`` parameter (``first..last``) the seasons of it that were trained on (the latest, held-out season
  is the gate's). Without the snapshot the seasons are read from the warehouse's ``fct_match_features``;
- its **Elo-only reference**: the rating-only model the training run fitted on that window, logged as
  ``references/elo.json`` (time2bet.ml.tracking.REFERENCE_ARTIFACT). A version trained before runs logged it gets
  the same function refitted on its training window (``time2bet.ml.training.fit_reference``), and says so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from time2bet.football import season_start_year
from time2bet.ml.tracking import REFERENCE_ARTIFACT
from time2bet.ml.training import fit_reference, reference_feature, reference_parameters, season_order
from time2bet.mlflow_store import registry_client
from time2bet.serving_contract import CHAMPION, ID_COLUMNS, MARKET_COLUMNS, MODEL_FEATURES, OUTCOME_COLUMNS, model_input
from time2bet.warehouse.client import Warehouse

TRAINING_DATASET = "training_dataset"   # the snapshots' folder under the dataset store (time2bet_assets' ml area)


@dataclass(frozen=True)
class VersionFacts:
    model_name: str
    version: str
    run_id: str | None
    data_version: str | None
    train_seasons: tuple[str, str] | None     # first and last season trained on
    held_out_season: str | None
    reference_feature: str | None
    promotion_log_loss: float | None           # gate.challenger_log_loss
    gate_window: str | None
    gate_n: int | None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def version_facts(client: MlflowClient, model_name: str, version: str) -> VersionFacts:
    mv = client.get_model_version(model_name, str(version))
    tags = mv.tags or {}
    run_id = tags.get("mlflow_run_id") or mv.run_id or None
    params, run_tags = {}, {}
    if run_id:
        try:
            run = client.get_run(run_id)
            params, run_tags = run.data.params, run.data.tags
        except MlflowException:
            run_id = None
    window = params.get("train_seasons", "")
    seasons = tuple(window.split("..", 1)) if ".." in window else None
    n = tags.get("gate.n")
    return VersionFacts(
        model_name=model_name, version=str(version), run_id=run_id,
        data_version=tags.get("data_version") or params.get("data_version") or None,
        train_seasons=seasons, held_out_season=run_tags.get("held_out_season") or None,
        reference_feature=params.get("reference_feature") or None,
        promotion_log_loss=_float(tags.get("gate.challenger_log_loss")),
        gate_window=tags.get("gate.window") or None, gate_n=int(n) if n and n.isdigit() else None,
    )


def alias_version(client: MlflowClient, model_name: str, alias: str = CHAMPION) -> str | None:
    try:
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None


def _in_window(seasons: pd.Series, window: tuple[str, str]) -> pd.Series:
    first, last = (season_start_year(s) for s in window)
    years = seasons.map(season_start_year)
    return (years >= first) & (years <= last)


def training_window(facts: VersionFacts, warehouse: Warehouse, dataset_dir: Path | str | None) -> pd.DataFrame:
    """The rows the version was trained on (see the module's docstring); empty when nothing identifies them."""
    frame = None
    if facts.data_version and dataset_dir is not None:
        snapshot = Path(dataset_dir) / TRAINING_DATASET / f"{facts.data_version}.parquet"
        if snapshot.exists():
            frame = pd.read_parquet(snapshot)
    if frame is None:
        frame = warehouse.read_sql("SELECT * FROM analytics.fct_match_features ORDER BY match_date, match_id")
        frame = frame[[c for c in (*ID_COLUMNS, *MODEL_FEATURES, *MARKET_COLUMNS, *OUTCOME_COLUMNS)
                       if c in frame.columns]]
    if facts.train_seasons:
        frame = frame[_in_window(frame["season"], facts.train_seasons)]
    elif facts.held_out_season:
        frame = frame[frame["season"] != facts.held_out_season]
    elif len(frame):   # as the ml area does: the latest season is held out
        frame = frame[frame["season"] != season_order(frame["season"])[-1]]
    return frame.reset_index(drop=True)


def logged_reference(client: MlflowClient, facts: VersionFacts) -> dict | None:
    """The Elo-only reference the version's training run logged, or None."""
    if not facts.run_id:
        return None
    import json
    import tempfile

    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(facts.run_id, REFERENCE_ARTIFACT, tmp)
            return json.loads(Path(path).read_text())
    except (MlflowException, OSError):
        return None


def elo_reference(client: MlflowClient, facts: VersionFacts,
                  window: Callable[[], pd.DataFrame] | None) -> tuple[dict | None, str]:
    """(reference parameters, where from: 'logged' by the training run, 'refitted' on the training window that
    ``window()`` returns (only called when nothing was logged), or 'none' when neither is possible)."""
    logged = logged_reference(client, facts)
    if logged is not None:
        return logged, "logged"
    window = window() if window is not None else None
    if window is None or len(window) == 0:
        return None, "none"
    feature = facts.reference_feature or reference_feature(window)
    try:
        return reference_parameters(fit_reference(window, feature), feature), "refitted"
    except ValueError:   # a window without all three outcomes
        return None, "none"


@functools.lru_cache(maxsize=8)
def _pyfunc(tracking_uri: str, model_name: str, version: str):
    import mlflow

    registry_client(tracking_uri)
    return mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")


def predict(tracking_uri: str, model_name: str, version: str, frame: pd.DataFrame) -> np.ndarray:
    """(n, 3) H/D/A probabilities of a registered version on ``frame`` (its own signature names its inputs)."""
    if len(frame) == 0:
        return np.zeros((0, 3))
    model = _pyfunc(tracking_uri, model_name, str(version))
    columns = model.metadata.get_input_schema().input_names()
    return pd.DataFrame(model.predict(model_input(frame, columns))).to_numpy(dtype="float64")
