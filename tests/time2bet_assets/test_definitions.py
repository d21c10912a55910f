"""The code location loads, and its automation decides what an operator would expect."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import yaml

from time2bet_assets.defs.ingestion.backfill import contiguous_ranges, register_partitions
from time2bet_assets.defs.ingestion.partitions import season_file_partitions
from time2bet_assets.defs.ingestion.schedules import current_season_run_requests
from time2bet_assets.defs.ingestion.sensors import new_partitions, new_season_files_sensor

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_code_location_loads_with_every_asset_job_schedule_and_sensor():
    from time2bet_assets.definitions import defs

    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw_match_files", "raw_matches", "raw_fixtures"} <= keys
    assert {j.name for j in defs.resolve_all_job_defs()} >= {"ingest_season_files", "refresh_fixtures"}
    assert {s.name for s in defs.schedules} == {"refresh_current_season", "refresh_fixtures_every_6h"}
    assert {s.name for s in defs.sensors} == {"new_season_files_sensor"}


def test_dagster_cli_validates_the_workspace():
    out = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(REPO_ROOT / "workspace.yaml")],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_contiguous_ranges_split_a_selection_into_runs_of_consecutive_keys():
    keys = ["D1|a", "D1|b", "D1|c", "E0|a", "E0|b", "E0|c"]
    assert contiguous_ranges(keys, set(keys)) == [keys]
    assert contiguous_ranges(keys, {"D1|b", "D1|c", "E0|a", "E0|c"}) == [["D1|b", "D1|c", "E0|a"], ["E0|c"]]
    assert contiguous_ranges(keys, set()) == []


def test_partitions_are_registered_once_and_seasons_in_chronological_order():
    with dg.instance_for_test() as instance:
        register_partitions(instance, ["E0"], ["2000-01", "1999-00", "2019-20"])
        register_partitions(instance, ["E0", "D1"], ["1999-00", "2020-21"])
        assert instance.get_dynamic_partitions("division") == ["E0", "D1"]
        assert instance.get_dynamic_partitions("season") == ["1999-00", "2000-01", "2019-20", "2020-21"]
        keys = season_file_partitions.get_partition_keys(dynamic_partitions_store=instance)
        assert len(keys) == 8


def test_sensor_decision_adds_new_partitions_and_ingests_only_unseen_files():
    links = [("E0", "2019-20"), ("E0", "2020-21"), ("SC0", "2020-21"), ("E0", "1990-91")]
    add_d, add_s, ingest = new_partitions(
        links, divisions=["E0", "D1"], first_season="1993-94",
        known_divisions={"E0"}, known_seasons={"2019-20"}, ingested={"E0|2019-20"},
    )
    assert (add_d, add_s, ingest) == ([], ["2020-21"], [("E0", "2020-21")])


def test_sensor_tick_against_the_replay_server_adds_partitions_and_requests_runs(server, platform):
    _, resources = platform(server.url)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"source": resources["source"]})
        result = new_season_files_sensor(context)
        added = {r.partitions_def_name: list(r.partition_keys) for r in result.dynamic_partitions_requests}
        assert added["division"] and added["season"] == sorted(added["season"])
        assert result.run_requests and all(r.partition_key for r in result.run_requests)


def test_schedule_requests_the_current_season_of_known_divisions_only():
    with dg.instance_for_test() as instance:
        assert current_season_run_requests(instance, ["E0"], dt.date(2024, 10, 1)) == []
        register_partitions(instance, ["E0", "D1"], ["2024-25"])
        requests = current_season_run_requests(instance, ["E0", "SP1"], dt.date(2024, 10, 1))
        assert [str(r.partition_key) for r in requests] == ["E0|2024-25"]


def test_the_postgres_instance_config_runs_dagster_on_postgresql(postgres_db):
    """deploy/dagster/dagster.postgres.yaml, with DAGSTER_PG_* pointing at a database of our own."""
    from urllib.parse import urlparse

    url = urlparse(postgres_db)
    env = {"DAGSTER_PG_HOST": url.hostname, "DAGSTER_PG_PORT": str(url.port), "DAGSTER_PG_DB": url.path.lstrip("/"),
           "DAGSTER_PG_USER": url.username, "DAGSTER_PG_PASSWORD": ""}
    config = yaml.safe_load((REPO_ROOT / "deploy/dagster/dagster.postgres.yaml").read_text())
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with dg.instance_for_test(overrides={"storage": config["storage"]}) as instance:
            @dg.asset
            def probe() -> int:
                return 1

            assert dg.materialize([probe], instance=instance).success
            assert instance.get_latest_materialization_event(dg.AssetKey("probe")) is not None
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
