"""Time2Bet: football match-outcome forecasting platform (library code used by Dagster, the CLI and the service)."""
