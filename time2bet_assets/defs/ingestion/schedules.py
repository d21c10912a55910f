"""Keep the current season and the fixtures fresh. Past seasons are final: only backfills touch them.

The current season is observed, not re-ingested: the observation records which files changed, and
changed_season_files_sensor ingests only those, so an unchanged morning costs one crawl and no materialization."""

import datetime as dt

import dagster as dg

from time2bet.football import season_of
from time2bet_assets.defs.ingestion.jobs import observe_season_files_job, refresh_fixtures_job
from time2bet_assets.defs.ingestion.partitions import partition_key
from time2bet_assets.defs.ingestion.resources import FootballDataSource


def current_season_run_requests(
    instance: dg.DagsterInstance, divisions: list[str], today: dt.date
) -> list[dg.RunRequest]:
    """One run per configured division whose current-season partition is known to the instance."""
    season = season_of(today)
    if season not in instance.get_dynamic_partitions("season"):
        return []
    known = set(instance.get_dynamic_partitions("division"))
    return [
        dg.RunRequest(partition_key=partition_key(d, season), run_key=f"{d}|{season}|{today.isoformat()}")
        for d in divisions
        if d in known
    ]


@dg.schedule(
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    job=observe_season_files_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every morning: observe the current season of every configured division (what changed is then "
    "ingested by changed_season_files_sensor).",
)
def refresh_current_season(context: dg.ScheduleEvaluationContext, source: FootballDataSource):
    today = context.scheduled_execution_time.date()
    requests = current_season_run_requests(context.instance, source.divisions, today)
    if not requests:
        return dg.SkipReason(f"no known partition for season {season_of(today)} yet (the sensor adds it when published)")
    return requests


refresh_fixtures_schedule = dg.ScheduleDefinition(
    name="refresh_fixtures_every_6h",
    cron_schedule="15 */6 * * *",
    execution_timezone="UTC",
    job=refresh_fixtures_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Fixtures move (postponements): refresh them four times a day.",
)
