"""Rebuild the features when the raw data they are built from changed: new matches loaded, or a fixtures file of
another content. Without it nothing rebuilt them after an ingest, and the service and the batch predictions kept
the old features until someone ran build_features by hand.

Stateless on purpose (no cursor): the features are stale when raw data was materialized after the start of the
latest successful build_features run, which is what an operator would check; a build under way defers the decision
to the next tick. The raw assets belong to the ingestion area: they are named here by key (areas do not import
each other)."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from time2bet_assets.defs.features.jobs import build_features_job
from time2bet_assets.lib.runs import UNFINISHED, latest_materialization

RAW_MATCHES, RAW_FIXTURES = dg.AssetKey("raw_matches"), dg.AssetKey("raw_fixtures")


@dataclass(frozen=True)
class Latest:
    """The latest materialization of a raw asset: when, its storage id and its data version."""

    timestamp: float
    storage_id: int
    version: str | None


def stale_reason(built_at: float | None, matches: Latest | None, fixtures: Latest | None,
                 fixtures_version_at_build: str | None) -> str | None:
    """Pure decision: why the features must be rebuilt, or None. ``built_at``: the start of the latest successful
    build (None: never built); ``fixtures_version_at_build``: the fixtures' data version that build read."""
    if matches is None and fixtures is None:
        return None   # nothing ingested yet: nothing to build from
    if built_at is None:
        return "never built"
    if matches is not None and matches.timestamp > built_at:
        return "matches loaded since the last build"
    if fixtures is not None and fixtures.timestamp > built_at and fixtures.version != fixtures_version_at_build:
        return "fixtures changed since the last build"
    return None


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey, before: float | None = None) -> Latest | None:
    record = latest_materialization(instance, key, before=before)
    if record is None:
        return None
    materialization = record.asset_materialization
    tags = (materialization.tags or {}) if materialization is not None else {}
    return Latest(record.timestamp, record.storage_id, tags.get(DATA_VERSION_TAG))


@dg.sensor(
    job=build_features_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Run build_features when matches were loaded, or the fixtures changed, since the last successful "
    "build (the service and the batch predictions then pick the new features up).",
)
def features_on_new_data(context: dg.SensorEvaluationContext):
    instance = context.instance
    if instance.get_runs_count(dg.RunsFilter(job_name=build_features_job.name, statuses=UNFINISHED)):
        return dg.SkipReason("a build_features run is under way")
    built = instance.get_run_records(dg.RunsFilter(job_name=build_features_job.name,
                                                   statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1)
    built_at = built[0].start_time if built else None
    matches, fixtures = _latest(instance, RAW_MATCHES), _latest(instance, RAW_FIXTURES)
    at_build = _latest(instance, RAW_FIXTURES, before=built_at) if built_at is not None else None
    reason = stale_reason(built_at, matches, fixtures, at_build.version if at_build else None)
    if reason is None:
        return dg.SkipReason("the features are up to date with the raw data")
    newest = max(latest.storage_id for latest in (matches, fixtures) if latest is not None)
    return dg.RunRequest(run_key=f"raw-{newest}", tags={"time2bet/reason": reason})
