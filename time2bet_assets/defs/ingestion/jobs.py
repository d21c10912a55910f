"""Jobs of the ingestion area (object selections only: string selections are fragile, see STACK_NOTES §0.1)."""

import dagster as dg

from time2bet_assets.defs.ingestion.assets import raw_fixtures, raw_match_files, raw_matches, source_season_files
from time2bet_assets.defs.ingestion.checks import raw_matches_expectations
from time2bet_assets.defs.ingestion.partitions import season_file_partitions

ingest_season_files_job = dg.define_asset_job(
    "ingest_season_files",
    # the Great Expectations suite reads the whole table: it runs once before the features, not per backfill
    selection=dg.AssetSelection.assets(raw_match_files, raw_matches) - dg.AssetSelection.checks(raw_matches_expectations),
    partitions_def=season_file_partitions,
    description="Crawl season files, land them in the raw zone and load raw.matches (any range of partitions).",
)

# Observation runs launched by `time2bet ingest` carry this tag: the caller ingests what they find itself, so
# changed_season_files_sensor leaves them alone.
INGESTED_BY_CALLER_TAG = "time2bet/ingested_by_caller"

observe_season_files_job = dg.define_asset_job(
    "observe_season_files",
    selection=dg.AssetSelection.assets(source_season_files.key),
    partitions_def=season_file_partitions,
    description="Crawl season files (conditional requests) and record which changed since they were loaded; "
    "changed_season_files_sensor then ingests just those.",
)

refresh_fixtures_job = dg.define_asset_job(
    "refresh_fixtures",
    selection=dg.AssetSelection.assets(raw_fixtures),
    description="Crawl /fixtures.csv and replace raw.fixtures.",
)
