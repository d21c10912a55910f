"""Features: dbt models from the raw tables to leakage-safe match features."""

import dagster as dg

from time2bet.settings import Settings
from time2bet_assets.defs.features.assets import football_features_dbt
from time2bet_assets.defs.features.resources import features_resources


def features_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=[football_features_dbt], resources=features_resources(settings))
