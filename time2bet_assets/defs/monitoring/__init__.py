"""Monitoring: the prediction ledger loaded and anchored, live quality and drift, figures for Prometheus."""

import dagster as dg

from time2bet.settings import Settings
from time2bet_assets.defs.monitoring.assets import drift_report, live_quality, prediction_ledger
from time2bet_assets.defs.monitoring.jobs import load_prediction_ledger_job, monitor_job
from time2bet_assets.defs.monitoring.resources import monitoring_resources


def monitoring_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[prediction_ledger, live_quality, drift_report],
        jobs=[load_prediction_ledger_job, monitor_job],
        resources=monitoring_resources(settings),
    )
