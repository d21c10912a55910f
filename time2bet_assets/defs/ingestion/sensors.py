"""Notice divisions and seasons that the source starts publishing, add them as partitions, ingest them; ingest
the season files whose observation says they changed."""

import hashlib

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from time2bet.football import season_start_year
from time2bet.ingestion.discovery import discover_season_files
from time2bet_assets.defs.ingestion.assets import SOURCE_SEASON_FILES
from time2bet_assets.defs.ingestion.backfill import range_run_requests
from time2bet_assets.defs.ingestion.jobs import INGESTED_BY_CALLER_TAG, ingest_season_files_job
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


def changed_partitions(records, run_tags) -> list[tuple[str, str]]:
    """Pure decision: (partition key, run key) to ingest for these observation records of source_season_files,
    oldest first, one per partition (its latest observation), skipping observations that the run which made them
    ingests itself (``run_tags(run_id)`` has INGESTED_BY_CALLER_TAG)."""
    latest = {}
    for record in records:
        if record.partition_key is None or run_tags(record.run_id).get(INGESTED_BY_CALLER_TAG):
            continue
        version = (record.asset_observation.tags or {}).get(DATA_VERSION_TAG) or f"failed-{record.storage_id}"
        latest[record.partition_key] = f"{record.partition_key}|{version}"
    return list(latest.items())


@dg.sensor(
    job=ingest_season_files_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Ingest the season files that an observation of source_season_files found changed (or could not "
    "fetch) since they were loaded: in as few single-run ranges as the partitions allow, keyed by the files' versions.",
)
def changed_season_files_sensor(context: dg.SensorEvaluationContext):
    found = context.instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=SOURCE_SEASON_FILES,
                              after_storage_id=int(context.cursor) if context.cursor else None),
        limit=1000, ascending=True)
    if not found.records:
        return dg.SkipReason("no new observation of source_season_files")
    tags: dict[str, dict] = {}

    def run_tags(run_id: str) -> dict:
        if run_id not in tags:
            run = context.instance.get_run_by_id(run_id)
            tags[run_id] = dict(run.tags) if run is not None else {}
        return tags[run_id]

    return dg.SensorResult(run_requests=ingestion_requests(context.instance, changed_partitions(found.records, run_tags)),
                           cursor=str(found.records[-1].storage_id))


def ingestion_requests(instance: dg.DagsterInstance, changed: list[tuple[str, str]]) -> list[dg.RunRequest]:
    """The changed partitions in as few runs as partition ranges allow (backfill.partition_rectangles): a morning's
    observation of every division usually finds several files changed, and a run (and a crawl) each cost ~1.5 s
    where one range run loads them all. A partition alone keeps its run key ``<partition>|<version>``; a range's
    names its ends and a digest of its partitions' keys, so each set of versions is ingested once."""
    run_keys = dict(changed)

    def run_key(keys: list[str]) -> str:
        if len(keys) == 1:
            return run_keys[keys[0]]
        digest = hashlib.sha256("\n".join(run_keys[key] for key in keys).encode()).hexdigest()[:16]
        return f"{keys[0]}...{keys[-1]}|{digest}"

    return range_run_requests(instance, set(run_keys), run_key)
