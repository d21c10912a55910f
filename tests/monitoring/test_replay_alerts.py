"""The shipped alert rules over a replay's exported figures (time2bet.monitoring.replay_alerts): the figures the
monitoring assets export, step by step, make the model alerts fire at exactly the steps whose figures cross the
rules' thresholds, through `promtool test rules`."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from time2bet.monitoring import prometheus
from time2bet.monitoring.replay_alerts import MetricSeries, alert_names, fired_alerts, promtool_path, rule_files

pytestmark = pytest.mark.skipif(promtool_path() is None, reason="promtool not installed (apt-get install prometheus)")


def _drift(week: str, *, target: bool, share: float):
    columns = pd.DataFrame([{"kind": "target", "column_name": "result", "statistic": 0.01 if target else 0.6,
                             "drifted": target}])
    result = SimpleNamespace(share_drifted=share, features_drifted=int(share * 10), features_tested=10,
                             dataset_drift=share >= 0.5, prediction_drift=False, target_drift=target, n_reference=900,
                             n_current=40, n_current_played=40, columns=columns)
    return prometheus.drift_figures(week, "match_outcome", "3", result)


def _quality(week: str, log_loss: float, elo: float, n: int = 150):
    row = {"week": week, "window": "rolling", "model_name": "match_outcome", "model_version": "3",
           "variant": "champion", "division": "ALL", "n": n, "log_loss": log_loss, "rps": 0.2, "brier": 0.6,
           "accuracy": 0.5, "ece": 0.03, "n_with_odds": n, "market_log_loss": 0.97, "model_log_loss_on_odds": log_loss,
           "n_elo": n, "elo_log_loss": elo, "model_log_loss_on_elo": log_loss}
    return prometheus.live_quality_figures(pd.DataFrame([row]), {("match_outcome", "3"): 0.99})


def test_the_model_alerts_fire_at_the_steps_whose_figures_cross_the_rules(tmp_path):
    series = MetricSeries()
    weeks = [("2025-02-03", False, 0.1, 1.0, 1.01), ("2025-02-10", True, 0.6, 1.0, 1.01),
             ("2025-02-17", False, 0.1, 1.02, 1.01)]
    for week, target, share, live, elo in weeks:
        prometheus.export(_drift(week, target=target, share=share), asset="drift_report", home=tmp_path)
        prometheus.export(_quality(week, live, elo), asset="live_quality", home=tmp_path)
        series.record(week, tmp_path)
    assert "TargetDrift" in alert_names(rule_files())
    assert fired_alerts(series) == [[], ["FeatureDrift", "TargetDrift"],
                                    ["LiveLogLossAboveEstimate", "LiveLogLossWorseThanEloReference"]]


def test_no_figures_no_alerts(tmp_path):
    series = MetricSeries()
    series.record("2025-02-03", tmp_path)
    assert fired_alerts(series) == [[]]
