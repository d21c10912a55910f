"""The ingestion assets, run for real: Scrapy against the replay server, raw zone, DuckDB/PostgreSQL/S3."""

from __future__ import annotations

import csv
import hashlib
import io
import urllib.request
import uuid

import boto3
import dagster as dg
import pytest
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from time2bet.football import season_file_path
from time2bet.ingestion.discovery import discover_season_files
from time2bet.source.mirror import ReplayServer
from time2bet.source.sample_site import DEFAULT_AS_OF
from time2bet.warehouse.client import Warehouse
from time2bet_assets.defs.ingestion.assets import (
    FILES_FETCHED,
    FILES_LOADED,
    raw_fixtures,
    raw_match_files,
    raw_matches,
)
from time2bet_assets.defs.ingestion.backfill import register_partitions
from time2bet_assets.defs.ingestion.partitions import partition_key, season_file_partitions

ASSETS = [raw_match_files, raw_matches]


def _published(url: str) -> list[tuple[str, str]]:
    return sorted({(l.division, l.season) for l in discover_season_files(url)})


def _served_rows(url: str, division: str, season: str) -> tuple[int, str]:
    body = urllib.request.urlopen(f"{url}/{season_file_path(division, season)}", timeout=10).read()
    rows = [r for r in csv.reader(io.StringIO(body.decode("utf-8-sig"))) if any(f.strip() for f in r)]
    return len(rows) - 1, hashlib.sha256(body).hexdigest()


def _materialize_all(instance, resources, url) -> dg.ExecuteInProcessResult:
    published = _published(url)
    register_partitions(instance, [d for d, _ in published], [s for _, s in published])
    keys = season_file_partitions.get_partition_keys(dynamic_partitions_store=instance)
    return dg.materialize(
        ASSETS, resources=resources, instance=instance, raise_on_error=False,
        tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]},
    )


def _materialize_one(instance, resources, division, season, assets=ASSETS) -> dg.ExecuteInProcessResult:
    register_partitions(instance, [division], [season])
    return dg.materialize(assets, resources=resources, instance=instance, raise_on_error=False,
                          partition_key=str(partition_key(division, season)))


def _check(result, name) -> dg.AssetCheckEvaluation:
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


def _count(settings, where: str = "TRUE") -> int:
    return int(Warehouse.from_url(settings.warehouse_url).read_sql(f"SELECT count(*) AS n FROM raw.matches WHERE {where}")["n"].iloc[0])


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_single_run_backfill_loads_every_published_match(engine, server, platform, instance, request):
    warehouse_url = request.getfixturevalue("postgres_db") if engine == "postgres" else None
    settings, resources = platform(server.url, warehouse_url=warehouse_url)
    result = _materialize_all(instance, resources, server.url)
    assert result.success
    assert len({r.run_id for r in [result]}) == 1
    expected = {key: _served_rows(server.url, *key) for key in _published(server.url)}
    wh = Warehouse.from_url(settings.warehouse_url)
    counts = wh.read_sql("SELECT division, season, count(*) AS n FROM raw.matches GROUP BY 1, 2")
    assert {(r.division, r.season): r.n for r in counts.itertuples()} == {k: v[0] for k, v in expected.items()}
    assert wh.loaded_match_files() == {k: v[1] for k, v in expected.items()}
    assert _check(result, FILES_FETCHED).passed and _check(result, FILES_LOADED).passed
    md = result.asset_materializations_for_node("raw_matches")[0].metadata
    assert md["rows_loaded"].value == sum(v[0] for v in expected.values())


def test_rerunning_an_unchanged_site_is_idempotent_and_writes_nothing_new(server, platform, instance):
    settings, resources = platform(server.url)
    assert _materialize_all(instance, resources, server.url).success
    before, objects = _count(settings), sorted(p for p in (settings.home / "raw").rglob("*.csv"))
    again = _materialize_all(instance, resources, server.url)
    assert again.success
    assert _count(settings) == before
    assert sorted(p for p in (settings.home / "raw").rglob("*.csv")) == objects
    md = again.asset_materializations_for_node("raw_matches")[0].metadata
    assert md["partitions_loaded"].value == 0 and md["partitions_unchanged"].value == len(_published(server.url))
    files_md = again.asset_materializations_for_node("raw_match_files")[0].metadata
    assert files_md["files_new"].value == 0


def test_a_partition_data_version_is_the_files_content_hash(server, platform, instance):
    _, resources = platform(server.url)
    division, season = _published(server.url)[0]
    first = _materialize_one(instance, resources, division, season)
    second = _materialize_one(instance, resources, division, season)
    assert first.success and second.success
    _, sha = _served_rows(server.url, division, season)
    for result in (first, second):
        for node in ("raw_match_files", "raw_matches"):
            event = result.asset_materializations_for_node(node)[0]
            assert event.tags[DATA_VERSION_TAG] == sha


