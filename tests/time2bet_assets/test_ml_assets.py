"""The whole chain in Dagster on the sample site: ingest -> features -> dataset -> model -> registry -> predictions."""

from __future__ import annotations

import pytest

from time2bet.ingestion.discovery import discover_season_files
from time2bet.mlflow_store import registry_client
from time2bet.warehouse.client import Warehouse
from time2bet_assets.definitions import build_definitions
from time2bet_assets.defs.ingestion.backfill import run_season_file_backfill


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_train_and_promote_reaches_a_champion_and_predicts_every_fixture(engine, server, platform, instance, request):
    warehouse_url = request.getfixturevalue("postgres_db") if engine == "postgres" else None
    settings, _ = platform(server.url, warehouse_url=warehouse_url)
    defs = build_definitions(settings)
    links = discover_season_files(server.url)
    assert all(r.success for r in run_season_file_backfill(
        defs, instance, sorted({l.division for l in links}), sorted({l.season for l in links})))
    for job in ("refresh_fixtures", "build_features", "train_and_promote"):
        result = defs.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False)
        assert result.success, job

    gate_md = result.asset_materializations_for_node("registered_model")[0].metadata
    final = gate_md["model_version"].value   # the candidate, or its baseline fallback (a later version)
    client = registry_client(settings.mlflow_tracking_uri)
    model = client.get_registered_model("match_outcome")
    promoted = not gate_md["decision"].value.startswith("rejected")
    assert model.aliases.get("champion") == (int(final) if promoted else None)
    version = client.get_model_version("match_outcome", final)
    assert version.tags["gate.decision"] == ("promoted" if promoted else "rejected")
    candidate = result.asset_materializations_for_node("candidate_model")[0]
    assert version.tags["data_version"] == candidate.metadata["data_version"].value
    if final != "1":   # v1 lost to the logistic-regression baseline, which was registered and gated instead
        assert version.tags["gate.fallback_of"] == "1"
        assert client.get_model_version("match_outcome", "1").tags["gate.fallback_version"] == final

    run = client.get_run(version.tags["mlflow_run_id"])
    assert "log_loss" in " ".join(run.data.metrics) and run.data.params["data_version"]
    wh = Warehouse.from_url(settings.warehouse_url)
    predictions = wh.read_sql("SELECT * FROM predictions.upcoming_matches")
    fixtures = int(wh.read_sql("SELECT count(*) AS n FROM raw.fixtures")["n"].iloc[0])
    assert len(predictions) == fixtures * predictions["variant"].nunique()
    sums = predictions[["p_home", "p_draw", "p_away"]].sum(axis=1)
    assert ((sums - 1).abs() < 1e-5).all()
    assert (predictions.loc[predictions["variant"] == "champion", "model_version"] == final).all()
    assert (predictions["data_version"] != "").all()
