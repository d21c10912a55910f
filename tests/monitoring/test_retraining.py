"""When the platform retrains on its own (time2bet.monitoring.retraining.decide): each trigger fires on its evidence,
not on evidence older than the last training, and names it; thresholds come from the settings."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import pytest

from time2bet.monitoring.retraining import DriftFigures, Facts, RetrainingPolicy, decide
from time2bet.settings import Settings

TRAINED = dt.datetime(2025, 3, 3, 8, tzinfo=dt.UTC)
NOW = TRAINED + dt.timedelta(days=2)
POLICY = RetrainingPolicy()
QUIET = DriftFigures("2025-03-03", 0.1, False, False)


def scoreboard(log_loss: float, *, estimate: float = 0.98, elo: float = 1.0, n: int = 150) -> pd.DataFrame:
    """The scoreboard rows decide reads: the champion's rolling window over all divisions (and noise around it)."""
    base = {"week": dt.date(2025, 3, 3), "window": "rolling", "model_name": "match_outcome", "model_version": "3",
            "variant": "champion", "division": "ALL", "n": n, "log_loss": log_loss, "n_elo": n,
            "model_log_loss_on_elo": log_loss, "elo_log_loss": elo, "promotion_log_loss": estimate}
    return pd.DataFrame([base, {**base, "window": "week", "log_loss": 9.0, "model_log_loss_on_elo": 9.0},
                         {**base, "variant": "challenger", "log_loss": 9.0, "model_log_loss_on_elo": 9.0},
                         {**base, "division": "E0", "log_loss": 9.0, "model_log_loss_on_elo": 9.0}])


def facts(**changes) -> Facts:
    return dataclasses.replace(Facts(now=NOW, trained_at=TRAINED, trained_through="2024-25",
                                     loaded_seasons={"2023-24", "2024-25"}, drift=QUIET,
                                     quality=scoreboard(0.99)), **changes)


def test_nothing_to_do_and_never_before_the_first_training():
    assert decide(facts(), POLICY) is None
    assert decide(facts(trained_at=None, now=NOW + dt.timedelta(days=30)), POLICY) is None


def test_a_new_season_once_its_features_are_built():
    decision = decide(facts(loaded_seasons={"2024-25", "2025-26"}), POLICY)
    assert decision.trigger == "new season" and decision.run_key == "retrain:new-season:2025-26"
    assert decision.reason.startswith("automatic: new season: matches of 2025-26 loaded")
    assert decide(facts(loaded_seasons={"2024-25", "2025-26"}, features_current=False), POLICY) is None
    assert decide(facts(loaded_seasons={"1999-00", "2024-25"}), POLICY) is None   # older seasons: no trigger


def test_live_quality_above_the_estimate_or_worse_than_elo():
    above = decide(facts(quality=scoreboard(1.01)), POLICY)   # 0.98 + margin 0.02 < 1.01
    assert above.trigger == "live quality" and "promotion-time estimate 0.9800" in above.reason
    assert above.run_key == "retrain:live-quality:2025-03-03"
    assert decide(facts(quality=scoreboard(0.995)), POLICY) is None             # within the margin
    assert decide(facts(quality=scoreboard(0.995)), dataclasses.replace(POLICY, live_logloss_margin=0.01))
    worse = decide(facts(quality=scoreboard(1.0, estimate=1.0, elo=0.99)), POLICY)
    assert worse.trigger == "live quality" and "Elo-only reference 0.9900" in worse.reason
    assert decide(facts(quality=scoreboard(1.2, n=99)), POLICY) is None         # too few matches to judge
    # the rows of a version no longer champion (replaced, rolled back from) are no reason to retrain
    assert decide(facts(quality=scoreboard(1.2), champion_version="4"), POLICY) is None
    assert decide(facts(quality=scoreboard(1.2), champion_version="3"), POLICY).trigger == "live quality"


@pytest.mark.parametrize(("drift", "trigger"), [
    (DriftFigures("2025-03-03", 0.1, False, True), "target drift"),
    (DriftFigures("2025-03-03", 0.1, True, None), "prediction drift"),
    (DriftFigures("2025-03-03", 0.5, None, None), "feature drift"),
])
def test_drift(drift, trigger):
    decision = decide(facts(drift=drift), POLICY)
    assert decision.trigger == trigger and decision.run_key == f"retrain:{trigger.replace(' ', '-')}:2025-03-03"
    assert decision.reason.startswith(f"automatic: {trigger}: ")


def test_drift_thresholds_can_be_raised_or_switched_off():
    off = RetrainingPolicy(feature_drift_share=1.01, on_prediction_drift=False, on_target_drift=False)
    assert decide(facts(drift=DriftFigures("2025-03-03", 1.0, True, True)), off) is None


def test_the_schedule():
    assert decide(facts(now=TRAINED + dt.timedelta(days=6, hours=23)), POLICY) is None
    weekly = decide(facts(now=TRAINED + dt.timedelta(days=7)), POLICY)
    assert weekly.trigger == "schedule" and weekly.run_key == "retrain:schedule:2025-03-10T08:00"
    assert decide(facts(now=TRAINED + dt.timedelta(days=70)), RetrainingPolicy(every_days=0)) is None


def test_the_policy_comes_from_the_settings(tmp_path):
    settings = Settings.from_env({"TIME2BET_HOME": str(tmp_path), "TIME2BET_RETRAIN_EVERY_DAYS": "0",
                                  "TIME2BET_RETRAIN_FEATURE_DRIFT_SHARE": "0.8",
                                  "TIME2BET_RETRAIN_ON_TARGET_DRIFT": "0", "TIME2BET_LIVE_LOGLOSS_MARGIN": "0.05",
                                  "TIME2BET_RETRAIN_MIN_MATCHES": "300"})
    assert RetrainingPolicy.from_settings(settings) == RetrainingPolicy(
        every_days=0.0, feature_drift_share=0.8, on_prediction_drift=True, on_target_drift=False,
        live_logloss_margin=0.05, min_matches=300)
    assert RetrainingPolicy.from_settings(Settings.from_env({"TIME2BET_HOME": str(tmp_path)})) == RetrainingPolicy()
