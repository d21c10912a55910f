"""Re-crawl by change detection, run for real against the replay server: an unchanged source costs one crawl (an
observation run) and no materialization; a changed file is observed (its sha256 as data version) and only its
partition is ingested again, by the backfill or, for scheduled observations, by changed_season_files_sensor."""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from time2bet.football import season_file_path
from time2bet.ingestion.discovery import discover_season_files
from time2bet.source.mirror import ReplayServer
from time2bet_assets.definitions import build_definitions
from time2bet_assets.defs.ingestion.assets import RAW_MATCH_FILES, SOURCE_SEASON_FILES
from time2bet_assets.defs.ingestion.backfill import run_season_file_backfill
from time2bet_assets.defs.ingestion.sensors import changed_season_files_sensor

RAW_MATCHES = dg.AssetKey("raw_matches")


def _backfill(url, platform, instance):
    settings, _ = platform(url)
    defs = build_definitions(settings)
    links = discover_season_files(url)
    results = run_season_file_backfill(defs, instance, sorted({l.division for l in links}),
                                       sorted({l.season for l in links}))
    return defs, results


def _count(instance, key: dg.AssetKey, fetch) -> int:
    return len(fetch(dg.AssetRecordsFilter(asset_key=key), limit=10_000).records)


def _materializations(instance) -> int:
    return sum(_count(instance, k, instance.fetch_materializations) for k in (RAW_MATCH_FILES, RAW_MATCHES))


def _append_a_match(site, division, season) -> None:
    path = site / season_file_path(division, season)
    lines = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
    last = lines[-1].split(",")
    last[1] = "30/06/" + season[:2] + season[-2:]   # a new match on the season's last day
    last[2], last[3] = last[3], last[2]
    path.write_text("\n".join([*lines, ",".join(last)]) + "\n", encoding="utf-8")


def test_an_unchanged_recrawl_records_no_materialization(site_copy, platform, instance):
    with ReplayServer(site_copy) as server:
        _, first = _backfill(server.url, platform, instance)
        assert [r.job_def.name for r in first] == ["ingest_season_files"] and first[0].success  # one run
        before = _materializations(instance)
        assert before > 0
        _, again = _backfill(server.url, platform, instance)
    assert [r.job_def.name for r in again] == ["observe_season_files"] and again[0].success   # one crawl
    assert _materializations(instance) == before
    assert _count(instance, SOURCE_SEASON_FILES, instance.fetch_observations) == 0


def test_a_changed_file_is_observed_and_only_its_partition_ingested(site_copy, platform, instance):
    with ReplayServer(site_copy) as server:   # (the replay server renders each file once: a new one serves the change)
        _backfill(server.url, platform, instance)
        division, season = min({(l.division, l.season) for l in discover_season_files(server.url)})
    before = _materializations(instance)
    _append_a_match(site_copy, division, season)
    with ReplayServer(site_copy) as server:
        _, results = _backfill(server.url, platform, instance)
    assert [r.job_def.name for r in results] == ["observe_season_files", "ingest_season_files"]
    assert all(r.success for r in results)
    observations = instance.fetch_observations(SOURCE_SEASON_FILES, limit=10).records
    assert [o.partition_key for o in observations] == [f"{division}|{season}"]
    version = observations[0].asset_observation.tags[DATA_VERSION_TAG]
    assert len(version) == 64 and observations[0].asset_observation.metadata["http_status"].value == 200
    assert _materializations(instance) == before + 2   # raw_match_files and raw_matches of that partition only
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=RAW_MATCH_FILES, asset_partitions=[f"{division}|{season}"]), limit=1)
    assert latest.records[0].asset_materialization.metadata["sha256"].value == version


def test_the_sensor_ingests_what_a_scheduled_observation_found_changed(site_copy, platform, instance):
    with ReplayServer(site_copy) as server:
        _backfill(server.url, platform, instance)
        division, season = max({(l.division, l.season) for l in discover_season_files(server.url)})
        key = f"{division}|{season}"
        context = dg.build_sensor_context(instance=instance)
        assert isinstance(changed_season_files_sensor(context), dg.SkipReason)   # nothing observed yet
    _append_a_match(site_copy, division, season)
    with ReplayServer(site_copy) as server:
        defs = build_definitions(platform(server.url)[0])
        observed = defs.resolve_job_def("observe_season_files").execute_in_process(
            instance=instance, tags={ASSET_PARTITION_RANGE_START_TAG: key, ASSET_PARTITION_RANGE_END_TAG: key})
    assert observed.success
    result = changed_season_files_sensor(dg.build_sensor_context(instance=instance))
    version = instance.fetch_observations(SOURCE_SEASON_FILES, limit=1).records[0].asset_observation.tags[
        DATA_VERSION_TAG]
    assert [(r.partition_key, r.run_key) for r in result.run_requests] == [(key, f"{key}|{version}")]
    later = changed_season_files_sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))
    assert isinstance(later, dg.SkipReason)   # the cursor moved past it


def test_observations_made_by_a_backfill_are_left_to_it(site_copy, platform, instance):
    with ReplayServer(site_copy) as server:
        _backfill(server.url, platform, instance)
        division, season = min({(l.division, l.season) for l in discover_season_files(server.url)})
    _append_a_match(site_copy, division, season)
    with ReplayServer(site_copy) as server:
        _, results = _backfill(server.url, platform, instance)   # observes and ingests the change itself
    assert [r.job_def.name for r in results] == ["observe_season_files", "ingest_season_files"]
    result = changed_season_files_sensor(dg.build_sensor_context(instance=instance))
    assert not result.run_requests and result.cursor


def test_files_found_changed_together_are_ingested_in_one_range_run(site_copy, platform, instance):
    """A morning's observation of every division finds several files changed: one run (one crawl) loads them."""
    with ReplayServer(site_copy) as server:
        _backfill(server.url, platform, instance)
        season = max(l.season for l in discover_season_files(server.url))
    divisions = instance.get_dynamic_partitions("division")[:2]   # neighbours in the partitions' order
    keys = [f"{division}|{season}" for division in divisions]
    for division in divisions:
        _append_a_match(site_copy, division, season)
    with ReplayServer(site_copy) as server:
        defs = build_definitions(platform(server.url)[0])
        observed = defs.resolve_job_def("observe_season_files").execute_in_process(
            instance=instance, tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[1]})
        assert observed.success
        result = changed_season_files_sensor(dg.build_sensor_context(instance=instance))
        assert len(result.run_requests) == 1
        request = result.run_requests[0]
        assert request.partition_key is None and request.partition_key_range == dg.PartitionKeyRange(*keys)
        before = _materializations(instance)
        ingested = defs.resolve_job_def("ingest_season_files").execute_in_process(instance=instance,
                                                                                  tags=request.tags)
    assert ingested.success and _materializations(instance) == before + 4   # both files, both loads
    again = changed_season_files_sensor(dg.build_sensor_context(instance=instance))
    assert again.run_requests[0].run_key == request.run_key   # the same versions: the daemon launches it once
