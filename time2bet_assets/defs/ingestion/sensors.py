"""Notice divisions and seasons that the source starts publishing, add them as partitions, ingest them."""

import dagster as dg

from time2bet.football import season_start_year
from time2bet.ingestion.discovery import discover_season_files
from time2bet_assets.defs.ingestion.jobs import ingest_season_files_job
from time2bet_assets.defs.ingestion.partitions import division_partitions, partition_key, season_partitions
from time2bet_assets.defs.ingestion.resources import FootballDataSource

MAX_RUNS_PER_TICK = 24  # a first tick on an empty instance must not launch hundreds of runs; use a backfill


def new_partitions(
    links: list[tuple[str, str]],
    *,
    divisions: list[str],
    first_season: str,
    known_divisions: set[str],
    known_seasons: set[str],
    ingested: set[str],
) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """Pure decision: which divisions and seasons to add (seasons in chronological order, so partition
    ranges stay chronological) and which published files have never been ingested."""
    first = season_start_year(first_season)
    wanted = sorted(
        {(d, s) for d, s in links if d in divisions and season_start_year(s) >= first},
        key=lambda ds: (season_start_year(ds[1]), divisions.index(ds[0])),
    )
    add_divisions = sorted({d for d, _ in wanted} - known_divisions, key=divisions.index)
    add_seasons = sorted({s for _, s in wanted} - known_seasons, key=season_start_year)
    to_ingest = [(d, s) for d, s in wanted if f"{d}|{s}" not in ingested]
    return add_divisions, add_seasons, to_ingest


@dg.sensor(
    job=ingest_season_files_job,
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Hourly: read the source's index pages (no CSV downloads), add new division/season partitions "
    "and ingest files never loaded before.",
)
def new_season_files_sensor(context: dg.SensorEvaluationContext, source: FootballDataSource):
    links = [(l.division, l.season) for l in discover_season_files(source.base_url, timeout_s=source.timeout_s)]
    add_divisions, add_seasons, to_ingest = new_partitions(
        links,
        divisions=source.divisions,
        first_season=source.first_season,
        known_divisions=set(context.instance.get_dynamic_partitions("division")),
        known_seasons=set(context.instance.get_dynamic_partitions("season")),
        ingested=set(context.instance.get_materialized_partitions(dg.AssetKey("raw_matches"))),
    )
    if len(to_ingest) > MAX_RUNS_PER_TICK:
        context.log.info(f"{len(to_ingest)} files never ingested: requesting {MAX_RUNS_PER_TICK} now; "
                         "for a large catch-up run a backfill (`time2bet ingest`)")
    return dg.SensorResult(
        dynamic_partitions_requests=[
            division_partitions.build_add_request(add_divisions),
            season_partitions.build_add_request(add_seasons),
        ],
        run_requests=[
            dg.RunRequest(partition_key=partition_key(d, s), run_key=f"{d}|{s}")
            for d, s in to_ingest[:MAX_RUNS_PER_TICK]
        ],
    )
