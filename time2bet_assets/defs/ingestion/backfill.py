"""Backfills from the command line: register partitions, then run the platform's own ingestion job as
single-run backfills (one run per contiguous range of partition keys, the same runs the UI launches)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from time2bet.football import season_start_year
from time2bet_assets.defs.ingestion.partitions import (
    division_partitions,
    partition_key,
    season_file_partitions,
    season_partitions,
)


def register_partitions(instance: dg.DagsterInstance, divisions: Sequence[str], seasons: Sequence[str]) -> None:
    """Add unknown divisions and seasons; seasons go in chronological order so ranges stay chronological."""
    known_d = set(instance.get_dynamic_partitions(division_partitions.name))
    known_s = set(instance.get_dynamic_partitions(season_partitions.name))
    new_d = [d for d in dict.fromkeys(divisions) if d not in known_d]
    new_s = sorted({s for s in seasons if s not in known_s}, key=season_start_year)
    if new_d:
        instance.add_dynamic_partitions(division_partitions.name, new_d)
    if new_s:
        instance.add_dynamic_partitions(season_partitions.name, new_s)


def contiguous_ranges(all_keys: Sequence[str], wanted: set[str]) -> list[list[str]]:
    """Split the wanted keys into maximal runs of consecutive keys in the partitions' order."""
    ranges: list[list[str]] = []
    current: list[str] = []
    for key in all_keys:
        if key in wanted:
            current.append(key)
        elif current:
            ranges.append(current)
            current = []
    if current:
        ranges.append(current)
    return ranges


def run_season_file_backfill(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    divisions: Sequence[str],
    seasons: Sequence[str],
    on_range_done: Callable[[list[str], dg.ExecuteInProcessResult], None] | None = None,
    run_config: dict | None = None,
) -> list[dg.ExecuteInProcessResult]:
    """Materialise raw_match_files and raw_matches for divisions x seasons, one run per contiguous range."""
    register_partitions(instance, divisions, seasons)
    all_keys = season_file_partitions.get_partition_keys(dynamic_partitions_store=instance)
    wanted = {str(partition_key(d, s)) for d in divisions for s in seasons}
    job = defs.resolve_job_def("ingest_season_files")
    results = []
    for keys in contiguous_ranges([str(k) for k in all_keys], wanted):
        result = job.execute_in_process(
            instance=instance,
            tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]},
            raise_on_error=False,
            run_config=run_config,
        )
        results.append(result)
        if on_range_done:
            on_range_done(keys, result)
    return results
