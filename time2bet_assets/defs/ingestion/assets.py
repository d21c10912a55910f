"""Ingestion assets: source site -> raw zone (immutable files) -> warehouse raw tables.

Backfills run as one run for a whole range of partitions (``BackfillPolicy.single_run``): one Scrapy
process and one warehouse transaction for hundreds of files instead of hundreds of runs.

Bad input never reaches the warehouse: a file that cannot be fetched or parsed is skipped, its partition
keeps its last good data, the reason is written to the materialization metadata, and the asset's check
fails saying which file and why (the check on ``raw_matches`` is blocking, so nothing downstream runs on it).

What the alerting needs and Dagster does not record (an unchanged file records nothing) is kept per partition in
the Dagster instance's key-value store (time2bet_assets.lib.ingestion_state): when its file was last fetched
successfully (found the same as the loaded one, or loaded) and whether its latest version was rejected. The monitoring area's ingestion_figures sensor
exports it (``time2bet_ingestion_*``); failing to record it never fails the step.
"""

import time
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from time2bet.football import season_file_path
from time2bet.ingestion.crawl import FetchResult, staging_tempdir
from time2bet.ingestion.integrity import IDENTITY, check_rewrite
from time2bet.ingestion.parsing import RejectedFile, TruncatedFile, parse_fixtures, parse_season_file
from time2bet.ingestion.raw_zone import FIXTURES_SUBJECT, season_subject
from time2bet.warehouse.client import PartitionLoad
from time2bet_assets.defs.ingestion.partitions import division_and_season, partition_key, season_file_partitions
from time2bet_assets.defs.ingestion.resources import FootballDataSource, RawZoneResource
from time2bet_assets.lib.ingestion_state import LAST_SUCCESS_KEY, REJECTED_KEY, recall, remember
from time2bet_assets.lib.warehouse import WarehouseResource

FILES_FETCHED = "all_requested_files_fetched"
FILES_LOADED = "no_file_rejected"
FILES_TRUSTED = "no_file_quarantined"
SOURCE_SEASON_FILES = dg.AssetKey("source_season_files")
RAW_MATCH_FILES = dg.AssetKey("raw_match_files")


class RawMatchesConfig(dg.Config):
    """``accept_rewrite``: partitions ('F1|2018-19') whose new file may drop or change loaded matches. Accepting
    a correction is one explicit act, recorded in the run's config and the materialization's metadata."""

    accept_rewrite: list[str] = []  # noqa: RUF012 - a pydantic field (dg.Config): the default is copied per instance

def _md_table(rows: list[dict], limit: int = 60) -> dg.MetadataValue:
    """A readable per-partition summary for the Dagster UI (long runs list the first ``limit`` rows)."""
    if not rows:
        return dg.MetadataValue.md("_none_")
    frame = pd.DataFrame(rows)
    text = frame.head(limit).to_markdown(index=False)
    if len(frame) > limit:
        text += f"\n\n... and {len(frame) - limit} more"
    return dg.MetadataValue.md(text)

