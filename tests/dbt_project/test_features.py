"""The dbt feature models, built for real over the sample site on DuckDB and PostgreSQL.

Raw tables are loaded the way ingestion loads them (sample site -> parse_season_file -> Warehouse), with
matches played before the sample's as-of date and the rest of the season as fixtures.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from time2bet.features.dbt import DBT_PROJECT_DIR, DbtError, build_features, dbt_target_env, run_dbt
from time2bet.football import DIVISIONS, parse_match_date, season_file_path
from time2bet.ingestion.parsing import parse_fixtures, parse_season_file
from time2bet.serving_contract import (
    FEATURE_COLUMNS,
    ID_COLUMNS,
    MARKET_COLUMNS,
    MODEL_FEATURES,
    OUTCOME_COLUMNS,
    RATING_FEATURES,
)
from time2bet.source.sample_site import DEFAULT_AS_OF, generate_sample_site
from time2bet.warehouse.client import PartitionLoad, Warehouse

SEASONS = ("2022-23", "2023-24", "2024-25")
SAMPLE_DIVISIONS = ("E0", "E1", "D1")
TEAM = "Llanfair Môn"  # non-ASCII name
MOVER = "Thornbury"  # plays in E0 and E1 (promotion/relegation): one history across divisions
FIXTURE_HEADERS = ("Div", "Date", "Time", "HomeTeam", "AwayTeam", "Referee", "B365H", "B365D", "B365A",
                   "PSH", "PSD", "PSA", "AvgH", "AvgD", "AvgA", "MaxH", "MaxD", "MaxA")


# --- loading raw tables as ingestion does -----------------------------------------------------------------


def _season_file(site: Path, division: str, season: str) -> bytes:
    return (site / season_file_path(division, season)).read_bytes()


def _played(site: Path, division: str, season: str) -> pd.DataFrame:
    frame = parse_season_file(_season_file(site, division, season), division=division, season=season)
    return frame[frame["match_date"] < pd.Timestamp(DEFAULT_AS_OF)].reset_index(drop=True)


def _load(division: str, season: str, frame: pd.DataFrame, sha256: str) -> PartitionLoad:
    return PartitionLoad(division, season, frame, sha256, f"raw/{division}/{season}", "http://sample/")


def _season_loads(site: Path, seasons) -> list[PartitionLoad]:
    return [
        _load(div, season, _played(site, div, season), hashlib.sha256(_season_file(site, div, season)).hexdigest())
        for season in seasons
        for div in SAMPLE_DIVISIONS
    ]


def _fixtures(site: Path) -> pd.DataFrame:
    """The last season's matches from the as-of date on, as a fixtures.csv (no results) parsed by ingestion."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for i, div in enumerate(SAMPLE_DIVISIONS):
        rows = list(csv.DictReader(io.StringIO(_season_file(site, div, SEASONS[-1]).decode("utf-8-sig"))))
        if i == 0:
            writer.writerow(FIXTURE_HEADERS)
        for row in rows:
            if parse_match_date(row["Date"]) >= DEFAULT_AS_OF:
                writer.writerow([row.get(h, "") for h in FIXTURE_HEADERS])
                last = row
    # the source lists fixtures of divisions the platform does not ingest too: they must not become features
    writer.writerow([{"Div": "SC0", "HomeTeam": "Celtic", "AwayTeam": "Rangers"}.get(h, last.get(h, ""))
                     for h in FIXTURE_HEADERS])
    return parse_fixtures(out.getvalue().encode())


@dataclass
class Built:
    url: str
    work: Path
    matches: pd.DataFrame  # raw.matches
    fixtures: pd.DataFrame  # raw.fixtures
    fct: pd.DataFrame
    upcoming: pd.DataFrame


def _dirs(work: Path) -> list[str]:
    """dbt's target/ and logs/ in the scenario's own directory (tests never share partial-parse state)."""
    return ["--target-path", str(work / "target"), "--log-path", str(work / "logs")]


def _dbt(args: list[str], url: str, work: Path):
    return run_dbt([*args, *_dirs(work)], url)


def _features(command: str, url: str, work: Path, *args: str) -> None:
    """The platform's two dbt steps around the Python ratings, as the Dagster job runs them."""
    build_features(url, command, [*args, *_dirs(work)])


def _read(url: str, table: str) -> pd.DataFrame:
    return Warehouse.from_url(url).read_sql(f"SELECT * FROM {table} ORDER BY match_id").reset_index(drop=True)


def _snapshot(url: str, work: Path) -> Built:
    return Built(
        url, work,
        matches=Warehouse.from_url(url).read_sql("SELECT * FROM raw.matches"),
        fixtures=Warehouse.from_url(url).read_sql("SELECT * FROM raw.fixtures"),
        fct=_read(url, "analytics.fct_match_features"),
        upcoming=_read(url, "analytics.upcoming_match_features"),
    )


