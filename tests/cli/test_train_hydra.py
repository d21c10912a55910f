"""`time2bet-train` (Hydra): overrides reach the candidates, and a --multirun sweep logs one MLflow child run per
point under one parent run of the sweep."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from time2bet.mlflow_store import registry_client
from time2bet.serving_contract import MODEL_NAME

REPO = Path(__file__).resolve().parents[2]


def test_a_sweep_logs_one_child_run_per_point_under_a_parent_run(platform_env, tmp_path):
    """On the session's sample platform (its warehouse), into an MLflow store of its own (the registry untouched)."""
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    home = Path(platform_env["TIME2BET_HOME"])
    env = {"PATH": "/usr/bin:/bin", **platform_env, "MLFLOW_TRACKING_URI": tracking_uri,
           "TIME2BET_MLFLOW_ARTIFACTS": str(tmp_path / "artifacts")}
    done = subprocess.run(
        [sys.executable, "-m", "time2bet.cli.train", "--multirun", "model.candidates=[logreg]",
         "model.logreg.C=0.01,1.0", "gate.n_folds=1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    client = registry_client(tracking_uri)
    experiment = client.get_experiment_by_name(MODEL_NAME).experiment_id
    parents = client.search_runs([experiment], "tags.`hydra.sweep_dir` != ''")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    sweep_dir = Path(parents[0].data.tags["hydra.sweep_dir"])
    assert sweep_dir.is_relative_to(home / "hydra" / "sweeps") and not (tmp_path / "outputs").exists()
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    assert sorted(child.data.params["model.C"] for child in children) == ["0.01", "1.0"]   # what was fitted
    assert all(child.info.status == "FINISHED" and child.data.params["n_folds"] == "1" for child in children)
    assert {child.data.tags["hydra.overrides"] for child in children} == {
        "model.candidates=[logreg] model.logreg.C=0.01 gate.n_folds=1",
        "model.candidates=[logreg] model.logreg.C=1.0 gate.n_folds=1"}
    log_losses = {child.data.metrics["cv.model_log_loss"] for child in children}
    assert len(log_losses) == 2   # the two points trained different models
