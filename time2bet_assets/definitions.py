"""Entry point of the Dagster code location: merges the definitions of every area."""

import dagster as dg

from time2bet.settings import Settings
from time2bet_assets.defs.features import features_definitions
from time2bet_assets.defs.ingestion import ingestion_definitions
from time2bet_assets.defs.ml import ml_definitions
from time2bet_assets.defs.monitoring import monitoring_definitions
from time2bet_assets.defs.serving import serving_definitions
from time2bet_assets.lib.executor import executor_for


def build_definitions(settings: Settings) -> dg.Definitions:
    """All definitions for one configuration (the CLI and tests build their own; Dagster loads ``defs``)."""
    return dg.Definitions.merge(
        ingestion_definitions(settings), features_definitions(settings), ml_definitions(settings),
        serving_definitions(settings), monitoring_definitions(settings),
        dg.Definitions(executor=executor_for(settings)),
    )


defs = build_definitions(Settings.from_env())
