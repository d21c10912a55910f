"""The pipeline's own figures for Prometheus, exported by sensors (the daemon evaluates them; they request no run):

- ``dagster_runs_figures``: the runs in FAILURE status in the run storage, for every job of the code location
  (those without a failure at 0, so that the first one is an increase): ``time2bet_dagster_runs_failed_total``;
- ``ingestion_figures``: the ingestion's state, kept per partition by the ingestion assets in the instance's
  key-value store (when the source's file was last fetched successfully, and why its latest version was not
  loaded): ``time2bet_ingestion_last_success_timestamp_seconds`` and ``time2bet_ingestion_season_in_progress`` for
  the partitions of the current and previous seasons (asset ``source_season_files``), and
  ``time2bet_ingestion_files_rejected`` for every partition judged (asset ``raw_matches``).

They go where the monitoring assets' figures go (time2bet.monitoring.prometheus.export: the textfile, and the
Pushgateway when one is configured), under the asset names the alert rules (deploy/prometheus/rules/pipeline.yml)
expect. Every export is the whole current state, as a push replaces the group. Exporting never raises: a
Pushgateway that is down, or a textfile that cannot be written, is logged and the next tick tries again.

The state's keys are shared with the ingestion area through time2bet_assets.lib.ingestion_state; the dynamic
partitions are named here by string (areas do not import each other; ingestion/partitions.py defines them).
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
from prometheus_client import CollectorRegistry

from time2bet.football import season_of, season_start_year
from time2bet.monitoring import prometheus
from time2bet_assets.defs.monitoring.resources import MonitoringResource
from time2bet_assets.lib.ingestion_state import LAST_SUCCESS_KEY, REJECTED_KEY, recall

DIVISIONS, SEASONS = "division", "season"   # the dynamic partitions of the season files
PUSH_TIMEOUT_S = 5.0   # two pushes a tick stay well within the sensor's evaluation timeout


def failed_runs(instance: dg.DagsterInstance, job_names: list[str]) -> dict[str, int]:
    """Job name -> runs of it in FAILURE status in the run storage."""
    return {name: instance.get_runs_count(dg.RunsFilter(job_name=name, statuses=[dg.DagsterRunStatus.FAILURE]))
            for name in job_names}


def previous_season(season: str) -> str:
    start = season_start_year(season) - 1
    return f"{start}-{(start + 1) % 100:02d}"


def ingestion_state(instance: dg.DagsterInstance, today: dt.date) -> tuple[
        dict[tuple[str, str], tuple[float | None, bool]], dict[tuple[str, str], str]]:
    """(freshness, rejections) of the season files as the instance knows them on ``today``: for every partition of
    the current season (time2bet.football.season_of: seasons turn on 1 July) and of the previous one, (when its
    file was last fetched successfully, or None; whether its season is being played); and for every partition
    raw_matches judged, why its latest version was not loaded ("" if it was)."""
    divisions, seasons = instance.get_dynamic_partitions(DIVISIONS), instance.get_dynamic_partitions(SEASONS)
    current = season_of(today)
    recent = [s for s in seasons if s in (current, previous_season(current))]
    successes = recall(instance, [LAST_SUCCESS_KEY.format(f"{d}|{s}") for d in divisions for s in recent])
    freshness = {}
    for division in divisions:
        for season in recent:
            when = successes.get(LAST_SUCCESS_KEY.format(f"{division}|{season}"))
            try:
                stamp = float(when) if when else None
            except ValueError:
                stamp = None
            freshness[(division, season)] = (stamp, season == current)
    judged = recall(instance, [REJECTED_KEY.format(f"{d}|{s}") for d in divisions for s in seasons])
    rejections = {}
    for division in divisions:
        for season in seasons:
            state = judged.get(REJECTED_KEY.format(f"{division}|{season}"))
            if state is not None:
                rejections[(division, season)] = state if state in prometheus.REJECTION_REASONS else ""
    return freshness, rejections


def _export(context: dg.SensorEvaluationContext, registry: CollectorRegistry, asset: str,
            monitoring: MonitoringResource) -> str:
    """Export ``registry`` as ``asset``'s figures; a short account of it. Never raises."""
    try:
        exported = prometheus.export(registry, asset=asset, home=monitoring.home,
                                     pushgateway_url=monitoring.pushgateway_url, timeout_s=PUSH_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - exporting never fails: the next tick tries again
        context.log.warning(f"{asset}: the figures could not be written: {type(exc).__name__}: {exc}")
        return f"{asset}: not exported ({type(exc).__name__})"
    if exported.push_error:
        context.log.warning(f"{asset}: the Pushgateway did not take the figures ({exported.push_error}); "
                            f"they are in {exported.textfile}")
        return f"{asset}: textfile only (push failed)"
    return f"{asset}: {'pushed and ' if exported.pushed else ''}written"


def export_ingestion_figures(context: dg.SensorEvaluationContext, monitoring: MonitoringResource,
                             today: dt.date) -> str:
    """Export the ingestion's figures as of ``today`` (the sensor's: the wall clock's UTC date); an account."""
    freshness, rejections = ingestion_state(context.instance, today)
    done = [_export(context, prometheus.ingestion_figures(freshness), "source_season_files", monitoring),
            _export(context, prometheus.rejected_files_figures(rejections), "raw_matches", monitoring)]
    current = season_of(today)
    rejected = sum(1 for why in rejections.values() if why)
    return (f"{len(freshness)} partition(s) of seasons {previous_season(current)} and {current}, {rejected} "
            f"file(s) not loaded; " + "; ".join(done))


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every minute: export the count of failed runs of every job (time2bet_dagster_runs_failed_total) "
    "to the Prometheus textfile and the Pushgateway (asset dagster_runs). Requests no run.",
)
def dagster_runs_figures(context: dg.SensorEvaluationContext, monitoring: MonitoringResource):
    jobs = sorted(job.name for job in context.repository_def.get_all_jobs())
    failed = failed_runs(context.instance, jobs)
    done = _export(context, prometheus.dagster_runs_figures(failed), "dagster_runs", monitoring)
    return dg.SkipReason(f"{sum(failed.values())} failed run(s) of {len(jobs)} job(s); {done}")


@dg.sensor(
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 5 minutes: export the ingestion's state recorded by the ingestion assets (last successful "
    "fetch of each current-season file, whether its season is being played, files not loaded) to the Prometheus "
    "textfile and the Pushgateway (assets source_season_files and raw_matches). Requests no run.",
)
def ingestion_figures(context: dg.SensorEvaluationContext, monitoring: MonitoringResource):
    return dg.SkipReason(export_ingestion_figures(context, monitoring, dt.datetime.now(dt.UTC).date()))

