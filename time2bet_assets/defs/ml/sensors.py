"""The ML area's automation: predictions after new features (``predictions_on_new_features``) and automatic
retraining.

``predictions_on_new_features`` runs ``predict_upcoming`` when the upcoming fixtures' features or the champion
changed since the latest ``batch_predictions``: without it, production predicted the fixtures (into the ledger and
``predictions.upcoming_matches``) only when someone ran the job or a training did. Stateless like the features
area's sensor; running by default.

Automatic retraining: ``retrain_when_needed`` requests ``train_and_promote`` when a new season's data landed,
when drift or live quality crossed its threshold, or when the last training is older than the schedule's period.
The decision is time2bet.monitoring.retraining.decide (pure, tested without Dagster); this sensor gathers its facts
from the Dagster instance and the live-quality scoreboard file (never the warehouse: DuckDB's single writer):

- the last training: the latest ``registered_model`` materialization (when the gate decided) and the newest season
  of the latest ``training_dataset`` (its ``latest_season`` metadata);
- the seasons with loaded matches: the materialized partitions of ``raw_matches`` (a season file is published once
  a match of it was played); the features are current when ``fct_match_features`` was built after the latest load;
- drift: the ``drift_report`` metadata of the newest kickoff week reported; live quality: the scoreboard's rows of
  the registry's champion version.

Promotion stays the gate's (registered_model). Every decision is visible: the run's tags
(``time2bet/training_reason``: ``automatic: <trigger>: <numbers>``, ``time2bet/retrain_trigger``), the tick's run
request or skip message, registered_model's ``training_reason`` metadata and the registry's audit trail. The run key
names the evidence, so each piece of evidence starts one training at most.

Stopped by default, like the monitoring area's automation it reads: switch it on in the UI (Automation) or with
``dagster sensor start retrain_when_needed``. Assets of other areas are named by key (areas do not import each
other).
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from time2bet_assets.defs.ml.assets import TRAINING_REASON_TAG
from time2bet_assets.defs.ml.jobs import predict_upcoming_job, rollback_champion_job, train_and_promote_job
from time2bet_assets.defs.ml.resources import RetrainingResource
from time2bet_assets.lib.runs import UNFINISHED, latest_materialization

REGISTERED_MODEL, TRAINING_DATASET = dg.AssetKey("registered_model"), dg.AssetKey("training_dataset")
RAW_MATCHES, FCT_MATCH_FEATURES = dg.AssetKey("raw_matches"), dg.AssetKey("fct_match_features")
DRIFT_REPORT = dg.AssetKey("drift_report")
BATCH_PREDICTIONS, UPCOMING_MATCH_FEATURES = dg.AssetKey("batch_predictions"), dg.AssetKey("upcoming_match_features")
TRIGGER_TAG = "time2bet/retrain_trigger"


def _metadata(record, name: str):
    if record is None or record.asset_materialization is None:
        return None
    value = record.asset_materialization.metadata.get(name)
    return None if value is None else value.value


def _stamp(record) -> dt.datetime | None:
    return None if record is None else dt.datetime.fromtimestamp(record.timestamp, dt.UTC)


def drift_since(instance: dg.DagsterInstance, after: dt.datetime):
    """The newest kickoff week's drift figures, when reported after ``after``; else None."""
    from time2bet.monitoring.retraining import DriftFigures

    weeks = instance.get_materialized_partitions(DRIFT_REPORT)
    if not weeks:
        return None
    week = max(weeks)
    record = latest_materialization(instance, DRIFT_REPORT, partition=week)
    if record is None or _stamp(record) <= after or _metadata(record, "skipped") is not None:
        return None
    share = _metadata(record, "share_of_drifted_features")
    flags = [_metadata(record, name) for name in ("prediction_drift", "target_drift")]
    return DriftFigures(week=week, share_drifted=float(share) if share is not None else float("nan"),
                        prediction_drift=flags[0] if isinstance(flags[0], bool) else None,
                        target_drift=flags[1] if isinstance(flags[1], bool) else None)


def quality_since(monitoring_dir: str, after: dt.datetime):
    """The scoreboard's rows computed after ``after`` (None when there is no scoreboard yet)."""
    import pandas as pd

    from time2bet.scoreboard_store import Scoreboard

    frame = Scoreboard(monitoring_dir).frame()
    if frame is None:
        return None
    computed = pd.to_datetime(frame["computed_at"])
    return frame[computed > pd.Timestamp(after.astimezone(dt.UTC).replace(tzinfo=None))]


