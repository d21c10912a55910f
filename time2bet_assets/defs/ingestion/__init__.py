"""Ingestion: source site -> raw zone -> warehouse raw tables."""

import dagster as dg

from time2bet.settings import Settings
from time2bet_assets.defs.ingestion.assets import raw_fixtures, raw_match_files, raw_matches, source_season_files
from time2bet_assets.defs.ingestion.checks import raw_matches_expectations
from time2bet_assets.defs.ingestion.jobs import ingest_season_files_job, observe_season_files_job, refresh_fixtures_job
from time2bet_assets.defs.ingestion.resources import ingestion_resources
from time2bet_assets.defs.ingestion.schedules import refresh_current_season, refresh_fixtures_schedule
from time2bet_assets.defs.ingestion.sensors import changed_season_files_sensor, new_season_files_sensor


def ingestion_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[source_season_files, raw_match_files, raw_matches, raw_fixtures],
        asset_checks=[raw_matches_expectations],
        jobs=[ingest_season_files_job, observe_season_files_job, refresh_fixtures_job],
        schedules=[refresh_current_season, refresh_fixtures_schedule],
        sensors=[new_season_files_sensor, changed_season_files_sensor],
        resources=ingestion_resources(settings),
    )
