"""The Dagster code location of Time2Bet (entry point: ``time2bet_assets.definitions``)."""
