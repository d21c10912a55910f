"""The serving snapshot export: the tables the service's snapshot is built from, as Parquet files in a new
version directory, then the pointer ``current.json`` replaced atomically (time2bet.serving_snapshot_store).

The service polls the pointer (TIME2BET_SNAPSHOT_POLL_S) and swaps in a new version without a restart; it reads
only these files, so it never holds the DuckDB file a Dagster run writes. The jobs that change what it reads
(build_features, train_and_promote) end with this asset."""

import dagster as dg

from time2bet.serving_snapshot_store import read_tables, write_snapshot
from time2bet_assets.lib.warehouse import WarehouseResource

# upstream, named by key (areas do not import each other): what SNAPSHOT_QUERIES reads
STG_MATCHES = dg.AssetKey(["stg_matches"])
STG_FIXTURES = dg.AssetKey(["stg_fixtures"])
TEAM_FORM = dg.AssetKey(["int_team_form_computed"])
HEAD_TO_HEAD = dg.AssetKey(["int_head_to_head_computed"])
TEAM_RATINGS = dg.AssetKey(["team_ratings"])
BATCH_PREDICTIONS = dg.AssetKey(["batch_predictions"])
UPSTREAM = [STG_MATCHES, STG_FIXTURES, TEAM_FORM, HEAD_TO_HEAD, TEAM_RATINGS, BATCH_PREDICTIONS]


class ServingSnapshotStore(dg.ConfigurableResource):
    """The directory of exported snapshot versions (TIME2BET_SERVING_SNAPSHOT_DIR)."""

    root: str


@dg.asset(deps=UPSTREAM, group_name="serving", kinds={"parquet"})
def serving_snapshot(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                     serving_snapshot_store: ServingSnapshotStore) -> dg.MaterializeResult:
    """Teams, next-match form, next-meeting head-to-head, team ratings and stored predictions, exported for the
    service as a new version (the previous predictions when batch_predictions did not run in this job)."""
    tables = read_tables(warehouse.open())
    pointer = write_snapshot(tables, serving_snapshot_store.root)
    context.log.info(f"serving snapshot {pointer['version']} (features as of {pointer['features_as_of']})")
    return dg.MaterializeResult(metadata={
        "version": pointer["version"],
        "features_as_of": str(pointer["features_as_of"]),
        "path": dg.MetadataValue.path(f"{serving_snapshot_store.root}/{pointer['version']}"),
        **{f"{name}_rows": len(frame) for name, frame in tables.items()},
    })
