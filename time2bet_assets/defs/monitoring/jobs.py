"""Jobs of the monitoring area. A job's assets share one partitioning, so the ledger's daily load is its own job;
``monitor`` scores and checks a kickoff week once the ledger holds its predictions."""

import dagster as dg

from time2bet_assets.defs.monitoring.assets import drift_report, live_quality, prediction_ledger
from time2bet_assets.defs.monitoring.partitions import kickoff_weeks, ledger_days

load_prediction_ledger_job = dg.define_asset_job(
    "load_prediction_ledger",
    selection=dg.AssetSelection.assets(prediction_ledger),
    partitions_def=ledger_days,
    description="Verify the prediction ledger (against the anchors recorded so far), load a UTC day of it into "
                "monitoring.ledger_predictions and anchor the day's chain heads.",
)

monitor_job = dg.define_asset_job(
    "monitor",
    selection=dg.AssetSelection.assets(live_quality, drift_report),
    partitions_def=kickoff_weeks,
    description="Live quality (with its checks) and drift of a kickoff week, from the loaded ledger.",
)
