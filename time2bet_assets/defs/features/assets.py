"""Feature assets: the dbt project (two steps around the ratings), one Dagster asset per model and one asset
check per dbt test, and the Python ratings the marts join."""

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets, get_asset_key_for_model

from time2bet.features.dbt import MARTS_SELECTOR
from time2bet.features.ratings import RATING_TABLES, rebuild_rating_tables
from time2bet_assets.defs.features.resources import WarehouseDbtResource, dbt_project
from time2bet_assets.lib.warehouse import WarehouseResource

# dbt sources are the assets that load them, named by key: ingestion's for raw, the Python ratings for ratings
SOURCE_ASSETS = {
    ("raw", "matches"): dg.AssetKey("raw_matches"),
    ("raw", "match_files"): dg.AssetKey("raw_matches"),
    ("raw", "fixtures"): dg.AssetKey("raw_fixtures"),
    ("ratings", "match_ratings"): dg.AssetKey("team_ratings"),
    ("ratings", "fixture_ratings"): dg.AssetKey("team_ratings"),
}
# The marts join the ratings, which a Python asset computes from staging: so the dbt project runs as two
# steps around it (one op cannot be both upstream and downstream of team_ratings).
MARTS = MARTS_SELECTOR


class FeaturesTranslator(DagsterDbtTranslator):
    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            key = SOURCE_ASSETS.get((props["source_name"], props["name"]))
            return spec.replace_attributes(key=key) if key else spec
        return spec.replace_attributes(group_name="features")


# several dbt sources are tables of one asset (raw_matches writes two, team_ratings three)
TRANSLATOR = FeaturesTranslator(DagsterDbtTranslatorSettings(enable_duplicate_source_asset_keys=True))


def _dbt_build(context: dg.AssetExecutionContext, dbt: WarehouseDbtResource):
    os.environ.update(dbt.target_env())  # the profile reads its target and connection from the environment
    # no .fetch_row_counts(): it opens the DuckDB file in this process, which then blocks other connections.
    # Unit tests check the models' logic on fixed inputs: they run in CI (tests/dbt_project), not on every build
    # of the data (dbt's own advice); the data tests run here.
    invocation = dbt.cli(["build", "--exclude-resource-type", "unit_test"], context=context)
    yield from invocation.stream()
    dbt.after_build(invocation.target_path)


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=TRANSLATOR,
            exclude=MARTS)
def football_staging_dbt(context: dg.AssetExecutionContext, dbt: WarehouseDbtResource):
    """`dbt build` up to the ratings: seeds, staging views, pre-match form and head-to-head tables, their tests."""
    yield from _dbt_build(context, dbt)


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=TRANSLATOR,
            select=MARTS)
def football_marts_dbt(context: dg.AssetExecutionContext, dbt: WarehouseDbtResource):
    """`dbt build` of the marts, which join form, head-to-head and ratings (incremental fct_match_features)."""
    yield from _dbt_build(context, dbt)


FOOTBALL_DBT = (football_staging_dbt, football_marts_dbt)
STG_MATCHES = get_asset_key_for_model([football_staging_dbt], "stg_matches")
STG_FIXTURES = get_asset_key_for_model([football_staging_dbt], "stg_fixtures")


@dg.asset(deps=[STG_MATCHES, STG_FIXTURES], group_name="features", kinds={"python", "numpy"})
def team_ratings(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Elo and pi-ratings, which need a sequential update per match (SQL does that badly): pre-match ratings
    of every played match (``ratings.match_ratings``), each team's current state (``ratings.team_state``), the
    pre-match ratings of upcoming fixtures, rated in the same run (``ratings.fixture_ratings``), and each team's
    season-start standing (``ratings.season_entry``, for the service's other pairs); the dbt marts join them."""
    tables = rebuild_rating_tables(warehouse.open())
    per_match, state, upcoming, _ = (tables[name] for name in RATING_TABLES)
    top = state.sort_values("elo", ascending=False).head(10)[["team_id", "elo", "matches"]]
    context.log.info(f"ratings for {len(per_match)} matches, {len(state)} teams, {len(upcoming)} fixtures")
    return dg.MaterializeResult(metadata={
        "matches": len(per_match),
        "teams": len(state),
        "fixtures": len(upcoming),
        "top_elo": dg.MetadataValue.md(top.round(1).to_markdown(index=False)),
    })
