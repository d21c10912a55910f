"""Entry point of the Dagster code location: merges the definitions of every area."""

import dagster as dg

from time2bet_assets.defs import ingestion

defs = dg.Definitions.merge(ingestion.defs)
