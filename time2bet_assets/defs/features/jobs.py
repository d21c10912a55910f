"""Jobs of the features area."""

import dagster as dg

from time2bet_assets.defs.features.assets import FOOTBALL_DBT, team_ratings
from time2bet_assets.defs.features.checks import fct_match_features_expectations

# ingestion's Great Expectations suite on raw.matches, named by key (areas do not import each other)
RAW_MATCHES_EXPECTATIONS = dg.AssetCheckKey(dg.AssetKey(["raw_matches"]), "raw_matches_expectations")
# the serving area's export, named by key: the service picks the new features up without a restart
SERVING_SNAPSHOT = dg.AssetKey(["serving_snapshot"])

build_features_job = dg.define_asset_job(
    "build_features",
    # the raw-data expectations run first and, being blocking, stop the dbt build when they fail
    selection=dg.AssetSelection.assets(*FOOTBALL_DBT, team_ratings, SERVING_SNAPSHOT)
    | dg.AssetSelection.checks(RAW_MATCHES_EXPECTATIONS, fct_match_features_expectations),
    description="Validate raw.matches (Great Expectations), dbt build staging and form, compute ratings, dbt build the marts, export the serving snapshot.",
)
