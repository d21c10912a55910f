"""Keep the current season and the fixtures fresh. A past season is final once its successor's file is in: then
only backfills touch it.

The current season is observed, not re-ingested: the observation records which files changed, and
changed_season_files_sensor ingests only those, so an unchanged morning costs one crawl and no materialization."""

import datetime as dt

import dagster as dg

from time2bet.football import season_of, season_start_year
from time2bet_assets.defs.ingestion.backfill import range_run_requests
from time2bet_assets.defs.ingestion.jobs import observe_season_files_job, refresh_fixtures_job
from time2bet_assets.defs.ingestion.partitions import partition_key
from time2bet_assets.defs.ingestion.resources import FootballDataSource

RAW_MATCHES = dg.AssetKey("raw_matches")   # its materialized partitions: the season files ingested


def current_season_run_requests(
    instance: dg.DagsterInstance, divisions: list[str], today: dt.date
) -> list[dg.RunRequest]:
    """The current season of every configured division whose current-season partition is known to the instance,
    and the previous season of each division whose current-season file has not been ingested yet, observed in as
    few runs as partition ranges allow (backfill.partition_rectangles: usually one run, one crawl, a morning; a
    run per division cost a crawl process and a run each, 22 runs a morning on the full mirror).

    Seasons turn over on 1 July (time2bet.football.season_of), but a season's file can go on changing after that:
    2019-20 was played until 26 July in England, 19 July in Spain and 2 August in Italy. Observing the current
    season alone stopped on 1 July 2020, and the season's last four weeks were never ingested (nor the predictions
    made for them scored). So the previous season stays observed until the division's new file has been ingested
    (new_season_files_sensor does that when the source publishes it): an unchanged file records nothing."""
    season = season_of(today)
    previous = season_of(dt.date(season_start_year(season) - 1, 7, 1))
    seasons = set(instance.get_dynamic_partitions("season"))
    known = set(instance.get_dynamic_partitions("division"))
    ingested = set(instance.get_materialized_partitions(RAW_MATCHES))
    wanted = set()
    for d in divisions:
        if d not in known:
            continue
        if season in seasons:
            wanted.add(str(partition_key(d, season)))
        if str(partition_key(d, season)) not in ingested and str(partition_key(d, previous)) in ingested:
            wanted.add(str(partition_key(d, previous)))   # the previous season may still be under way (see above)
    return range_run_requests(instance, wanted, lambda keys: (
        f"{keys[0] if len(keys) == 1 else f'{keys[0]}...{keys[-1]}'}|{today.isoformat()}"))


@dg.schedule(
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    job=observe_season_files_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every morning: observe the current season of every configured division, and the previous one "
    "until the new season's file is ingested (what changed is then ingested by changed_season_files_sensor).",
)
def refresh_current_season(context: dg.ScheduleEvaluationContext, source: FootballDataSource):
    today = context.scheduled_execution_time.date()
    requests = current_season_run_requests(context.instance, source.divisions, today)
    if not requests:
        return dg.SkipReason(f"no known partition for season {season_of(today)} yet (the sensor adds it when "
                             "published), nor a previous season still to watch")
    return requests


refresh_fixtures_schedule = dg.ScheduleDefinition(
    name="refresh_fixtures_every_6h",
    cron_schedule="15 */6 * * *",
    execution_timezone="UTC",
    job=refresh_fixtures_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Fixtures move (postponements): refresh them four times a day.",
)
