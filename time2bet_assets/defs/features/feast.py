"""The Feast feature store's materialization: one version of the serving state into Feast's offline store, its
newest rows into the online store the service reads when TIME2BET_FEATURES=feast (time2bet.features.feature_store)."""

import datetime as dt

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from time2bet.features import feature_store
from time2bet.settings import Settings
from time2bet_assets.defs.features.assets import football_marts_dbt, football_staging_dbt, team_ratings
from time2bet_assets.lib.warehouse import WarehouseResource

UPSTREAM = [get_asset_key_for_model([football_staging_dbt], "int_team_form_computed"),
            get_asset_key_for_model([football_staging_dbt], "int_head_to_head_computed"),
            get_asset_key_for_model([football_marts_dbt], "fct_match_features"), team_ratings.key]


class FeastRepoResource(dg.ConfigurableResource):
    """The Feast repository of the settings; its fields are the settings' own names, which is all
    time2bet.features.feature_store reads of them."""

    feast_dir: str
    feast_project: str
    feast_online_store: str
    redis_url: str
    warehouse_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "FeastRepoResource":
        return cls(feast_dir=str(settings.feast_dir), feast_project=settings.feast_project,
                   feast_online_store=settings.feast_online_store, redis_url=settings.redis_url,
                   warehouse_url=settings.warehouse_url)


@dg.asset(deps=UPSTREAM, group_name="features", kinds={"feast"})
def feast_online_features(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                          feast_repo: FeastRepoResource) -> dg.MaterializeResult:
    """Team form, team ratings and head-to-head as of the latest played match, added as a version to Feast's
    offline store and materialized into its online store; the played matches' feature rows, offline only."""
    store = feature_store.open_store(feast_repo)
    feature_store.apply(store, feast_repo)
    frames = feature_store.state_frames(warehouse.open())
    version = feature_store.write_offline(feast_repo, warehouse.open(), frames)
    valid_from = frames[feature_store.FORM_VIEW][feature_store.VALID_FROM]
    until = max(dt.datetime.now(dt.UTC), valid_from.max().to_pydatetime() if len(valid_from) else feature_store.EPOCH)
    feature_store.materialize(store, until + dt.timedelta(seconds=1))
    context.log.info(f"feast version {version}: {', '.join(f'{k} {len(v)}' for k, v in frames.items())} rows")
    return dg.MaterializeResult(metadata={
        "version": version, "project": feast_repo.feast_project, "online_store": feast_repo.feast_online_store,
        "valid_from": str(valid_from.max()) if len(valid_from) else "",
        **{f"{view}_rows": len(frame) for view, frame in frames.items()},
    })


materialize_online_features_job = dg.define_asset_job(
    "materialize_online_features", selection=dg.AssetSelection.assets(feast_online_features),
    description="Export the serving state to Feast (offline version, online store) for TIME2BET_FEATURES=feast.")
