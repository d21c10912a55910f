"""Watching the model in production: live quality, drift and the figures Prometheus scrapes.

- :mod:`~time2bet.monitoring.live_quality`: ledger predictions joined to played matches (the last prediction per
  match, model version and variant made before kickoff), scored beside the de-margined market and the Elo-only
  reference on exactly the same matches; the checks' verdicts;
- :mod:`~time2bet.monitoring.versions`: what the registry and the training run say about a version (its
  promotion-time log-loss, its training window, the Elo-only reference it fitted);
- :mod:`~time2bet.monitoring.drift`: Evidently reports of feature, prediction and target drift against the
  champion's training window;
- :mod:`~time2bet.monitoring.prometheus`: the figures as Prometheus gauges, in a textfile and on a Pushgateway;
- :mod:`~time2bet.monitoring.store`: the warehouse tables ``monitoring.*`` and their partition replacement.

Core layer, above :mod:`time2bet.ml`: it imports the core stages below and the floor, never Dagster or the service
(the Dagster area ``time2bet_assets/defs/monitoring`` runs it).
"""