def _run_keys(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> list[tuple[str, str]]:
    return [division_and_season(k) for k in context.partition_keys]


def _remember(context: dg.AssetExecutionContext | dg.OpExecutionContext, pairs: dict[str, str]) -> None:
    """Record ``pairs`` in the instance's key-value store. Never raises: the step's work is done, and the figures
    only lag (logged as a warning)."""
    if not pairs:
        return
    try:
        remember(context.instance, pairs)
    except Exception as exc:  # noqa: BLE001 - the alerting's state must never fail ingestion
        context.log.warning(f"could not record the ingestion state for the alerting ({len(pairs)} key(s)): "
                            f"{type(exc).__name__}: {exc}")


def _fetched_as_loaded(keys, now: float) -> dict[str, str]:
    """State of partitions whose file the source served as it is loaded: fetched successfully now, and its latest
    version is the loaded one (nothing rejected)."""
    out = {}
    for division, season in keys:
        name = f"{division}|{season}"
        out |= {LAST_SUCCESS_KEY.format(name): repr(now), REJECTED_KEY.format(name): ""}
    return out


def _loaded_at(warehouse, keys) -> dict[str, str]:
    """When ``keys`` were loaded (raw.match_files), for partitions without a recorded success: loaded before this
    state was kept, their load is the last success known."""
    frame = warehouse.read_sql("SELECT division, season, loaded_at FROM raw.match_files")
    wanted, out = set(keys), {}
    for division, season, loaded_at in frame.itertuples(index=False, name=None):
        if (division, season) in wanted and not pd.isna(loaded_at):
            stamp = pd.Timestamp(loaded_at)
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
            out[LAST_SUCCESS_KEY.format(f"{division}|{season}")] = repr(stamp.timestamp())
    return out


@dg.observable_source_asset(
    partitions_def=season_file_partitions,
    group_name="ingestion",
    description="Season files as the source publishes them now. Observing crawls the run's partitions (conditional "
    "requests through the HTTP cache) and records one observation, data version = sha256 of the bytes, for each "
    "ingested partition whose file differs from the one loaded in the warehouse (or could not be fetched): the "
    "partitions worth materializing again. An unchanged source records nothing; partitions never ingested are "
    "new, not changed (new_season_files_sensor and backfills ingest them).",
)
def source_season_files(context: dg.OpExecutionContext, source: FootballDataSource,
                        warehouse: WarehouseResource) -> dg.DataVersionsByPartition:
    keys = _run_keys(context)
    started = time.perf_counter()
    with staging_tempdir() as staging:
        results = source.crawl(divisions=sorted({d for d, _ in keys}), seasons=sorted({s for _, s in keys}),
                               fixtures=False, staging_dir=staging)
    by_key = {(r.division, r.season): r for r in results if r.kind == "season_file"}
    wh = warehouse.open()
    loaded = wh.loaded_match_files()
    ingested = set(context.instance.get_materialized_partitions(RAW_MATCH_FILES))
    changed, as_loaded = 0, []
    for key in keys:
        result = by_key.get(key)
        if result is not None and result.status == "fetched" and key in loaded and result.sha256 == loaded[key]:
            as_loaded.append(key)
        if result is None or result.status == "not_published" or str(partition_key(*key)) not in ingested or (
                result.status == "fetched" and result.sha256 == loaded.get(key)):
            continue
        changed += 1
        metadata = {"url": dg.MetadataValue.url(result.url) if result.url else None, "http_status": result.http_status,
                    "bytes": result.bytes, "from_http_cache": result.from_cache,
                    "loaded_sha256": loaded.get(key), "error": result.error}
        context.log_event(dg.AssetObservation(
            asset_key=SOURCE_SEASON_FILES,
            partition=str(partition_key(*key)),
            tags={DATA_VERSION_TAG: result.sha256} if result.sha256 else None,
            metadata={k: v for k, v in metadata.items() if v is not None}))
    state = _fetched_as_loaded(as_loaded, time.time())
    # loaded partitions not found as loaded (changed, or not fetched) without a success recorded (loaded before
    # this state was kept): their load is the last success known, so that a source failing since then shows
    unknown = [k for k in keys if k in loaded and k not in as_loaded]
    if unknown:
        try:
            recorded = recall(context.instance, [LAST_SUCCESS_KEY.format(f"{d}|{s}") for d, s in unknown])
            state |= {k: v for k, v in _loaded_at(wh, unknown).items() if k not in recorded}
        except Exception as exc:  # noqa: BLE001 - as in _remember
            context.log.warning(f"could not read when the partitions were loaded: {type(exc).__name__}: {exc}")
    _remember(context, state)
    context.log.info(f"observed {len(keys)} partition(s) in {time.perf_counter() - started:.1f}s: "
                     f"{changed} changed or failed since ingested; the others as loaded, new or not published")
    return dg.DataVersionsByPartition({})   # recorded above, with metadata; nothing for unchanged partitions

@dg.asset(
    partitions_def=season_file_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[source_season_files],
    group_name="ingestion",
    kinds={"scrapy", "file"},
    check_specs=[
        dg.AssetCheckSpec(FILES_FETCHED, asset="raw_match_files", description="every linked season file was downloaded intact")
    ],
)
def raw_match_files(
    context: dg.AssetExecutionContext, source: FootballDataSource, raw_zone: RawZoneResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Season CSVs crawled from the source and landed unchanged in the raw zone (content-addressed, never
    overwritten). The content hash is the data version: an unchanged file does not make downstream stale."""
    keys = _run_keys(context)
    zone = raw_zone.open()
    loaded = warehouse.open().loaded_match_files()
    as_loaded = []
    started = time.perf_counter()
    with staging_tempdir() as staging:
        results = source.crawl(
            divisions=sorted({d for d, _ in keys}),
            seasons=sorted({s for _, s in keys}),
            fixtures=False,
            staging_dir=Path(staging),
        )
        by_key: dict[tuple[str, str], FetchResult] = {
            (r.division, r.season): r for r in results if r.kind == "season_file"
        }
        crawl_s = time.perf_counter() - started
        context.log.info(f"crawled {len(results)} target(s) in {crawl_s:.1f}s")
        rows, failures, new_files, total_bytes = [], {}, 0, 0
        for i, key in enumerate(keys, 1):
            result = by_key.get(key)
            row = {"division": key[0], "season": key[1]}
            if result is None or result.status == "not_published":
                row["status"] = "not published by the source"
            elif result.status == "failed":
                previous = zone.latest(season_subject(*key))
                failures[f"{key[0]}|{key[1]}"] = result.error
                row |= {"status": "FAILED: " + str(result.error), "kept": previous.uri if previous else "nothing yet"}
            else:
                landed, is_new = zone.land(season_subject(*key), Path(result.path).read_bytes())
                if loaded.get(key) == landed.sha256:
                    as_loaded.append(key)
                new_files += is_new
                total_bytes += result.bytes
                row |= {"status": "new version" if is_new else "unchanged", "sha256": landed.sha256[:12], "url": result.url}
            rows.append(row)
            if i % 100 == 0:
                context.log.info(f"landed {i}/{len(keys)} partitions")
    fetched = sum(1 for r in rows if "sha256" in r)
    metadata = {
        "partitions": len(keys),
        "files_fetched": fetched,
        "files_new": new_files,
        "files_failed": len(failures),
        "bytes": total_bytes,
        "crawl_seconds": round(crawl_s, 2),
        "land_seconds": round(time.perf_counter() - started - crawl_s, 2),
        "source": dg.MetadataValue.url(source.base_url),
        "files": _md_table(rows),
    }
    data_version = None
    if len(keys) == 1 and "sha256" in rows[0]:
        current = zone.latest(season_subject(*keys[0]))
        data_version = dg.DataVersion(current.sha256)
        metadata |= {"sha256": current.sha256, "raw_uri": current.uri, "source_url": rows[0]["url"]}
    if failures:
        context.log.error(f"{len(failures)} season file(s) could not be fetched: {failures}")
    _remember(context, _fetched_as_loaded(as_loaded, time.time()))
    return dg.MaterializeResult(
        metadata=metadata,
        data_version=data_version,
        check_results=[
            dg.AssetCheckResult(
                check_name=FILES_FETCHED,
                passed=not failures,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"failed": dg.MetadataValue.json(failures), "fetched": fetched},
                description=None if not failures else f"{len(failures)} file(s) failed; their partitions keep the last good version",
            )
        ],
    )

@dg.asset(
    partitions_def=season_file_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[raw_match_files],
    group_name="ingestion",
    kinds={"pandas", "duckdb", "postgres"},
    check_specs=[
        dg.AssetCheckSpec(FILES_LOADED, asset="raw_matches", blocking=True, description="every landed season file parsed and validated"),
        dg.AssetCheckSpec(FILES_TRUSTED, asset="raw_matches", blocking=True,
                          description="no new file version is cut short, or drops or changes a loaded match"),
    ],
)
def raw_matches(
    context: dg.AssetExecutionContext,
    config: RawMatchesConfig,
    source: FootballDataSource,
    raw_zone: RawZoneResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Typed, validated match rows in ``raw.matches``. Each partition is replaced atomically from the newest
    raw-zone file; a partition whose file is already loaded is skipped, so re-running is cheap and idempotent.
    A truncated file, or a new version that drops or changes loaded matches, is quarantined: landed, not
    loaded (``time2bet.ingestion.integrity``)."""
    keys = _run_keys(context)
    zone, wh = raw_zone.open(), warehouse.open()
    started = time.perf_counter()
    loaded = wh.loaded_match_files()
    accept = set(config.accept_rewrite)
    loads, rows, rejected, quarantined, accepted, unchanged = [], [], {}, {}, {}, 0
    judged = {}   # partition key -> why its latest file is not loaded ("" when it is, or there is none)
    for key in keys:
        current = zone.latest(season_subject(*key))
        name = f"{key[0]}|{key[1]}"
        row = {"division": key[0], "season": key[1]}
        judged[name] = ""
        if current is None:
            row["status"] = "no file"
        elif loaded.get(key) == current.sha256:
            unchanged += 1
            row |= {"status": "unchanged", "sha256": current.sha256[:12]}
        else:
            try:
                frame = parse_season_file(zone.read(current), division=key[0], season=key[1])
            except RejectedFile as exc:   # a truncated file is quarantined, any other bad file rejected
                truncated = isinstance(exc, TruncatedFile)
                (quarantined if truncated else rejected)[name] = str(exc)
                judged[name] = "quarantined" if truncated else "invalid"
                row |= {"status": f"{'QUARANTINED' if truncated else 'REJECTED'}: {exc}", "sha256": current.sha256[:12]}
                rows.append(row)
                continue
            rewrite = check_rewrite(wh.partition_matches(*key, IDENTITY), frame) if key in loaded else None
            if rewrite is not None and not rewrite.safe and name not in accept:
                quarantined[name] = rewrite.describe()
                judged[name] = "quarantined"
                row |= {"status": f"QUARANTINED: {rewrite.describe()}", "sha256": current.sha256[:12]}
            else:
                if rewrite is not None and not rewrite.safe:
                    accepted[name] = rewrite.describe()
                    context.log.warning(f"{name}: rewrite accepted by the run's config: {rewrite.describe()}")
                url = f"{source.base_url}/{season_file_path(*key)}"
                loads.append(PartitionLoad(key[0], key[1], frame, current.sha256, current.uri, url))
                dates = pd.to_datetime(frame["match_date"])
                row |= {"status": "loaded", "rows": len(frame), "sha256": current.sha256[:12],
                        "first_date": str(dates.min().date()), "last_date": str(dates.max().date())}
        rows.append(row)
    parse_s = time.perf_counter() - started
    wh.replace_match_partitions(loads)
    load_s = time.perf_counter() - started - parse_s
    now = repr(time.time())
    _remember(context, {**{REJECTED_KEY.format(name): why for name, why in judged.items()},
                        **{LAST_SUCCESS_KEY.format(f"{l.division}|{l.season}"): now for l in loads}})
    rows_loaded = sum(len(l.frame) for l in loads)
    context.log.info(f"loaded {len(loads)} partition(s), {rows_loaded} rows; {unchanged} unchanged; "
                     f"{len(rejected)} rejected; {len(quarantined)} quarantined")
    if quarantined:
        context.log.error(f"quarantined (landed, not loaded; the loaded data stays): {quarantined}")
    metadata = {
        "partitions": len(keys),
        "partitions_loaded": len(loads),
        "partitions_unchanged": unchanged,
        "partitions_rejected": len(rejected),
        "partitions_quarantined": len(quarantined),
        "rewrites_accepted": dg.MetadataValue.json(accepted) if accepted else None,
        "rows_loaded": rows_loaded,
        "parse_seconds": round(parse_s, 2),
        "load_seconds": round(load_s, 2),
        "warehouse": warehouse.url.split("@")[-1],
        "files": _md_table(rows),
    }
    if loads:
        all_dates = pd.concat([pd.to_datetime(l.frame["match_date"]) for l in loads])
        metadata |= {"first_date": str(all_dates.min().date()), "last_date": str(all_dates.max().date())}
    data_version = None
    if len(keys) == 1:
        current = zone.latest(season_subject(*keys[0]))
        if current is not None and not rejected and not quarantined:
            data_version = dg.DataVersion(current.sha256)
            metadata["dagster/row_count"] = int(rows[0].get("rows", 0)) if loads else None
    metadata = {k: v for k, v in metadata.items() if v is not None}
    return dg.MaterializeResult(
        metadata=metadata,
        data_version=data_version,
        check_results=[
            dg.AssetCheckResult(
                check_name=FILES_LOADED,
                passed=not rejected,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"rejected": dg.MetadataValue.json(rejected)},
                description=None if not rejected else "; ".join(f"{k}: {v}" for k, v in list(rejected.items())[:5]),
            ),
            dg.AssetCheckResult(
                check_name=FILES_TRUSTED,
                passed=not quarantined,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"quarantined": dg.MetadataValue.json(quarantined),
                          "accepted": dg.MetadataValue.json(accepted)},
                description=None if not quarantined else
                "; ".join(f"{k}: {v}" for k, v in list(quarantined.items())[:5])
                + " (to load it anyway: time2bet ingest --accept-rewrite 'DIV|SEASON')",
            ),
        ],
    )