def gather_facts(instance: dg.DagsterInstance, retraining: RetrainingResource, now: dt.datetime):
    """The facts of time2bet.monitoring.retraining.decide, as the instance, the scoreboard and the registry know
    them."""
    from time2bet.monitoring.retraining import Facts

    trained_at = _stamp(latest_materialization(instance, REGISTERED_MODEL))
    if trained_at is None:
        return Facts(now=now, trained_at=None)
    loaded, features = latest_materialization(instance, RAW_MATCHES), latest_materialization(instance, FCT_MATCH_FEATURES)
    return Facts(
        now=now, trained_at=trained_at,
        trained_through=_metadata(latest_materialization(instance, TRAINING_DATASET), "latest_season"),
        loaded_seasons={str(key).split("|")[-1] for key in instance.get_materialized_partitions(RAW_MATCHES)},
        features_current=loaded is None or (features is not None and features.timestamp >= loaded.timestamp),
        drift=drift_since(instance, trained_at), quality=quality_since(retraining.monitoring_dir, trained_at),
        champion_version=retraining.champion_version())


@dg.sensor(
    job=train_and_promote_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Retrain through the promotion gate when a new season's data landed, when drift or live quality "
    "crossed its threshold (TIME2BET_RETRAIN_*), or when the last training is older than TIME2BET_RETRAIN_EVERY_DAYS; "
    "the reason is on the run (tag time2bet/training_reason) and in the registry's audit trail.",
)
def retrain_when_needed(context: dg.SensorEvaluationContext, retraining: RetrainingResource):
    from time2bet.monitoring.retraining import decide

    instance = context.instance
    if instance.get_runs_count(dg.RunsFilter(job_name=train_and_promote_job.name, statuses=UNFINISHED)):
        return dg.SkipReason("a train_and_promote run is under way")
    facts = gather_facts(instance, retraining, dt.datetime.now(dt.UTC))
    if facts.trained_at is None:
        return dg.SkipReason("no training yet: the first one is started by hand (time2bet train)")
    decision = decide(facts, retraining.policy())
    if decision is None:
        waiting = "" if facts.features_current else "; new matches wait for their features"
        return dg.SkipReason(f"no trigger since the last training ({facts.trained_at:%Y-%m-%d %H:%M} UTC, seasons up "
                             f"to {facts.trained_through or 'unknown'}){waiting}")
    context.log.info(decision.reason)
    return dg.RunRequest(run_key=decision.run_key,
                         tags={TRAINING_REASON_TAG: decision.reason, TRIGGER_TAG: decision.trigger})


def _newest_change(instance: dg.DagsterInstance, key: dg.AssetKey):
    """The newest materialization or observation record of ``key`` (a rollback observes registered_model)."""
    observed = instance.fetch_observations(dg.AssetRecordsFilter(asset_key=key), limit=1, ascending=False).records
    candidates = [record for record in (latest_materialization(instance, key), *observed) if record is not None]
    return max(candidates, key=lambda record: record.storage_id, default=None)


@dg.sensor(
    job=predict_upcoming_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Run predict_upcoming (the fixtures predicted into the ledger and the serving snapshot) when the "
    "upcoming fixtures' features were rebuilt, or the champion changed, since the latest batch_predictions.",
)
def predictions_on_new_features(context: dg.SensorEvaluationContext):
    instance = context.instance
    busy = [job.name for job in (predict_upcoming_job, train_and_promote_job, rollback_champion_job)
            if instance.get_runs_count(dg.RunsFilter(job_name=job.name, statuses=UNFINISHED))]
    if busy:   # a training predicts the fixtures itself; a rollback is followed at the next tick
        return dg.SkipReason(f"a {busy[0]} run is under way")
    features, model = (_newest_change(instance, key) for key in (UPCOMING_MATCH_FEATURES, REGISTERED_MODEL))
    if features is None or model is None:
        return dg.SkipReason("no features or no registered model yet: the first training predicts the fixtures")
    predicted = latest_materialization(instance, BATCH_PREDICTIONS)
    newest = max(features, model, key=lambda record: record.storage_id)
    if predicted is not None and predicted.storage_id > newest.storage_id:
        return dg.SkipReason("the predictions are up to date with the features and the champion")
    reason = "features rebuilt" if newest is features else "champion changed"
    return dg.RunRequest(run_key=f"changed-{newest.storage_id}", tags={"time2bet/reason": reason})
