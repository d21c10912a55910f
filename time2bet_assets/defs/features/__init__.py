"""Features: dbt models from the raw tables to leakage-safe match features."""

import dagster as dg

from time2bet.settings import Settings
from time2bet_assets.defs.features.assets import FOOTBALL_DBT, team_ratings
from time2bet_assets.defs.features.checks import fct_match_features_expectations
from time2bet_assets.defs.features.feast import (
    FeastRepoResource,
    feast_online_features,
    materialize_online_features_job,
)
from time2bet_assets.defs.features.jobs import build_features_job
from time2bet_assets.defs.features.resources import features_resources
from time2bet_assets.defs.features.sensors import features_on_new_data


def features_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[*FOOTBALL_DBT, team_ratings, feast_online_features], asset_checks=[fct_match_features_expectations],
        jobs=[build_features_job, materialize_online_features_job], sensors=[features_on_new_data],
        resources={**features_resources(settings), "feast_repo": FeastRepoResource.from_settings(settings)},
    )
