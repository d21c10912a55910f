"""The monitoring figures as Prometheus gauges: each asset's own textfile, all of them in metrics.prom (valid
exposition), and a push per asset to a Pushgateway when one is configured; a failed push leaves the textfile."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
import typing

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from time2bet.monitoring import prometheus
from time2bet.monitoring.drift import DriftResult

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _ledger():
    return prometheus.ledger_figures(
        "2026-12-06", predictions=30, records=2, chains=1, problems=0, problems_elsewhere=1, torn_tails=0,
        freshness={"ingestion": NOW - dt.timedelta(hours=2), "training": NOW - dt.timedelta(days=3),
                   "predictions": None}, now=NOW)


def _live():
    row = {"week": pd.Timestamp("2025-02-24"), "window": "rolling", "model_name": "match_outcome",
           "model_version": "2", "variant": "champion", "division": "ALL", "n": 15, "log_loss": 1.04, "rps": 0.2,
           "brier": 0.6, "accuracy": 0.5, "ece": 0.1, "ece_home": 0.1, "ece_draw": 0.05, "ece_away": 0.15,
           "n_with_odds": 14, "model_log_loss_on_odds": 1.03, "market_log_loss": 0.97, "market_rps": 0.19,
           "market_brier": 0.58, "market_accuracy": 0.55, "n_elo": 0, "model_log_loss_on_elo": float("nan"),
           "elo_log_loss": float("nan"), "elo_rps": float("nan"), "elo_brier": float("nan"),
           "elo_accuracy": float("nan")}
    return prometheus.live_quality_figures(pd.DataFrame([row]), {("match_outcome", "2"): 1.063})


def _drift():
    columns = pd.DataFrame([
        {"kind": "feature", "column_name": "elo_diff", "method": "ks", "statistic": 0.01, "threshold": 0.05,
         "drifted": True},
        {"kind": "feature", "column_name": "home_rest_days", "method": "ks", "statistic": 0.4, "threshold": 0.05,
         "drifted": False},
        {"kind": "target", "column_name": "result", "method": "chisquare", "statistic": 0.3, "threshold": 0.05,
         "drifted": False}])
    return DriftResult(columns=columns, n_reference=1080, n_current=15, n_current_played=15, drift_share=0.5, html=None)


def test_the_figures_of_every_asset_go_to_one_valid_textfile(tmp_path):
    for asset, registry in (("prediction_ledger", _ledger()), ("live_quality", _live()),
                            ("drift_report", prometheus.drift_figures("2025-02-24", "match_outcome", "2", _drift()))):
        exported = prometheus.export(registry, asset=asset, home=tmp_path)
        assert exported.part == tmp_path / "monitoring" / "prometheus" / f"{asset}.prom" and exported.part.exists()
        assert not exported.pushed and exported.push_error is None
    textfile = tmp_path / "monitoring" / "metrics.prom"
    samples = _samples(textfile.read_text())   # parses: one family per name across the assets' parts
    live = frozenset({"week": "2025-02-24", "window": "rolling", "model": "match_outcome", "model_version": "2",
                      "variant": "champion", "division": "ALL"}.items())
    assert samples[("time2bet_live_log_loss", live | {("source", "model")})] == 1.04
    assert samples[("time2bet_live_log_loss", live | {("source", "market")})] == 0.97
    assert samples[("time2bet_live_log_loss_gap", live | {("reference", "market")})] == pytest.approx(0.06)
    assert ("time2bet_live_log_loss", live | {("source", "elo")}) not in samples   # nothing to show: no gauge
    assert samples[("time2bet_live_matches", live | {("source", "elo")})] == 0
    assert samples[("time2bet_live_promotion_estimate_log_loss",
                    frozenset({"model": "match_outcome", "model_version": "2"}.items()))] == 1.063
    assert samples[("time2bet_freshness_seconds", frozenset({("stage", "ingestion")}))] == 7200
    assert samples[("time2bet_freshness_last_update_timestamp_seconds", frozenset({("stage", "training")}))] == \
        (NOW - dt.timedelta(days=3)).timestamp()
    assert samples[("time2bet_ledger_predictions", frozenset({("day", "2026-12-06")}))] == 30
    assert samples[("time2bet_ledger_problems", frozenset({("day", "2026-12-06"), ("scope", "elsewhere")}))] == 1
    drift = frozenset({"week": "2025-02-24", "model": "match_outcome", "model_version": "2"}.items())
    assert samples[("time2bet_drift_share_of_drifted_features", drift)] == 0.5
    assert samples[("time2bet_drift_dataset_drift", drift)] == 1
    assert samples[("time2bet_drift_target_drift", drift)] == 0
    assert ("time2bet_drift_prediction_drift", drift) not in samples   # not tested: not reported
    assert samples[("time2bet_drift_p_value", drift | {("kind", "feature"), ("column", "elo_diff")})] == 0.01
    # a new export of one asset replaces its own figures only
    prometheus.export(prometheus.ledger_figures("2026-12-07", predictions=5, records=1, chains=1, problems=0,
                                                problems_elsewhere=0, torn_tails=0, freshness={}, now=NOW),
                      asset="prediction_ledger", home=tmp_path)
    samples = _samples(textfile.read_text())
    assert samples[("time2bet_ledger_predictions", frozenset({("day", "2026-12-07")}))] == 5
    assert ("time2bet_ledger_predictions", frozenset({("day", "2026-12-06")})) not in samples
    assert ("time2bet_live_log_loss", live | {("source", "model")}) in samples


class _Gateway(http.server.BaseHTTPRequestHandler):
    """A stand-in Pushgateway on loopback: records what is pushed (method, path, body)."""

    pushes: typing.ClassVar[list[tuple[str, str, bytes]]] = []

    def do_PUT(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.pushes.append(("PUT", self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway():
    _Gateway.pushes = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Gateway.pushes
    server.shutdown()
    server.server_close()


def test_a_configured_pushgateway_gets_each_asset_as_its_own_group(tmp_path, gateway):
    url, pushes = gateway
    exported = prometheus.export(_live(), asset="live_quality", home=tmp_path, pushgateway_url=url)
    assert exported.pushed and exported.push_error is None
    [(method, path, body)] = pushes
    assert (method, path) == ("PUT", "/metrics/job/time2bet_monitoring/asset/live_quality")
    assert b"time2bet_live_log_loss{" in body


def test_an_unreachable_pushgateway_is_reported_and_the_textfile_still_written(tmp_path):
    from time2bet.background import free_port

    exported = prometheus.export(_ledger(), asset="prediction_ledger", home=tmp_path,
                                 pushgateway_url=f"http://127.0.0.1:{free_port()}", timeout_s=2)
    assert not exported.pushed and "refused" in exported.push_error.lower()
    assert "time2bet_ledger_predictions" in exported.textfile.read_text()
