"""Resources of the monitoring area: its own settings (where artefacts go, the registry, the Pushgateway, the live
checks' policy), and the shared warehouse and ledger resources of ``time2bet_assets.lib``."""

from pathlib import Path

import dagster as dg

from time2bet.settings import Settings, monitoring_dir
from time2bet_assets.lib.ledger import ledger_resource
from time2bet_assets.lib.warehouse import warehouse_resource


class MonitoringResource(dg.ConfigurableResource):
    """Where monitoring writes (``<home>/monitoring``: drift reports, plots, the Prometheus textfile), the registry
    it reads model versions from, the Pushgateway it pushes to, and the policy of the live-quality checks.

    ``min_matches``: a check judges a version and variant only on at least this many matches of its rolling window
    (the mean log-loss of n matches varies by about 0.35/sqrt(n): 0.035 at 100, more than the margin); below, it
    passes with a note. ``window_weeks``: the rolling window, in kickoff weeks ending with the partition's."""

    home: str
    dataset_dir: str
    tracking_uri: str
    model_name: str
    pushgateway_url: str | None = None
    logloss_margin: float = 0.02
    min_matches: int = 100
    window_weeks: int = 8

    @property
    def folder(self) -> Path:
        return monitoring_dir(self.home)


def monitoring_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "monitoring": MonitoringResource(
            home=str(settings.home), dataset_dir=str(settings.home / "datasets"),
            tracking_uri=settings.mlflow_tracking_uri, model_name=settings.model_name,
            pushgateway_url=settings.pushgateway_url, logloss_margin=settings.live_logloss_margin),
        "warehouse": warehouse_resource(settings),
        "ledger": ledger_resource(settings),
    }
