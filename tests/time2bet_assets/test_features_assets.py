"""dbt inside Dagster: every model an asset, every dbt test an asset check, on the ingested sample site."""

from __future__ import annotations

from pathlib import Path

from time2bet.features.dbt import DBT_PROJECT_DIR
from time2bet.ingestion.discovery import discover_season_files
from time2bet.warehouse.client import Warehouse
from time2bet_assets.definitions import build_definitions
from time2bet_assets.defs.ingestion.backfill import run_season_file_backfill


def test_dbt_models_materialise_after_ingestion_with_their_tests_as_checks(server, platform, instance):
    settings, _ = platform(server.url)
    defs = build_definitions(settings)
    links = discover_season_files(server.url)
    ingest = run_season_file_backfill(defs, instance, sorted({l.division for l in links}), sorted({l.season for l in links}))
    assert all(r.success for r in ingest)
    fixtures = defs.resolve_job_def("refresh_fixtures").execute_in_process(instance=instance)
    assert fixtures.success

    result = defs.resolve_job_def("build_features").execute_in_process(instance=instance)
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"stg_matches", "int_team_form_computed", "fct_match_features", "upcoming_match_features",
            "team_ratings"} <= materialized
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)
    for suite in ("raw_matches_expectations", "fct_match_features_expectations"):
        ge = next(c for c in checks if c.check_name == suite)
        assert Path(ge.metadata["data_docs"].value).exists() and ge.metadata["rows_validated"].value > 0
    wh = Warehouse.from_url(settings.warehouse_url)
    n_raw = int(wh.read_sql("SELECT count(*) AS n FROM raw.matches")["n"].iloc[0])
    n_features = int(wh.read_sql("SELECT count(*) AS n FROM analytics.fct_match_features")["n"].iloc[0])
    n_upcoming = int(wh.read_sql("SELECT count(*) AS n FROM analytics.upcoming_match_features")["n"].iloc[0])
    n_fixtures = int(wh.read_sql("SELECT count(*) AS n FROM raw.fixtures")["n"].iloc[0])
    assert n_features == n_raw > 0
    assert n_upcoming == n_fixtures > 0
    ratings = wh.read_sql("SELECT count(*) AS n, count(DISTINCT match_id) AS ids FROM ratings.match_ratings").iloc[0]
    assert ratings["n"] == ratings["ids"] == n_raw
    fixture_ratings = wh.read_sql("SELECT count(*) AS n FROM ratings.fixture_ratings")["n"].iloc[0]
    assert fixture_ratings == n_fixtures

    # the next build's dbt steps start from this warehouse's own partial-parse state: no re-parse of the project
    # (the project-level state is parsed with the profile's default connection, void for this warehouse)
    again = defs.resolve_job_def("build_features").execute_in_process(instance=instance)
    assert again.success
    logs = sorted((DBT_PROJECT_DIR / "target").glob(f"*-{again.run_id[:7]}-*/dbt.log"))
    assert len(logs) == 2, logs   # the staging and the marts invocations
    for log in logs:
        text = log.read_text()
        assert "UnableToPartialParse" not in text and "PartialParsingEnabled" in text, log

    # an impossible score slips into raw.matches (say, by hand): the blocking suite stops the dbt build
    import duckdb

    with duckdb.connect(settings.warehouse_url.removeprefix("duckdb:///")) as con:
        con.execute("UPDATE raw.matches SET home_goals = 40 WHERE source_row = 2 AND division = 'E0'")
    failed = defs.resolve_job_def("build_features").execute_in_process(instance=instance, raise_on_error=False)
    assert not failed.success
    ge = next(c for c in failed.get_asset_check_evaluations() if c.check_name == "raw_matches_expectations")
    assert not ge.passed
    failures = ge.metadata["failed_expectations"].value
    assert any(f["column"] == "home_goals" and f["unexpected_count"] >= 1 for f in failures)
    assert any(ex.get("source_row") == 2 for f in failures for ex in f["examples"] if isinstance(ex, dict))
    assert not failed.get_asset_materialization_events()  # nothing downstream ran
