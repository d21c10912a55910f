"""Serving: the serving snapshot exported as files for the service (bento_service), which then never opens the
warehouse while Dagster writes it."""

import dagster as dg

from time2bet.settings import Settings
from time2bet_assets.defs.serving.assets import ServingSnapshotStore, serving_snapshot
from time2bet_assets.lib.warehouse import warehouse_resource


def serving_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[serving_snapshot],
        resources={"serving_snapshot_store": ServingSnapshotStore(root=str(settings.serving_snapshot_dir)),
                   "warehouse": warehouse_resource(settings)},
    )