def build_sample_features(url: str, site: Path, work: Path) -> Built:
    """Two seasons and a first build, then the third season and fixtures and an incremental build."""
    warehouse = Warehouse.from_url(url)
    warehouse.ensure_raw_tables()
    warehouse.replace_match_partitions(_season_loads(site, SEASONS[:2]))
    _features("build", url, work)  # seeds, models, ratings, unit tests and data tests
    warehouse.replace_match_partitions(_season_loads(site, SEASONS[2:]))
    warehouse.replace_fixtures(_fixtures(site), "f" * 64)
    _features("build", url, work)
    return _snapshot(url, work)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site")
    generate_sample_site(root, divisions=SAMPLE_DIVISIONS, seasons=SEASONS)
    return root


@pytest.fixture(scope="module")
def duckdb_built(site, tmp_path_factory) -> Built:
    work = tmp_path_factory.mktemp("duckdb")
    return build_sample_features(f"duckdb:///{work / 'warehouse.duckdb'}", site, work)


def _duckdb_copy(built: Built, tmp_path: Path) -> str:
    """A private copy of the built DuckDB warehouse, for tests that change it."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(built.url.removeprefix("duckdb:///"), path)
    shutil.copytree(built.work / "target", tmp_path / "target")  # keeps dbt's partial parse warm
    return f"duckdb:///{path}"


# --- expected values, computed in pandas from raw.matches -------------------------------------------------


def _team_history(matches: pd.DataFrame, team: str) -> pd.DataFrame:
    """The team's matches in date order, with the pre-match form pandas computes (one match per day here)."""
    home = matches[matches["home_team"] == team].assign(is_home=True, gf=lambda m: m["home_goals"], ga=lambda m: m["away_goals"])
    away = matches[matches["away_team"] == team].assign(is_home=False, gf=lambda m: m["away_goals"], ga=lambda m: m["home_goals"])
    t = pd.concat([home, away]).sort_values("match_date").reset_index(drop=True)
    t["match_date"] = pd.to_datetime(t["match_date"])
    t["gf"], t["ga"] = t["gf"].astype(float), t["ga"].astype(float)
    t["pts"] = np.select([t["gf"] > t["ga"], t["gf"] == t["ga"]], [3.0, 1.0], 0.0)
    t["goals_for_last5"] = t["gf"].rolling(5, min_periods=1).mean().shift(1)
    t["goals_for_last10"] = t["gf"].rolling(10, min_periods=1).mean().shift(1)
    t["goals_against_last5"] = t["ga"].rolling(5, min_periods=1).mean().shift(1)
    t["points_last5"] = t["pts"].rolling(5, min_periods=1).mean().shift(1)
    t["goals_for_ewm"] = [_weighted(t["gf"].to_numpy()[:i]) for i in range(len(t))]
    t["rest_days"] = t["match_date"].diff().dt.days
    t["matches_played"] = np.arange(len(t))
    t["venue_goals_for_last5"] = t.groupby("is_home")["gf"].transform(lambda s: s.rolling(5, min_periods=1).mean().shift(1))
    return t


def _weighted(earlier: np.ndarray) -> float:
    last = earlier[::-1][:10]  # most recent first
    if not len(last):
        return np.nan
    weights = 0.8 ** np.arange(len(last))
    return float((weights * last).sum() / weights.sum())


def _side_rows(fct: pd.DataFrame, team: str) -> pd.DataFrame:
    """The team's rows of a feature mart with its side's columns renamed to side-free names."""
    parts = []
    for side in ("home", "away"):
        rows = fct[fct[f"{side}_team"] == team]
        cols = {c: c.removeprefix(f"{side}_") for c in rows.columns if c.startswith(f"{side}_")}
        parts.append(rows.rename(columns=cols)[["match_id", "division", "match_date", *cols.values()]])
    out = pd.concat(parts).sort_values("match_date").reset_index(drop=True)
    out["match_date"] = pd.to_datetime(out["match_date"])
    return out


def assert_features_match_pandas(built: Built) -> None:
    for team in (TEAM, MOVER):
        history = _team_history(built.matches, team)
        rows = _side_rows(built.fct, team)
        assert len(rows) == len(history) > 40
        assert list(rows["match_date"]) == list(history["match_date"])
        for col in ("goals_for_last5", "goals_for_last10", "goals_for_ewm", "goals_against_last5", "points_last5",
                    "rest_days", "matches_played", "venue_goals_for_last5"):
            np.testing.assert_allclose(rows[col].astype(float), history[col].astype(float), rtol=1e-9, err_msg=col)
    assert _side_rows(built.fct, MOVER)["division"].nunique() == 2
    history = _team_history(built.matches, TEAM)
    # head-to-head from the home side: mean points in the last 5 earlier meetings, whatever the venue
    match = built.fct[(built.fct["home_team"] == TEAM)].sort_values("match_date").iloc[-1]
    opponent = match["away_team"]
    meetings = history[(history["home_team"] == opponent) | (history["away_team"] == opponent)]
    earlier = meetings[meetings["match_date"] < pd.Timestamp(match["match_date"])].tail(5)
    assert match["h2h_meetings_last5"] == len(earlier) > 0
    assert match["h2h_home_points_last5"] == pytest.approx(earlier["pts"].mean())