@dg.asset(group_name="ingestion", kinds={"scrapy", "pandas"})
def raw_fixtures(
    context: dg.AssetExecutionContext,
    source: FootballDataSource,
    raw_zone: RawZoneResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Upcoming matches (``/fixtures.csv``): landed in the raw zone, then ``raw.fixtures`` is replaced as a
    whole. A bad download or file fails the run and leaves the previous fixtures in place."""
    zone, wh = raw_zone.open(), warehouse.open()
    with staging_tempdir() as staging:
        results = source.crawl(divisions=[], seasons=[], fixtures=True, staging_dir=Path(staging))
        result = next((r for r in results if r.kind == "fixtures"), None)
        if result is None or result.status != "fetched":
            raise dg.Failure(
                description=f"fixtures could not be fetched: {result.error if result else 'not linked by the source'}",
                metadata={"url": source.base_url + "/fixtures.csv"},
            )
        landed, is_new = zone.land(FIXTURES_SUBJECT, Path(result.path).read_bytes())
    try:
        frame = parse_fixtures(zone.read(landed))
    except RejectedFile as exc:
        raise dg.Failure(description=f"fixtures file rejected: {exc}", metadata={"raw_uri": landed.uri}) from exc
    wh.replace_fixtures(frame, landed.sha256)
    dates = pd.to_datetime(frame["match_date"]) if len(frame) else pd.Series(dtype="datetime64[ns]")
    context.log.info(f"{len(frame)} upcoming matches")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(landed.sha256),
        metadata={
            "dagster/row_count": len(frame),
            "sha256": landed.sha256,
            "raw_uri": landed.uri,
            "new_version": is_new,
            "source_url": dg.MetadataValue.url(result.url),
            "first_date": str(dates.min().date()) if len(dates) else "none",
            "last_date": str(dates.max().date()) if len(dates) else "none",
            "divisions": ", ".join(sorted(frame["division"].unique())) if len(frame) else "none",
        },
    )
