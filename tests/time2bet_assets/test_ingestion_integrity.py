"""Source integrity, run for real: a real season file (F1 2018-19 of the dev mirror) served by the replay server,
loaded, then re-published broken; and the same broken files as a first load. A new version never changes a
loaded match without the explicit accept (``accept_rewrite``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from time2bet.source.mirror import ReplayServer
from time2bet.warehouse.client import Warehouse
from time2bet_assets.defs.ingestion.assets import FILES_LOADED, FILES_TRUSTED, raw_match_files, raw_matches
from time2bet_assets.defs.ingestion.backfill import register_partitions
from time2bet_assets.defs.ingestion.partitions import partition_key

DIVISION, SEASON, CODE = "F1", "2018-19", "1819"
pytestmark = pytest.mark.realdata


@pytest.fixture
def site(real_data_root, tmp_path) -> Path:
    """A site of one real file (the mirror's own bytes, served as Latin-1 like the live site)."""
    root = tmp_path / "site"
    (root / "mmz4281" / CODE).mkdir(parents=True)
    shutil.copy(real_data_root / "mmz4281" / CODE / f"{DIVISION}.csv", root / "mmz4281" / CODE)
    return root


def _path(site: Path) -> Path:
    return site / "mmz4281" / CODE / f"{DIVISION}.csv"


def _lines(site: Path) -> list[bytes]:
    return _path(site).read_bytes().rstrip(b"\r\n").split(b"\n")


def _publish(site: Path, lines: list[bytes]) -> None:
    _path(site).write_bytes(b"\n".join(lines) + b"\n")


def _field(line: bytes, header: bytes, name: str) -> int:
    return [c.strip() for c in header.split(b",")].index(name.encode())


def _set(line: bytes, header: bytes, **values: str) -> bytes:
    cells = line.split(b",")
    for name, value in values.items():
        cells[_field(line, header, name)] = value.encode()
    return b",".join(cells)


def shrink(lines):       # the first 189 matches, cut at a row boundary: a valid-looking file
    return lines[:190]


def truncate(lines):     # cut inside row 190, which keeps 60 of its 61 fields
    return lines[:190] + [b",".join(lines[190].split(b",")[:60])]


def rescore(lines):      # the full-time score of a played match typed over (1-2 -> 2-2, result D)
    lines = list(lines)
    lines[5] = _set(lines[5], lines[0], FTHG="2", FTAG="2", FTR="D")
    return lines


def redate(lines):       # a played match moved to another day of the season
    lines = list(lines)
    lines[5] = _set(lines[5], lines[0], Date="02/02/2019")
    return lines


def same_team(lines):    # a match of a team against itself
    lines = list(lines)
    header = lines[0]
    home = lines[7].split(b",")[_field(lines[7], header, "HomeTeam")].decode()
    lines[7] = _set(lines[7], header, AwayTeam=home)
    return lines


def _ingest(url, platform, instance, *, accept: tuple[str, ...] = ()) -> tuple[dg.ExecuteInProcessResult, object]:
    settings, resources = platform(url)
    register_partitions(instance, [DIVISION], [SEASON])
    config = {"ops": {"raw_matches": {"config": {"accept_rewrite": list(accept)}}}}
    result = dg.materialize([raw_match_files, raw_matches], resources=resources, instance=instance,
                            raise_on_error=False, partition_key=str(partition_key(DIVISION, SEASON)),
                            run_config=config)
    return result, settings


def _check(result, name) -> dg.AssetCheckEvaluation:
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


def _loaded(settings) -> list[tuple]:
    frame = Warehouse.from_url(settings.warehouse_url).read_sql(
        "SELECT CAST(match_date AS VARCHAR) AS d, home_team, away_team, home_goals, away_goals FROM raw.matches "
        "ORDER BY 1, 2")
    return list(frame.itertuples(index=False, name=None))


def _load_good(site, platform, instance):
    with ReplayServer(site, encoding="latin-1") as server:
        result, settings = _ingest(server.url, platform, instance)
    assert result.success
    good = _loaded(settings)
    assert len(good) == len(_lines(site)) - 1 == 380
    return good


@pytest.mark.parametrize(("broken", "says"), [
    (shrink, "189 matches where 380 are loaded"),
    (truncate, "truncated file: line 191 has 60 values"),
    (rescore, "changes 1 loaded match(es)"),
    (redate, "changes 1 loaded match(es)"),
])
def test_a_republication_that_loses_or_changes_loaded_matches_is_quarantined(broken, says, site, platform,
                                                                             instance):
    good = _load_good(site, platform, instance)
    original = _lines(site)
    _publish(site, broken(original))
    with ReplayServer(site, encoding="latin-1") as server:
        result, settings = _ingest(server.url, platform, instance)
    assert not result.success   # the blocking check stops the run
    check = _check(result, FILES_TRUSTED)
    assert not check.passed
    reason = check.metadata["quarantined"].value[f"{DIVISION}|{SEASON}"]
    assert says in reason
    if broken in (rescore, redate):   # the match is named: date, teams and score as loaded
        assert "2018-08-" in reason and " -> " in reason
    assert _check(result, FILES_LOADED).passed
    assert _loaded(settings) == good   # the partition keeps its data
    md = result.asset_materializations_for_node("raw_matches")[0].metadata
    assert md["partitions_quarantined"].value == 1 and md["partitions_loaded"].value == 0


def test_a_rewrite_is_loaded_only_when_accepted_and_the_acceptance_is_recorded(site, platform, instance):
    _load_good(site, platform, instance)
    _publish(site, rescore(shrink(_lines(site))))
    with ReplayServer(site, encoding="latin-1") as server:
        refused, settings = _ingest(server.url, platform, instance)
        assert not refused.success and len(_loaded(settings)) == 380
        accepted, settings = _ingest(server.url, platform, instance, accept=(f"{DIVISION}|{SEASON}",))
    assert accepted.success
    assert len(_loaded(settings)) == 189
    check = _check(accepted, FILES_TRUSTED)
    assert check.passed
    record = check.metadata["accepted"].value[f"{DIVISION}|{SEASON}"]
    assert "189 matches where 380 are loaded" in record and "changes 1" in record
    md = accepted.asset_materializations_for_node("raw_matches")[0].metadata
    assert f"{DIVISION}|{SEASON}" in md["rewrites_accepted"].value
    run = instance.get_run_by_id(accepted.run_id)
    assert run.run_config["ops"]["raw_matches"]["config"]["accept_rewrite"] == [f"{DIVISION}|{SEASON}"]


def test_a_truncated_file_cannot_be_accepted(site, platform, instance):
    good = _load_good(site, platform, instance)
    _publish(site, truncate(_lines(site)))
    with ReplayServer(site, encoding="latin-1") as server:
        result, settings = _ingest(server.url, platform, instance, accept=(f"{DIVISION}|{SEASON}",))
    assert not result.success and not _check(result, FILES_TRUSTED).passed
    assert _loaded(settings) == good


def test_a_republication_that_adds_matches_and_corrects_odds_is_loaded(site, platform, instance):
    original = _lines(site)
    _publish(site, original[:300])
    with ReplayServer(site, encoding="latin-1") as server:
        first, _ = _ingest(server.url, platform, instance)
    assert first.success
    grown = list(original)
    grown[3] = _set(grown[3], grown[0], B365H="9.99")
    _publish(site, grown)
    with ReplayServer(site, encoding="latin-1") as server:
        result, settings = _ingest(server.url, platform, instance)
    assert result.success and _check(result, FILES_TRUSTED).passed
    assert len(_loaded(settings)) == 380


def test_a_same_team_republication_is_rejected_naming_the_line(site, platform, instance):
    good = _load_good(site, platform, instance)
    _publish(site, same_team(_lines(site)))
    with ReplayServer(site, encoding="latin-1") as server:
        result, settings = _ingest(server.url, platform, instance)
    assert not result.success
    reason = _check(result, FILES_LOADED).metadata["rejected"].value[f"{DIVISION}|{SEASON}"]
    assert "same team at home and away on line 8" in reason
    assert _loaded(settings) == good


@pytest.mark.parametrize(("broken", "check_name", "says"), [
    (truncate, FILES_TRUSTED, "truncated file: line 191"),
    (same_team, FILES_LOADED, "same team at home and away on line 8"),
])
def test_a_first_load_of_a_truncated_or_same_team_file_loads_nothing(broken, check_name, says, site, platform,
                                                                      instance):
    _publish(site, broken(_lines(site)))
    with ReplayServer(site, encoding="latin-1") as server:
        result, settings = _ingest(server.url, platform, instance)
    assert not result.success
    check = _check(result, check_name)
    key = "quarantined" if check_name == FILES_TRUSTED else "rejected"
    assert says in check.metadata[key].value[f"{DIVISION}|{SEASON}"]
    Warehouse.from_url(settings.warehouse_url).ensure_raw_tables()
    assert _loaded(settings) == []


def test_a_first_load_of_a_shrunk_file_loads_what_it_has(site, platform, instance):
    """Nothing is loaded yet, so nothing can be lost: the file is loaded as published."""
    _publish(site, shrink(_lines(site)))
    with ReplayServer(site, encoding="latin-1") as server:
        result, settings = _ingest(server.url, platform, instance)
    assert result.success and len(_loaded(settings)) == 189
