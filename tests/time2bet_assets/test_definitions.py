"""The code location loads, every key it names resolves, its areas stay independent, and its automation decides
what an operator would expect."""

from __future__ import annotations

import ast
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.definitions.dependency import NodeHandle

from time2bet_assets.defs.ingestion.backfill import partition_rectangles, register_partitions
from time2bet_assets.defs.ingestion.partitions import season_file_partitions
from time2bet_assets.defs.ingestion.schedules import current_season_run_requests
from time2bet_assets.defs.ingestion.sensors import new_partitions, new_season_files_sensor

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "time2bet_assets"


def test_the_code_location_loads_with_every_asset_job_schedule_and_sensor():
    from time2bet_assets.definitions import defs

    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"source_season_files", "raw_match_files", "raw_matches", "raw_fixtures"} <= keys
    assert {j.name for j in defs.resolve_all_job_defs()} >= {
        "ingest_season_files", "observe_season_files", "refresh_fixtures", "build_features", "train_and_promote"}
    assert {s.name for s in defs.schedules} == {"refresh_current_season", "refresh_fixtures_every_6h"}
    assert {s.name for s in defs.sensors} >= {"new_season_files_sensor", "changed_season_files_sensor",
                                             "features_on_new_data", "predictions_on_new_features"}


# --- every key resolves ------------------------------------------------------------------------------------------
# Areas name each other's assets by literal key. Dagster accepts a key that nothing defines (it draws an external
# stub in the graph, and validate_loadable passes), so a misspelled key would silently cut the lineage: check it.


def declared_asset_keys(defs: dg.Definitions) -> set[dg.AssetKey]:
    """The assets the Definitions itself declares: materializable ones, and external ones given as specs."""
    keys: set[dg.AssetKey] = set()
    for a in defs.assets or []:
        if isinstance(a, dg.AssetsDefinition):
            keys |= set(a.keys)
        elif isinstance(a, (dg.AssetSpec, dg.SourceAsset)):
            keys.add(a.key)
        else:
            raise TypeError(f"unexpected asset definition {a!r}")
    return keys


def named_keys(defs: dg.Definitions) -> list[tuple[str, dg.AssetKey]]:
    """Every (who, key) that an asset's dependency, an asset check's target or a check's extra dependency names."""
    named: list[tuple[str, dg.AssetKey]] = []
    for a in [*(defs.assets or []), *(defs.asset_checks or [])]:
        if isinstance(a, dg.AssetSpec):
            named += [(f"asset {a.key.to_user_string()} depends on", d.asset_key) for d in a.deps]
            continue
        if isinstance(a, dg.SourceAsset):
            continue
        for key, deps in a.asset_deps.items():
            named += [(f"asset {key.to_user_string()} depends on", d) for d in deps]
        for spec in a.check_specs:
            named.append((f"check {spec.name} targets", spec.asset_key))
            named += [(f"check {spec.name} depends on", d.asset_key) for d in spec.additional_deps]
    return named


def unresolved_keys(defs: dg.Definitions) -> list[str]:
    declared = declared_asset_keys(defs)
    return sorted(f"{who} {key.to_user_string()}" for who, key in named_keys(defs) if key not in declared)


def test_every_dependency_and_check_target_is_an_asset_of_the_code_location():
    from time2bet_assets.definitions import defs

    named = named_keys(defs)
    assert len(named) > 60  # dbt deps and tests included: the walk does see the whole graph
    assert unresolved_keys(defs) == []
    # the keys that cross areas are among those checked
    crossing = {(who, key.to_user_string()) for who, key in named}
    assert {("asset training_dataset depends on", "fct_match_features"),
            ("asset batch_predictions depends on", "upcoming_match_features"),
            ("asset stg_matches depends on", "raw_matches"),
            ("check raw_matches_expectations targets", "raw_matches"),
            ("check fct_match_features_expectations targets", "fct_match_features")} <= crossing
    # and the job of the features area runs ingestion's blocking suite, which it names by key
    build = defs.resolve_job_def("build_features")
    checks = {k for n in build.graph.node_dict for k in build.asset_layer.get_selected_entity_keys_for_node(
        NodeHandle(n, None)) if isinstance(k, dg.AssetCheckKey)}
    raw_suite = dg.AssetCheckKey(dg.AssetKey(["raw_matches"]), "raw_matches_expectations")
    assert raw_suite in checks
    assert defs.resolve_asset_graph().get_check_spec(raw_suite).blocking


