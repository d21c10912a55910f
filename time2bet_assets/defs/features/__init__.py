"""Features: dbt models from the raw tables to leakage-safe match features."""

import dagster as dg

from time2bet.settings import Settings
from time2bet_assets.defs.features.assets import FOOTBALL_DBT, team_ratings
from time2bet_assets.defs.features.checks import fct_match_features_expectations
from time2bet_assets.defs.features.resources import features_resources
from time2bet_assets.defs.ingestion.checks import raw_matches_expectations


build_features_job = dg.define_asset_job(
    "build_features",
    # the raw-data expectations run first and, being blocking, stop the dbt build when they fail
    selection=dg.AssetSelection.assets(*FOOTBALL_DBT, team_ratings)
    | dg.AssetSelection.checks(raw_matches_expectations, fct_match_features_expectations),
    description="Validate raw.matches (Great Expectations), dbt build staging and form, compute ratings, dbt build the marts.",
)


def features_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[*FOOTBALL_DBT, team_ratings], asset_checks=[fct_match_features_expectations],
        jobs=[build_features_job], resources=features_resources(settings),
    )