def assert_upcoming_uses_latest_state(built: Built) -> None:
    upcoming, fixtures = built.upcoming, built.fixtures
    ingested = fixtures[fixtures["division"].isin(set(built.matches["division"]))]
    assert len(upcoming) == len(ingested) > 0 and len(ingested) < len(fixtures)   # no fixture of another division
    assert upcoming["match_id"].is_unique
    history = _team_history(built.matches, TEAM)
    mine = _side_rows(upcoming, TEAM)
    assert len(mine) > 1  # several fixtures ahead: each sees all played matches, none sees another fixture
    last = history["gf"].tail(5).mean()
    np.testing.assert_allclose(mine["goals_for_last5"], last)
    assert (mine["matches_played"] == len(history)).all()
    assert list(mine["rest_days"]) == [(d - history["match_date"].iloc[-1]).days for d in mine["match_date"]]


def assert_same_features(a: pd.DataFrame, b: pd.DataFrame, columns) -> None:
    """Equal row for row (ordered by match_id), numbers within float tolerance."""
    assert list(a["match_id"]) == list(b["match_id"])
    for col in columns:
        x, y = a[col], b[col]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            np.testing.assert_allclose(x.astype(float), y.astype(float), rtol=1e-9, atol=1e-12, err_msg=col)
        else:
            assert list(x.astype(str)) == list(y.astype(str)), col


def _changed_rows(before: pd.DataFrame, after: pd.DataFrame) -> pd.Series:
    """Per match: does any model input (form, head-to-head or rating) differ?"""
    changed = pd.Series(False, index=before.index)
    for col in MODEL_FEATURES:
        x, y = before[col].astype(float).to_numpy(), after[col].astype(float).to_numpy()
        changed |= ~np.isclose(x, y, rtol=1e-12, atol=0, equal_nan=True)
    return changed


def edit_one_result_and_rebuild(built_before: pd.DataFrame, url: str, site: Path, work: Path) -> tuple:
    """Reload E0 2022-23 (a corrected file) with one match on the season's last day turned into 9-0, then an
    ordinary incremental dbt run. Returns (the edited match, fct after)."""
    frame = _played(site, "E0", "2022-23")
    last_day = frame["match_date"].max()
    i = frame.index[frame["match_date"] == last_day][0]
    frame.loc[i, ["home_goals", "away_goals", "result"]] = [9, 0, "H"]
    Warehouse.from_url(url).replace_match_partitions([_load("E0", "2022-23", frame, "e" * 64)])
    _features("run", url, work)
    return frame.loc[i], _read(url, "analytics.fct_match_features")


def assert_only_later_features_changed(before: pd.DataFrame, after: pd.DataFrame, edited: pd.Series) -> None:
    day = pd.Timestamp(edited["match_date"])
    dates = pd.to_datetime(before["match_date"])
    assert list(before["match_id"]) == list(after["match_id"])
    row = after[(after["home_team"] == edited["home_team"]) & (pd.to_datetime(after["match_date"]) == day)]
    assert (row["home_goals"] == 9).all() and len(row) == 1  # the edit landed
    changed = _changed_rows(before, after)
    assert not changed[dates <= day].any(), "a feature of a match on or before the edited day moved"
    assert changed[dates > day].any()
    # the edited day ends E0's season, so the change shows next season: later seasons were rebuilt
    assert (after.loc[changed, "season"] == "2023-24").any()


# --- DuckDB ---------------------------------------------------------------------------------------------


def test_every_played_match_gets_exactly_one_feature_row(duckdb_built):
    assert len(duckdb_built.fct) == len(duckdb_built.matches) > 500
    assert duckdb_built.fct["match_id"].is_unique
    assert set(duckdb_built.fct["season"]) == set(SEASONS)


def test_mart_columns_are_ids_features_market_and_outcome(duckdb_built):
    assert list(duckdb_built.fct.columns) == [*ID_COLUMNS, *FEATURE_COLUMNS, *RATING_FEATURES, *MARKET_COLUMNS,
                                              *OUTCOME_COLUMNS, "source_sha256"]
    assert list(duckdb_built.upcoming.columns) == [*ID_COLUMNS, *FEATURE_COLUMNS, *RATING_FEATURES, *MARKET_COLUMNS]