def test_a_misspelled_key_is_reported_although_dagster_loads_it():
    from time2bet_assets.definitions import defs

    @dg.asset(deps=[dg.AssetKey(["fct_match_featurs"])], group_name="ml")
    def misspelled_dep() -> None: ...

    @dg.asset_check(asset=dg.AssetKey(["raw_matchs"]))
    def misspelled_target() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    broken = dg.Definitions(assets=[*defs.assets, misspelled_dep],
                            asset_checks=[*defs.asset_checks, misspelled_target], resources=defs.resources)
    dg.Definitions.validate_loadable(broken)  # Dagster itself accepts it, with two external stubs
    assert unresolved_keys(broken) == [
        "asset misspelled_dep depends on fct_match_featurs", "check misspelled_target targets raw_matchs"]

    # a misspelled key in a job's selection, by contrast, already fails to load
    job = dg.define_asset_job("typo", selection=dg.AssetSelection.checks(
        dg.AssetCheckKey(dg.AssetKey(["raw_matches"]), "raw_match_expectations")))
    with pytest.raises(dg.DagsterInvalidDefinitionError):
        dg.Definitions.validate_loadable(dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks,
                                                        jobs=[job], resources=defs.resources))


# --- no area imports another; lib imports no area ----------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, *, is_package: bool) -> set[str]:
    """Every module an import statement can load: ``from a import b`` gives ``a`` and ``a.b`` (b may be a module);
    relative imports are resolved against ``module``."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if alias.name != "*"}
    return found


def _areas() -> list[str]:
    return sorted(p.parent.name for p in (PACKAGE / "defs").glob("*/__init__.py"))


def forbidden_imports(source: str, module: str, *, is_package: bool) -> list[str]:
    """Imports that break the layering: an area importing another area (or the whole code location), lib importing
    any area."""
    own = module.split(".")[2] if module.startswith("time2bet_assets.defs.") else None
    bad = []
    for name in sorted(imported_modules(source, module, is_package=is_package)):
        if name == "time2bet_assets.definitions" and (own or module.startswith("time2bet_assets.lib")):
            bad.append(name)
        elif name.startswith("time2bet_assets.defs."):
            other = name.split(".")[2]
            if module.startswith("time2bet_assets.lib") or (own and other != own):
                bad.append(name)
    # ``from a.b import c`` reports ``a.b``, not also ``a.b.c``
    return [name for name in bad if name.rpartition(".")[0] not in bad]


def test_no_area_imports_another_and_lib_imports_no_area():
    assert set(_areas()) >= {"ingestion", "features", "ml"}
    files = [*(PACKAGE / "defs").rglob("*.py"), *(PACKAGE / "lib").rglob("*.py")]
    assert len(files) > 20
    violations = {
        _module_name(f): bad for f in files
        if (bad := forbidden_imports(f.read_text(), _module_name(f), is_package=f.name == "__init__.py"))
    }
    assert violations == {}


def test_the_import_scan_catches_absolute_and_relative_imports_across_areas():
    ml = "time2bet_assets.defs.ml.assets"
    assert forbidden_imports("from time2bet_assets.defs.features.checks import X", ml, is_package=False) == [
        "time2bet_assets.defs.features.checks"]
    assert forbidden_imports("from ..features import assets", ml, is_package=False) == [
        "time2bet_assets.defs.features"]
    assert forbidden_imports("from time2bet_assets.defs import ingestion", ml, is_package=False) == [
        "time2bet_assets.defs.ingestion"]
    assert forbidden_imports("import time2bet_assets.defs.ml.resources\nfrom . import jobs", ml, is_package=False) == []
    assert forbidden_imports("from time2bet_assets.defs.ml import assets", "time2bet_assets.lib.warehouse",
                             is_package=False) == ["time2bet_assets.defs.ml"]


def test_dagster_cli_validates_the_workspace():
    out = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(REPO_ROOT / "workspace.yaml")],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr


DIVS, SEASONS = ["D1", "E0", "F1"], ["2018-19", "2019-20", "2020-21"]
GRID = {f"{d}|{s}" for d in DIVS for s in SEASONS}


@pytest.mark.parametrize(("needed", "allowed", "runs"), [
    (GRID, GRID, [sorted(GRID)]),                                                     # a first load: one run
    ({"D1|2020-21", "E0|2020-21", "F1|2020-21"}, {"D1|2020-21", "E0|2020-21", "F1|2020-21"},
     [["D1|2020-21", "E0|2020-21", "F1|2020-21"]]),                                   # the current season
    ({"D1|2019-20", "F1|2020-21"}, {"D1|2019-20", "F1|2020-21"}, [["D1|2019-20"], ["F1|2020-21"]]),
    ({"D1|2018-19", "D1|2020-21"}, GRID, [["D1|2018-19", "D1|2019-20", "D1|2020-21"]]),  # spans an allowed gap
    ({"D1|2018-19", "E0|2020-21"}, GRID - {"E0|2018-19"}, [["D1|2018-19"], ["E0|2020-21"]]),
    (set(), GRID, []),
])
def test_partition_rectangles_cover_what_is_needed_with_allowed_keys_only(needed, allowed, runs):
    assert partition_rectangles(DIVS, SEASONS, needed, allowed) == runs


def test_a_rectangle_is_exactly_what_dagster_runs_for_its_first_and_last_key():
    needed = {"D1|2019-20", "E0|2019-20", "E0|2020-21", "F1|2018-19"}
    with dg.instance_for_test() as instance:
        register_partitions(instance, DIVS, SEASONS)
        for keys in partition_rectangles(DIVS, SEASONS, needed, needed | {"D1|2020-21"}):
            in_range = season_file_partitions.get_partition_keys_in_range(
                dg.PartitionKeyRange(keys[0], keys[-1]), dynamic_partitions_store=instance)
            assert sorted(str(k) for k in in_range) == sorted(keys)


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


def observed_keys(instance: dg.DagsterInstance, requests: list[dg.RunRequest]) -> list[list[str]]:
    """The partitions each run request of the observation job covers (a key, or a single-run range)."""
    from time2bet_assets.defs.ingestion.partitions import season_file_partitions

    covered = []
    for request in requests:
        if request.partition_key is not None:
            covered.append([str(request.partition_key)])
            continue
        with dg.partition_loading_context(dynamic_partitions_store=instance):
            covered.append([str(k) for k in season_file_partitions.get_partition_keys_in_range(
                request.partition_key_range)])
    return covered


def test_schedule_requests_the_current_season_of_known_divisions_only():
    with dg.instance_for_test() as instance:
        assert current_season_run_requests(instance, ["E0"], dt.date(2024, 10, 1)) == []
        register_partitions(instance, ["E0", "D1", "SP1"], ["2023-24", "2024-25"])
        requests = current_season_run_requests(instance, ["E0", "F1"], dt.date(2024, 10, 1))
        assert observed_keys(instance, requests) == [["E0|2024-25"]]
        # the configured divisions' current season in one run (one crawl) however many divisions there are
        requests = current_season_run_requests(instance, ["E0", "D1", "SP1"], dt.date(2024, 10, 1))
        assert observed_keys(instance, requests) == [["E0|2024-25", "D1|2024-25", "SP1|2024-25"]]
        assert len(requests) == 1 and requests[0].run_key


def test_the_previous_season_is_observed_until_the_new_seasons_file_is_ingested():
    """2019-20 went on until August 2020 (the pandemic): on 15 July 2020 a division whose 2020-21 file is not in yet
    still has its 2019-20 file observed; one whose new file is in does not."""
    with dg.instance_for_test() as instance:
        register_partitions(instance, ["E0", "D1"], ["2019-20", "2020-21"])
        for key in ("E0|2019-20", "D1|2019-20", "D1|2020-21"):
            instance.report_runless_asset_event(dg.AssetMaterialization("raw_matches", partition=key))
        requests = current_season_run_requests(instance, ["E0", "D1"], dt.date(2020, 7, 15))
        covered = observed_keys(instance, requests)
        assert sorted(key for keys in covered for key in keys) == ["D1|2020-21", "E0|2019-20", "E0|2020-21"]
        assert len(requests) == 2 and len({r.run_key for r in requests}) == 2   # E0's two seasons; D1's new one
        # before the new season's partition exists at all (the source has published no 2020-21 file yet)
        with dg.instance_for_test() as fresh:
            register_partitions(fresh, ["E0"], ["2019-20"])
            fresh.report_runless_asset_event(dg.AssetMaterialization("raw_matches", partition="E0|2019-20"))
            requests = current_season_run_requests(fresh, ["E0"], dt.date(2020, 7, 15))
            assert [str(r.partition_key) for r in requests] == ["E0|2019-20"]


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
