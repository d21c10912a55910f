"""Feature assets: the dbt project, one Dagster asset per model and one asset check per dbt test."""

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, dbt_assets, get_asset_key_for_model

from time2bet.ml.ratings import current_ratings, fixture_ratings, match_ratings

from time2bet_assets.defs.features.resources import WarehouseDbtResource, dbt_project
from time2bet_assets.defs.ingestion.resources import WarehouseResource

# dbt sources are the ingestion assets that load them
SOURCE_ASSETS = {
    ("raw", "matches"): dg.AssetKey("raw_matches"),
    ("raw", "match_files"): dg.AssetKey("raw_matches"),
    ("raw", "fixtures"): dg.AssetKey("raw_fixtures"),
}


class FeaturesTranslator(DagsterDbtTranslator):
    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            key = SOURCE_ASSETS.get((props["source_name"], props["name"]))
            return spec.replace_attributes(key=key) if key else spec
        return spec.replace_attributes(group_name="features")


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=FeaturesTranslator())
def football_features_dbt(context: dg.AssetExecutionContext, dbt: WarehouseDbtResource):
    """`dbt build` of the selected models: staging views, pre-match form tables, incremental feature marts."""
    os.environ.update(dbt.target_env())  # the profile reads its target and connection from the environment
    # no .fetch_row_counts(): it opens the DuckDB file in this process, which then blocks other connections
    yield from dbt.cli(["build"], context=context).stream()


STG_MATCHES = get_asset_key_for_model([football_features_dbt], "stg_matches")
STG_FIXTURES = get_asset_key_for_model([football_features_dbt], "stg_fixtures")


@dg.asset(deps=[STG_MATCHES, STG_FIXTURES], group_name="features", kinds={"python", "numpy"})
def team_ratings(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Elo and pi-ratings, which need a sequential update per match (SQL does that badly): pre-match ratings
    of every played match (``ratings.match_ratings``), each team's current state (``ratings.team_state``) and
    the pre-match ratings of upcoming fixtures (``ratings.fixture_ratings``), all joined by match_id."""
    wh = warehouse.open()
    matches = wh.read_sql(
        "SELECT match_id, division, season, match_date, home_team_id, away_team_id, home_goals, away_goals "
        "FROM analytics.stg_matches"
    )
    fixtures = wh.read_sql("SELECT match_id, division, home_team_id, away_team_id FROM analytics.stg_fixtures")
    per_match = match_ratings(matches)
    state = current_ratings(matches)
    upcoming = fixture_ratings(fixtures, state)
    wh.replace_table("ratings.match_ratings", per_match)
    wh.replace_table("ratings.team_state", state)
    wh.replace_table("ratings.fixture_ratings", upcoming)
    top = state.sort_values("elo", ascending=False).head(10)[["team_id", "elo", "matches"]]
    context.log.info(f"ratings for {len(per_match)} matches, {len(state)} teams, {len(upcoming)} fixtures")
    return dg.MaterializeResult(metadata={
        "matches": len(per_match),
        "teams": len(state),
        "fixtures": len(upcoming),
        "top_elo": dg.MetadataValue.md(top.round(1).to_markdown(index=False)),
    })
