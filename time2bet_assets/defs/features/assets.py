"""Feature assets: the dbt project, one Dagster asset per model and one asset check per dbt test."""

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, dbt_assets

from time2bet_assets.defs.features.resources import WarehouseDbtResource, dbt_project

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
