"""When to retrain on its own: the decision behind the ``retrain_when_needed`` sensor (time2bet_assets' ml area),
as a pure function of the facts it gathered, so it is tested without Dagster.

A retraining is requested (through the training job, whose promotion gate alone decides whether the new model
becomes champion) when, since the last training finished,

1. **a new season's data landed**: matches of a season later than the newest season the last training saw were
   loaded (and the features were rebuilt from them);
2. **live quality** crossed its bound on the rolling window of the newest kickoff week scored: the champion's live
   log-loss is above its promotion-time estimate by more than the margin, or worse than its Elo-only reference on
   the same matches (the live_quality checks' rules, time2bet.monitoring.live_quality, with the same thresholds);
3. **drift** of the newest kickoff week's report: the outcomes (target drift), the predicted probabilities
   (prediction drift) or at least a share of the features (feature drift);
4. **the schedule**: the last training is older than ``every_days``.

The first that holds is the trigger; its reason reads ``automatic: <trigger>: <numbers>`` and goes to the run's
tags, the registry's audit trail and the registered_model's metadata. Figures computed before the last training
finished are not evidence against the model trained since, so each trigger fires once per piece of evidence (the
run key names it, and Dagster launches a run key once).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from time2bet.football import season_start_year
from time2bet.serving_contract import CHAMPION

REASON_PREFIX = "automatic"


@dataclass(frozen=True)
class RetrainingPolicy:
    """The thresholds (Settings: TIME2BET_RETRAIN_*; the live-quality margin is TIME2BET_LIVE_LOGLOSS_MARGIN)."""

    every_days: float = 7.0              # retrain when the last training is older (0: no scheduled retraining)
    feature_drift_share: float = 0.5     # share of drifted features that triggers (above 1: never)
    on_prediction_drift: bool = True
    on_target_drift: bool = True
    live_logloss_margin: float = 0.02    # live log-loss above the promotion-time estimate by more: retrain
    min_matches: int = 100               # live quality is judged on at least this many matches

    @classmethod
    def from_settings(cls, settings) -> RetrainingPolicy:
        return cls(every_days=settings.retrain_every_days, feature_drift_share=settings.retrain_feature_drift_share,
                   on_prediction_drift=settings.retrain_on_prediction_drift,
                   on_target_drift=settings.retrain_on_target_drift,
                   live_logloss_margin=settings.live_logloss_margin, min_matches=settings.retrain_min_matches)


@dataclass(frozen=True)
class DriftFigures:
    """The drift report of one kickoff week (drift_report's metadata); None: the test could not be run."""

    week: str
    share_drifted: float
    prediction_drift: bool | None
    target_drift: bool | None


@dataclass(frozen=True)
class Facts:
    """What the sensor knows at ``now``. ``trained_at``: when the last training finished (None: never);
    ``trained_through``: the newest season of the data it trained on (None: unknown); ``loaded_seasons``: the seasons
    with loaded matches; ``features_current``: the features were rebuilt after the latest load. ``drift`` and
    ``quality`` (the scoreboard's rows, time2bet.scoreboard_store) count only when computed after ``trained_at``;
    of those, only the rows of ``champion_version`` (the registry's champion now; None: not known, every row of the
    champion variant) are judged, so a version rolled back from or replaced is no reason to retrain."""

    now: dt.datetime
    trained_at: dt.datetime | None
    trained_through: str | None = None
    loaded_seasons: Iterable[str] = ()
    features_current: bool = True
    drift: DriftFigures | None = None
    quality: pd.DataFrame | None = None
    champion_version: str | None = None


@dataclass(frozen=True)
class Decision:
    trigger: str     # "new season", "live quality", "target drift", "prediction drift", "feature drift", "schedule"
    detail: str
    run_key: str

    @property
    def reason(self) -> str:
        return f"{REASON_PREFIX}: {self.trigger}: {self.detail}"


def newer_seasons(loaded: Iterable[str], trained_through: str) -> list[str]:
    """The loaded seasons after ``trained_through``, oldest first."""
    start = season_start_year(trained_through)
    return sorted({s for s in loaded if season_start_year(s) > start}, key=season_start_year)


def champion_quality(scoreboard: pd.DataFrame | None, version: str | None = None) -> pd.DataFrame:
    """The champion variant's rolling rows over all divisions of the newest kickoff week in ``scoreboard`` (of
    ``version`` only, when given)."""
    from time2bet.monitoring.live_quality import ALL_DIVISIONS  # (see quality_breach)

    if scoreboard is None or not len(scoreboard):
        return pd.DataFrame()
    rows = scoreboard[(scoreboard["window"] == "rolling") & (scoreboard["division"] == ALL_DIVISIONS)
                      & (scoreboard["variant"] == CHAMPION)]
    if version is not None:
        rows = rows[rows["model_version"].astype(str) == str(version)]
    return rows[rows["week"] == rows["week"].max()] if len(rows) else rows


def quality_breach(quality: pd.DataFrame, policy: RetrainingPolicy,
                   version: str | None = None) -> tuple[str, str] | None:
    """(week, what crossed the bound) of the champion's rolling live quality, or None."""
    # imported here: live_quality loads scikit-learn, XGBoost and matplotlib, and this module is imported with the
    # Dagster code location (the retraining sensor), which every `dagster` command and run loads first
    from time2bet.monitoring.live_quality import check_against_estimate, check_against_reference

    rows = champion_quality(quality, version)
    if not len(rows):
        return None
    week = str(pd.Timestamp(rows["week"].iloc[0]).date())
    estimates = {(r.model_name, str(r.model_version)): (None if pd.isna(r.promotion_log_loss)
                                                        else float(r.promotion_log_loss))
                 for r in rows.itertuples(index=False)}
    failed = [v for v in check_against_reference(rows, min_matches=policy.min_matches) if not v.passed]
    failed += [v for v in check_against_estimate(rows, estimates, margin=policy.live_logloss_margin,
                                                 min_matches=policy.min_matches) if not v.passed]
    if not failed:
        return None
    return week, "; ".join(f"v{v.model_version} week {week}: {v.note}" for v in failed)


def drift_breach(drift: DriftFigures, policy: RetrainingPolicy) -> tuple[str, str] | None:
    """(trigger, detail) of the first drift that crossed its threshold, or None."""
    if policy.on_target_drift and drift.target_drift:
        return "target drift", f"the outcomes of week {drift.week} drifted from the champion's training window"
    if policy.on_prediction_drift and drift.prediction_drift:
        return "prediction drift", (f"the probabilities predicted for week {drift.week} drifted from the "
                                    "champion's on its training window")
    if math.isfinite(drift.share_drifted) and drift.share_drifted >= policy.feature_drift_share:
        return "feature drift", (f"{drift.share_drifted:.0%} of the features of week {drift.week} drifted "
                                 f"(threshold {policy.feature_drift_share:.0%})")
    return None


def decide(facts: Facts, policy: RetrainingPolicy) -> Decision | None:
    """The first trigger that holds (see the module's docstring), or None. Nothing is decided before the first
    training (the platform's setup trains by hand) or while the features lag new data."""
    if facts.trained_at is None:
        return None
    if facts.trained_through is not None and facts.features_current:
        newer = newer_seasons(facts.loaded_seasons, facts.trained_through)
        if newer:
            return Decision("new season", f"matches of {', '.join(newer)} loaded; the last training saw seasons up "
                                          f"to {facts.trained_through}", f"retrain:new-season:{newer[-1]}")
    if facts.quality is not None:
        breach = quality_breach(facts.quality, policy, facts.champion_version)
        if breach is not None:
            week, detail = breach
            return Decision("live quality", detail, f"retrain:live-quality:{week}")
    if facts.drift is not None:
        breach = drift_breach(facts.drift, policy)
        if breach is not None:
            trigger, detail = breach
            return Decision(trigger, detail, f"retrain:{trigger.replace(' ', '-')}:{facts.drift.week}")
    if policy.every_days > 0:
        due = facts.trained_at + dt.timedelta(days=policy.every_days)
        if facts.now >= due:
            return Decision("schedule", f"the last training finished {facts.trained_at:%Y-%m-%d %H:%M} UTC, more "
                                        f"than {policy.every_days:g} days ago", f"retrain:schedule:{due:%Y-%m-%dT%H:%M}")
    return None


__all__ = ["REASON_PREFIX", "Decision", "DriftFigures", "Facts", "RetrainingPolicy", "champion_quality", "decide",
           "drift_breach", "newer_seasons", "quality_breach"]
