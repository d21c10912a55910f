"""Runs left STARTED by a process that died are reported failed.

A run's process reports how the run ended; a process killed outright (kill -9, the OOM killer, a closed laptop lid
that never woke up) reports nothing, and its run stays STARTED for ever: in the UI, for the sensors and schedules
that skip partitions "in progress", and in the run queue's concurrency count. Dagster's run monitoring (dagster.yaml)
cannot see it: it asks the run launcher whether the run worker is healthy, which the DefaultRunLauncher of
`dagster dev` does not support, and runs executed in process (`time2bet ingest`, `time2bet train`) have no launcher
at all. So the `time2bet` commands call :func:`fail_orphaned_runs` before launching runs.

Which process ran a run: the pid of its RUN_START event (Dagster records the pid of every event; RUN_START comes from
the process that runs the run: the CLI in process, the run worker under `dagster dev`). Dagster records no host, so
that pid is trusted only when the instance's storage is SQLite, which lives on this machine's disk. Runs tagged with
:func:`process_tags` are judged by their tags instead, and only on the host that launched them, which also makes a
shared (PostgreSQL) instance safe.
"""

from __future__ import annotations

import os
import socket

import dagster as dg
from dagster._core.storage.runs import SqliteRunStorage

from time2bet.background import process_alive

# statuses of a run that has not ended (sensors skip while one of their job's runs is in them)
UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED]
HOST_TAG = "time2bet/host"
PID_TAG = "time2bet/pid"


def latest_materialization(instance: dg.DagsterInstance, key: dg.AssetKey, *, partition: str | None = None,
                           before: float | None = None):
    """The newest materialization record of ``key`` (of one ``partition``; stored ``before`` a timestamp), or None."""
    found = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None,
                              before_timestamp=before),
        limit=1, ascending=False)
    return found.records[0] if found.records else None


def process_tags() -> dict[str, str]:
    """Tags naming this process as the one that runs a run (pass them to ``execute_in_process(tags=...)``)."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def fail_orphaned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Report failed every STARTED run whose process is known to have run on this host and is gone; their ids."""
    local_storage = isinstance(instance.run_storage, SqliteRunStorage)
    failed = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        run = record.dagster_run
        pid = _run_pid(instance, run, local_storage)
        if pid is None or process_alive(pid):
            continue
        instance.report_run_failed(
            run, message=f"The process that ran this run (pid {pid} on {socket.gethostname()}) is gone without "
                         "reporting its end (killed?); marked failed by time2bet.")
        failed.append(run.run_id)
    return failed


def _run_pid(instance: dg.DagsterInstance, run: dg.DagsterRun, local_storage: bool) -> int | None:
    """The pid of the process running ``run`` on this host, or None if it cannot be known."""
    if HOST_TAG in run.tags:
        if run.tags[HOST_TAG] != socket.gethostname() or not run.tags.get(PID_TAG, "").isdigit():
            return None
        return int(run.tags[PID_TAG])
    if not local_storage:
        return None
    starts = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_START, limit=1,
                                          ascending=False).records
    event = starts[0].event_log_entry.dagster_event if starts else None
    return event.pid if event is not None else None