def test_the_raw_zone_can_live_in_an_s3_bucket(server, platform, instance, s3_endpoint, monkeypatch):
    for var, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(var, value)
    bucket = f"time2bet-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=bucket)
    settings, resources = platform(server.url, raw_zone=f"s3://{bucket}/raw")
    division, season = _published(server.url)[-1]
    assert _materialize_one(instance, resources, division, season).success
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    rows, sha = _served_rows(server.url, division, season)
    assert keys == [k for k in keys if k.startswith(f"raw/football-data/season-files/{division}/{season}/")]
    assert len(keys) == 1 and keys[0].endswith(f"_{sha}.csv")
    assert _count(settings) == rows


@pytest.mark.parametrize(
    "fault, reason",
    [
        ("http_404", "404"),
        ("http_500", "500"),
        ("slow:6", "timeout"),
        ("truncate", ""),
        ("html_error", "html"),
        ("empty", "empty"),
        ("utf16", ""),
    ],
)
def test_a_file_that_cannot_be_fetched_keeps_the_last_good_data(fault, reason, server, platform, instance):
    settings, resources = platform(server.url)
    division, season = _published(server.url)[-1]
    assert _materialize_one(instance, resources, division, season).success
    before = _count(settings)
    server.inject_fault(season_file_path(division, season), fault)
    result = _materialize_one(instance, resources, division, season)
    check = _check(result, FILES_FETCHED)
    assert not check.passed
    failed = check.metadata["failed"].value
    assert list(failed) == [f"{division}|{season}"]
    assert reason in failed[f"{division}|{season}"].lower()
    assert _count(settings) == before


def _corrupt(path, how: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    fields = lines[2].split(",")
    if how == "missing_column":
        i = header.index("FTHG")
        lines = [",".join(f for j, f in enumerate(l.split(",")) if j != i) for l in lines]
    elif how == "bad_date":
        fields[header.index("Date")] = "31/02/2024"
        lines[2] = ",".join(fields)
    elif how == "non_numeric_score":
        fields[header.index("FTHG")] = "three"
        lines[2] = ",".join(fields)
    elif how == "impossible_score":
        fields[header.index("FTHG")] = "-2"
        lines[2] = ",".join(fields)
    elif how == "duplicate_match":
        lines.insert(3, lines[2])
    elif how == "malformed_csv":
        lines[2] = lines[2].replace(",", ',"', 1)  # an unterminated quote swallows the rest of the file
    elif how == "header_only":
        lines = lines[:1]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    "how", ["missing_column", "bad_date", "non_numeric_score", "impossible_score", "duplicate_match", "malformed_csv", "header_only"]
)
def test_a_file_that_fails_validation_is_rejected_and_the_last_good_data_stays(how, site_copy, platform, instance):
    # as_of=None: the server passes files through untouched (an as-of server drops rows it cannot date)
    with ReplayServer(site_copy) as good:
        settings, resources = platform(good.url)
        division, season = _published(good.url)[-1]
        assert _materialize_one(instance, resources, division, season).success
    before = _count(settings)
    _corrupt(site_copy / season_file_path(division, season), how)
    with ReplayServer(site_copy) as bad:
        settings, resources = platform(bad.url)
        result = _materialize_one(instance, resources, division, season)
    assert not result.success  # the blocking check stops the run
    check = _check(result, FILES_LOADED)
    assert not check.passed
    assert f"{division}|{season}" in check.metadata["rejected"].value
    assert _count(settings) == before


def test_a_site_served_in_latin1_loads_the_same_rows_as_utf8(sample_site, platform, instance, tmp_path):
    with ReplayServer(sample_site, as_of=DEFAULT_AS_OF) as utf8:
        s1, r1 = platform(utf8.url, warehouse_url=f"duckdb:///{tmp_path / 'a.duckdb'}")
        assert _materialize_all(instance, r1, utf8.url).success
    with ReplayServer(sample_site, as_of=DEFAULT_AS_OF, encoding="latin-1") as latin1:
        s2, r2 = platform(latin1.url, warehouse_url=f"duckdb:///{tmp_path / 'b.duckdb'}")
        with dg.instance_for_test() as other:
            assert _materialize_all(other, r2, latin1.url).success
    query = "SELECT division, season, match_date, home_team, away_team, home_goals, away_goals FROM raw.matches ORDER BY 1, 2, 3, 4"
    a = Warehouse.from_url(s1.warehouse_url).read_sql(query)
    b = Warehouse.from_url(s2.warehouse_url).read_sql(query)
    assert len(a) > 0 and a.equals(b)
    assert any(not name.isascii() for name in a["home_team"])


def test_fixtures_are_loaded_and_a_bad_download_keeps_the_previous_ones(server, platform, instance):
    settings, resources = platform(server.url)
    first = dg.materialize([raw_fixtures], resources=resources, instance=instance)
    wh = Warehouse.from_url(settings.warehouse_url)
    fixtures = wh.read_sql("SELECT * FROM raw.fixtures")
    assert first.success and len(fixtures) > 0
    assert (fixtures["match_date"] >= str(DEFAULT_AS_OF)).all()
    server.inject_fault("fixtures.csv", "html_error")
    second = dg.materialize([raw_fixtures], resources=resources, instance=instance, raise_on_error=False)
    assert not second.success
    assert len(wh.read_sql("SELECT * FROM raw.fixtures")) == len(fixtures)
