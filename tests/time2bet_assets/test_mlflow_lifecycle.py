"""The MLflow run of a Dagster run goes through dagster-mlflow: its `mlflow_tracking` resource opens the run (tagged
dagster_run_id, named after the job) and its `end_mlflow_on_run_finished` hook closes it; our code only creates the
experiment where our artifacts go and ends the run of an ad-hoc materialization, which has no hook (docs/adr/0005)."""

import dagster as dg
import mlflow
import pytest
from dagster_mlflow.resources import MlFlow

from time2bet.mlflow_store import registry_client
from time2bet.serving_contract import MODEL_NAME
from time2bet_assets.defs.ml.resources import end_mlflow_on_run_finished, end_mlflow_run_unless_hooked, mlflow_run


def test_the_training_asset_logs_into_dagster_mlflows_run_of_the_dagster_run(settings):
    """The session's platform was trained by the job train_and_promote (time2bet train)."""
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    record = instance.fetch_materializations(dg.AssetKey("candidate_model"), limit=1).records[0]
    mlflow_run_id = record.asset_materialization.metadata["mlflow_run_id"].value
    client = registry_client(settings.mlflow_tracking_uri)
    run = client.get_run(mlflow_run_id)
    assert run.data.tags["dagster_run_id"] == record.run_id                   # set by dagster-mlflow
    assert run.info.run_name == instance.get_run_by_id(record.run_id).job_name == "train_and_promote"
    assert run.info.status == "FINISHED"                                      # ended by its hook
    assert run.data.params["data_version"] and "cv.model_log_loss" in run.data.metrics
    assert run.info.artifact_uri.startswith(settings.mlflow_artifacts)       # not ./mlruns
    # training runs of the same Dagster run (a gate's fallback) are children, never tagged as the Dagster run's own
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{mlflow_run_id}'")
    assert all("dagster_run_id" not in child.data.tags for child in children)


@dg.asset
def logged_metric(context: dg.AssetExecutionContext, mlflow: dg.ResourceParam[MlFlow]) -> int:
    mlflow.log_metric("answer", 42)
    end_mlflow_run_unless_hooked(context)
    return 42


@dg.asset
def failing_after(logged_metric: int) -> int:
    raise RuntimeError("a later step fails")


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """One MLflow store and Dagster instance for the tests below (each finds its runs by its Dagster run id)."""
    root = tmp_path_factory.mktemp("mlflow-lifecycle")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    resource = mlflow_run.configured({"experiment_name": MODEL_NAME, "mlflow_tracking_uri": uri,
                                      "artifact_location": str(root / "artifacts")})
    with dg.instance_for_test() as instance:
        yield uri, resource, instance, root
    while mlflow.active_run():   # never leave a run active in the test process
        mlflow.end_run()


def _runs_of(uri: str, dagster_run_id: str):
    client = registry_client(uri)
    return client.search_runs([client.get_experiment_by_name(MODEL_NAME).experiment_id],
                              f"tags.dagster_run_id = '{dagster_run_id}'")


def test_an_ad_hoc_materialization_ends_its_run_and_the_experiment_keeps_our_artifact_location(tracking):
    uri, resource, instance, root = tracking
    result = dg.materialize([logged_metric], resources={"mlflow": resource}, instance=instance)
    assert [(r.info.status, r.data.metrics) for r in _runs_of(uri, result.run_id)] == [("FINISHED", {"answer": 42.0})]
    assert mlflow.active_run() is None
    assert registry_client(uri).get_experiment_by_name(MODEL_NAME).artifact_location == str(root / "artifacts")


def test_the_hook_fails_the_run_when_a_later_step_fails(tracking):
    uri, resource, instance, _ = tracking
    job = dg.define_asset_job("with_hook", selection=[logged_metric, failing_after], hooks={end_mlflow_on_run_finished})
    defs = dg.Definitions(assets=[logged_metric, failing_after], jobs=[job], resources={"mlflow": resource})
    result = defs.resolve_job_def("with_hook").execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    assert [(r.info.run_name, r.info.status) for r in _runs_of(uri, result.run_id)] == [("with_hook", "FAILED")]