def test_rolling_form_equals_pandas_over_raw_matches(duckdb_built):
    assert_features_match_pandas(duckdb_built)


def test_upcoming_features_have_one_row_per_fixture_from_the_latest_state(duckdb_built):
    assert_upcoming_uses_latest_state(duckdb_built)


def test_incremental_runs_rebuild_only_from_the_changed_season_and_equal_a_full_refresh(duckdb_built, tmp_path):
    url = _duckdb_copy(duckdb_built, tmp_path)
    with duckdb.connect(url.removeprefix("duckdb:///")) as con:  # mark a row of an old and of the requested season
        for season in ("2022-23", "2024-25"):
            con.execute(
                "UPDATE analytics.fct_match_features SET home_goals_for_last5 = -1 WHERE match_id = "
                "(SELECT min(match_id) FROM analytics.fct_match_features WHERE season = ?)", [season]
            )
    _dbt(["run", "--select", "fct_match_features", "--vars", '{"seasons": ["E0|2024-25"]}'], url, tmp_path)
    marked = _read(url, "analytics.fct_match_features").groupby("season")["home_goals_for_last5"].min()
    assert marked["2022-23"] == -1  # untouched: before the requested season
    assert marked["2024-25"] >= 0  # rebuilt

    _dbt(["run", "--select", "fct_match_features", "--full-refresh"], url, tmp_path)
    full = _read(url, "analytics.fct_match_features")
    assert_same_features(duckdb_built.fct, full, full.columns)  # the incremental build equals a full refresh


def test_changing_a_result_moves_only_later_features_duckdb(duckdb_built, site, tmp_path):
    url = _duckdb_copy(duckdb_built, tmp_path)
    edited, after = edit_one_result_and_rebuild(duckdb_built.fct, url, site, tmp_path)
    assert_only_later_features_changed(duckdb_built.fct, after, edited)


# --- PostgreSQL -----------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_builds_the_same_features_as_duckdb(postgres_db, site, duckdb_built, tmp_path):
    built = build_sample_features(postgres_db, site, tmp_path)
    assert len(built.fct) == len(built.matches)
    assert_features_match_pandas(built)
    assert_upcoming_uses_latest_state(built)
    assert_same_features(duckdb_built.fct, built.fct, [*ID_COLUMNS, *MODEL_FEATURES, *MARKET_COLUMNS, *OUTCOME_COLUMNS])
    assert_same_features(duckdb_built.upcoming, built.upcoming, built.upcoming.columns)

    edited, after = edit_one_result_and_rebuild(built.fct, postgres_db, site, tmp_path)
    assert_only_later_features_changed(built.fct, after, edited)


# --- plumbing -------------------------------------------------------------------------------------------


def test_dbt_target_env_for_duckdb():
    assert dbt_target_env("duckdb:////data/warehouse.duckdb") == {
        "DBT_TARGET": "duckdb", "TIME2BET_DUCKDB_PATH": "/data/warehouse.duckdb"}


def test_dbt_target_env_for_postgres_decodes_the_url():
    assert dbt_target_env("postgresql://feat%40user:p%2Fw@db.internal:6543/time2bet") == {
        "DBT_TARGET": "postgres", "TIME2BET_PG_HOST": "db.internal", "TIME2BET_PG_PORT": "6543",
        "TIME2BET_PG_USER": "feat@user", "TIME2BET_PG_PASSWORD": "p/w", "TIME2BET_PG_DBNAME": "time2bet"}


def test_dbt_target_env_defaults_the_port_and_password():
    env = dbt_target_env("postgres://postgres@127.0.0.1/warehouse")
    assert (env["TIME2BET_PG_PORT"], env["TIME2BET_PG_PASSWORD"], env["TIME2BET_PG_DBNAME"]) == ("5432", "", "warehouse")


@pytest.mark.parametrize("url", ["sqlite:///x.db", "duckdb:///", "postgresql://127.0.0.1:5432/db",
                                 "postgresql://user:secret@host:5432/"])
def test_dbt_target_env_rejects_urls_it_cannot_serve_without_echoing_passwords(url):
    with pytest.raises(ValueError) as err:
        dbt_target_env(url)
    assert "secret" not in str(err.value)


def test_run_dbt_raises_with_the_tail_of_dbt_output(tmp_path):
    with pytest.raises(DbtError, match="no-such-command"):
        run_dbt(["no-such-command"], f"duckdb:///{tmp_path / 'w.duckdb'}")


def test_divisions_seed_matches_the_platforms_divisions():
    with open(DBT_PROJECT_DIR / "seeds" / "divisions.csv", newline="") as fh:
        rows = [(r["division"], r["country"], r["division_name"]) for r in csv.DictReader(fh)]
    assert rows == [(d.code, d.country, d.name) for d in DIVISIONS.values()]
