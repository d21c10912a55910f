"""`time2bet-train` (``python -m time2bet.cli.train``): train and log a candidate from the warehouse's marts, with
the Hydra configuration (conf/train.yaml) and command-line overrides, outside Dagster.

    time2bet-train model.candidates=[xgboost] model.xgboost.learning_rate=0.05
    time2bet-train --multirun model.candidates=[logreg] model.logreg.C=0.03,0.1,0.3
    time2bet-train model.family=market-aware      # the market-aware family (time2bet.ml.families)

A sweep (Hydra's basic sweeper and launcher) logs one MLflow run per point, each a child of one parent run of the
sweep (``SweepParentRun``), so the MLflow UI shows the points side by side under it. Nothing is registered: the
registry and its promotion gate belong to the Dagster job train_and_promote.
"""

from __future__ import annotations

from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from time2bet.settings import CONF_DIR, Settings, masked, resolve_config

SWEEP_TAG = "hydra.sweep_dir"   # on the parent run of a sweep: how each point's run finds its parent


def _experiment_id(settings: Settings) -> str:
    from time2bet.mlflow_store import experiment_id, use_tracking
    from time2bet.serving_contract import MODEL_NAME

    use_tracking(settings.mlflow_tracking_uri)
    return experiment_id(MODEL_NAME, settings.mlflow_artifacts)   # the experiment of the Dagster training runs


class SweepParentRun(Callback):
    """A ``--multirun`` sweep's parent MLflow run: opened before the first point, closed after the last (FAILED if a
    point failed). The points find it by its tag ``hydra.sweep_dir``, so this holds for any launcher."""

    def __init__(self) -> None:
        self.parent_run_id: str | None = None
        self.failed = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow import MlflowClient

        settings = Settings.from_config(config)
        run = MlflowClient().create_run(_experiment_id(settings), run_name=f"sweep {config.hydra.sweep.dir}",
                                        tags={SWEEP_TAG: str(config.hydra.sweep.dir)})
        self.parent_run_id = run.info.run_id

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        from hydra.core.utils import JobStatus

        self.failed |= job_return.status == JobStatus.FAILED

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow import MlflowClient

        if self.parent_run_id:
            MlflowClient().set_terminated(self.parent_run_id, "FAILED" if self.failed else "FINISHED")


def _sweep_parent_run_id(settings: Settings) -> str | None:
    """The parent run of the sweep this job is a point of (None outside ``--multirun``)."""
    import mlflow

    hydra_config = HydraConfig.get()
    if hydra_config.mode != RunMode.MULTIRUN:
        return None
    runs = mlflow.search_runs([_experiment_id(settings)], f"tags.`{SWEEP_TAG}` = '{hydra_config.sweep.dir}'",
                              output_format="list", max_results=1)
    if not runs:
        raise RuntimeError(f"no parent MLflow run tagged {SWEEP_TAG}={hydra_config.sweep.dir}: is the callback "
                           "SweepParentRun configured (conf/train.yaml)?")
    return runs[0].info.run_id


def train(cfg: DictConfig) -> float:
    """One training: the played matches' marts, every season but the latest (held out, as for the gate), the
    candidates of ``model.candidates`` with their hyper-parameters, walk-forward folds from ``gate.n_folds``; logged
    to MLflow (a child of the sweep's parent run in a sweep). Returns the chosen candidate's walk-forward log-loss."""
    from mlflow import MlflowClient

    from time2bet.ml.families import platform_features, with_platform_columns
    from time2bet.ml.tracking import log_training_run
    from time2bet.ml.training import held_out_split, train_candidate
    from time2bet.serving_contract import ID_COLUMNS, MARKET_COLUMNS, MODEL_FEATURES, MODEL_NAME, OUTCOME_COLUMNS
    from time2bet.warehouse.client import Warehouse
    from time2bet_assets.defs.ml.assets import PLAYED_MATCHES_SQL, _dataset_version

    settings = Settings.from_config(cfg)
    frame = Warehouse.from_url(settings.warehouse_url).read_sql(PLAYED_MATCHES_SQL)
    frame = with_platform_columns(frame[[*ID_COLUMNS, *MODEL_FEATURES, *MARKET_COLUMNS, *OUTCOME_COLUMNS]],
                                  settings.model_family)
    train_window, _, held_out = held_out_split(frame)
    n_folds = min(settings.gate_policy["n_folds"], train_window["season"].nunique() - 2)
    if n_folds < 1:
        raise ValueError("walk-forward validation needs at least 4 seasons; the warehouse has "
                         f"{frame['season'].nunique()}")
    result = train_candidate(train_window, platform_features(settings.model_family), n_folds=n_folds,
                             candidates=list(settings.hyperparameters["candidates"]),
                             hyperparameters=settings.hyperparameters, family=settings.model_family)
    overrides = " ".join(HydraConfig.get().overrides.task)
    logged = log_training_run(result, train_window, tracking_uri=settings.mlflow_tracking_uri,
                              data_version=_dataset_version(frame), experiment=MODEL_NAME,
                              artifact_location=settings.mlflow_artifacts,
                              tags={"held_out_season": held_out, "hydra.overrides": overrides or "(none)",
                                    "environment": settings.environment},
                              parent_run_id=_sweep_parent_run_id(settings))
    resolved = OmegaConf.to_container(resolve_config(cfg))   # what this run was, secrets masked
    MlflowClient().log_text(logged.run_id, OmegaConf.to_yaml(OmegaConf.create(masked(resolved))), "hydra/config.yaml")
    log_loss = result.candidate_log_loss[result.model_name]
    print(f"{result.model_name}: walk-forward log-loss {log_loss:.4f} (MLflow run {logged.run_id}; {overrides})")
    return log_loss


@hydra.main(config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float:
    return train(cfg)


if __name__ == "__main__":
    main()
