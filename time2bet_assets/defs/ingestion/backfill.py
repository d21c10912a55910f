"""Backfills from the command line: register partitions, observe the source (one crawl: which files changed since
they were loaded), then run the platform's own ingestion job on the changed partitions only, as single-run
backfills (one run per contiguous range of partition keys, the same runs the UI launches). An unchanged source
costs the observation and no materialization."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from time2bet.football import season_start_year
from time2bet_assets.defs.ingestion.assets import RAW_MATCH_FILES, SOURCE_SEASON_FILES
from time2bet_assets.defs.ingestion.jobs import INGESTED_BY_CALLER_TAG
from time2bet_assets.defs.ingestion.partitions import (
    division_partitions,
    partition_key,
    season_partitions,
)
from time2bet_assets.lib.runs import process_tags


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


def partition_rectangles(divisions: Sequence[str], seasons: Sequence[str], needed: set[str],
                         allowed: set[str]) -> list[list[str]]:
    """Few runs that cover the needed keys. A run's partition range over two dimensions is the rectangle of its
    first and last key (divisions from..to x seasons from..to, in the instance's order), so each run is such a
    rectangle holding only allowed keys (``needed`` is a subset of ``allowed``). Greedy, in division-major order:
    widen over seasons, then deepen over divisions while the whole season window is allowed."""
    todo, covered, rectangles = set(needed), set(), []

    def free(i: int, j: int) -> bool:
        key = f"{divisions[i]}|{seasons[j]}"
        return key in allowed and key not in covered

    for i in range(len(divisions)):
        for j in range(len(seasons)):
            if f"{divisions[i]}|{seasons[j]}" not in todo:
                continue
            j1 = j
            while j1 + 1 < len(seasons) and free(i, j1 + 1):
                j1 += 1
            while f"{divisions[i]}|{seasons[j1]}" not in todo:
                j1 -= 1
            i1 = i
            while i1 + 1 < len(divisions) and all(free(i1 + 1, k) for k in range(j, j1 + 1)):
                i1 += 1
            while i1 > i and not any(f"{divisions[i1]}|{seasons[k]}" in todo for k in range(j, j1 + 1)):
                i1 -= 1
            keys = [f"{divisions[a]}|{seasons[k]}" for a in range(i, i1 + 1) for k in range(j, j1 + 1)]
            rectangles.append(keys)
            covered.update(keys)
            todo.difference_update(keys)
    return rectangles


def range_tags(keys: list[str]) -> dict[str, str]:
    return {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}


def partition_orders(instance: dg.DagsterInstance) -> tuple[list[str], list[str]]:
    """The instance's division and season orders, which partition ranges follow."""
    return (list(instance.get_dynamic_partitions(division_partitions.name)),
            list(instance.get_dynamic_partitions(season_partitions.name)))


def range_run_requests(instance: dg.DagsterInstance, keys: set[str],
                       run_key: Callable[[list[str]], str]) -> list[dg.RunRequest]:
    """Run requests covering ``keys`` in as few runs as partition ranges allow (:func:`partition_rectangles`): a
    partition alone by its key, a rectangle as a single-run range (its tags); ``run_key(rectangle's keys)``."""
    requests = []
    for rectangle in partition_rectangles(*partition_orders(instance), keys, keys):
        if len(rectangle) == 1:
            requests.append(dg.RunRequest(partition_key=rectangle[0], run_key=run_key(rectangle)))
        else:
            requests.append(dg.RunRequest(run_key=run_key(rectangle), tags=range_tags(rectangle)))
    return requests


def observe_changes(defs: dg.Definitions, instance: dg.DagsterInstance,
                    wanted: set[str]) -> tuple[set[str], list[dg.ExecuteInProcessResult]]:
    """Observe source_season_files over the wanted keys (one run per rectangle): the partitions it found changed
    or unfetchable, and the observation runs (a failed one: the crawl could not run at all)."""
    job = defs.resolve_job_def("observe_season_files")
    changed, runs = set(), []
    for keys in partition_rectangles(*partition_orders(instance), wanted, wanted):
        result = job.execute_in_process(instance=instance, raise_on_error=False,
                                        tags={**range_tags(keys), **process_tags(), INGESTED_BY_CALLER_TAG: "true"})
        runs.append(result)
        if not result.success:
            continue
        # from the instance: the in-process result's event list is not guaranteed complete for long runs
        for entry in instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_OBSERVATION):
            observation = entry.asset_observation
            if observation is not None and observation.asset_key == SOURCE_SEASON_FILES and observation.partition:
                changed.add(str(observation.partition))
    return changed, runs


def run_season_file_backfill(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    divisions: Sequence[str],
    seasons: Sequence[str],
    on_range_done: Callable[[list[str], dg.ExecuteInProcessResult], None] | None = None,
    run_config: dict | None = None,
    *,
    changed_only: bool = True,
    on_observed: Callable[[set[str]], None] | None = None,
) -> list[dg.ExecuteInProcessResult]:
    """Materialise raw_match_files and raw_matches for divisions x seasons in as few runs as partition ranges
    allow: only the partitions never ingested and those an observation finds changed, unless ``changed_only`` is
    False. Returns the runs, observation runs first."""
    register_partitions(instance, divisions, seasons)
    wanted = {str(partition_key(d, s)) for d in divisions for s in seasons}
    needed, results = wanted, []
    if changed_only:
        # partitions never ingested are new (or not published): ingested as such, like a first load; the others
        # only if an observation finds their file changed (one crawl, no materialization for an unchanged source)
        ingested = wanted & set(instance.get_materialized_partitions(RAW_MATCH_FILES))
        changed, results = observe_changes(defs, instance, ingested) if ingested else (set(), [])
        needed = (wanted - ingested) | changed
        if on_observed:
            on_observed(needed)
    job = defs.resolve_job_def("ingest_season_files")
    for keys in partition_rectangles(*partition_orders(instance), needed, needed):
        result = job.execute_in_process(
            instance=instance,
            tags={**range_tags(keys), **process_tags()},
            raise_on_error=False,
            run_config=run_config,
        )
        results.append(result)
        if on_range_done:
            on_range_done(keys, result)
    return results
