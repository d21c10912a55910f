"""Monitoring: the prediction ledger loaded and anchored, live quality and drift, figures for Prometheus (the
monitoring assets' own, and the pipeline's: failed runs and the ingestion's state, exported by sensors)."""

import dagster as dg

from time2bet.settings import Settings
from time2bet_assets.defs.monitoring.assets import drift_report, live_quality, prediction_ledger
from time2bet_assets.defs.monitoring.jobs import load_prediction_ledger_job, monitor_job
from time2bet_assets.defs.monitoring.resources import monitoring_resources
from time2bet_assets.defs.monitoring.sensors import dagster_runs_figures, ingestion_figures


def monitoring_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[prediction_ledger, live_quality, drift_report],
        jobs=[load_prediction_ledger_job, monitor_job],
        sensors=[dagster_runs_figures, ingestion_figures],
        resources=monitoring_resources(settings),
    )
