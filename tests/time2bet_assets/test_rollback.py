"""Rollback, by `time2bet rollback` and by the Dagster job rollback_champion (one core function): the running service
(the session's `bentoml serve`, polling the registry every second) follows each without a restart, and the registry's
audit trail records each with its reason. The champion is the platform's own again at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import dagster as dg
import pytest

NAME = "match_outcome"
WAIT_S = 60


def _serving(client, version: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while client.get("/model/info").json()["version"] != version:
        if time.monotonic() > deadline:
            pytest.fail(f"the service did not follow to v{version} within {WAIT_S}s")
        time.sleep(0.2)


def test_rollback_by_cli_and_by_dagster_job_the_service_follows(settings, platform_env, bento_server, client):
    from time2bet.ml.registry import describe_champion, promote
    from time2bet.mlflow_store import registry_client
    from time2bet.serving_contract import CHAMPION
    from time2bet_assets.definitions import build_definitions

    uri = settings.mlflow_tracking_uri
    mc = registry_client(uri)
    original = mc.get_model_version_by_alias(NAME, CHAMPION)
    before = str(original.version)
    _serving(client, before)
    newer = str(mc.create_model_version(NAME, original.source, run_id=original.run_id, tags=dict(original.tags),
                                        description="rollback test", model_id=getattr(original, "model_id", None))
                .version)

    promote(NAME, newer, "rollback test: a new champion", tracking_uri=uri)
    _serving(client, newer)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TIME2BET_")}, **platform_env}
    done = subprocess.run([sys.executable, "-m", "time2bet.cli.main", "rollback", "--reason", "rollback test: CLI"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"rolled back to v{before}" in done.stdout
    _serving(client, before)

    promote(NAME, newer, "rollback test: a new champion again", tracking_uri=uri)
    _serving(client, newer)
    job = build_definitions(settings).resolve_job_def("rollback_champion")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, run_config={
            "ops": {"rollback_champion_op": {"config": {"reason": "rollback test: Dagster job"}}}})
        observed = instance.fetch_observations(dg.AssetKey("registered_model"), limit=1).records
    assert result.success and result.output_for_node("rollback_champion_op") == before
    assert observed[0].event_log_entry.asset_observation.metadata["reason"].value == "rollback test: Dagster job"
    _serving(client, before)

    audit = describe_champion(NAME, tracking_uri=uri).audit
    for how in ("CLI", "Dagster job"):
        assert any(f"rollback: champion v{newer} -> v{before}: rollback from v{newer}: rollback test: {how}" in event
                   for event in audit), audit[-4:]

    # nothing left to roll back to from a version that replaced none: the job fails, saying so
    mc.set_model_version_tag(NAME, before, "champion.previous_version", "")
    with dg.instance_for_test() as instance:
        failed = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not failed.success and str(mc.get_model_version_by_alias(NAME, CHAMPION).version) == before
