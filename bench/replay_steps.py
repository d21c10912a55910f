"""Where a replay's time went: Dagster run and step durations of a platform home, by job and by step.

    python bench/replay_steps.py /tmp/replay-home          # the home bench/monitor.py or `time2bet simulate` kept
    python bench/replay_steps.py /tmp/replay-home --top 40

Reads the runs and their STEP_START / STEP_SUCCESS / STEP_FAILURE events from the home's Dagster instance
(``<home>/dagster``, as time2bet.cli.sample_platform.env_for_home lays it out): nothing is re-run. The first
table is per job (runs, total and mean seconds from run start to end), the second per (job, step); the last line
says how much run time overlapped (the replay runs a tick's runs two at a time, as the daemon). What the
tables leave out of a replay's wall time is the replay's own work between runs (sensor and schedule ticks,
the report).
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path


def overlapped(intervals: list[tuple[float, float]]) -> float:
    """Seconds of run time that ran beside another run: the runs' summed durations minus the time at least one
    ran (what running them one after the other would have added, their gaps aside)."""
    union, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            union += stop - max(start, end)
            end = stop
    return sum(stop - start for start, stop in intervals) - union


def durations(home: Path) -> tuple[dict[str, list[float]], dict[tuple[str, str], list[float]]]:
    """{job: [run seconds]}, {(job, step): [step seconds]} of every finished run of the home's instance; the
    runs' (start, end) under the key None of the first."""
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    import dagster as dg

    instance = dg.DagsterInstance.get()
    by_job: dict[str, list[float]] = collections.defaultdict(list)
    by_step: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for record in instance.get_run_records():
        job = record.dagster_run.job_name
        if record.start_time and record.end_time:
            by_job[job].append(record.end_time - record.start_time)
            by_job[None].append((record.start_time, record.end_time))
        started: dict[str, float] = {}
        for entry in instance.all_logs(record.dagster_run.run_id):
            event = entry.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.event_type_value == "STEP_START":
                started[event.step_key] = entry.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in started:
                by_step[(job, event.step_key)].append(entry.timestamp - started[event.step_key])
    return by_job, by_step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("home", type=Path, help="the platform home of the replay")
    parser.add_argument("--top", type=int, default=25, help="steps listed, the costliest first (25)")
    args = parser.parse_args(argv)
    if not (args.home / "dagster").is_dir():
        print(f"no Dagster instance under {args.home}", file=sys.stderr)
        return 2
    by_job, by_step = durations(args.home)
    intervals = by_job.pop(None, [])
    print(f"{'job':32s} {'runs':>5s} {'total_s':>9s} {'mean_s':>7s}")
    for job, seconds in sorted(by_job.items(), key=lambda kv: -sum(kv[1])):
        print(f"{job:32s} {len(seconds):5d} {sum(seconds):9.1f} {sum(seconds) / len(seconds):7.2f}")
    print(f"\n{'job':24s} {'step':52s} {'n':>5s} {'total_s':>9s} {'mean_s':>7s}")
    for (job, step), seconds in sorted(by_step.items(), key=lambda kv: -sum(kv[1]))[:args.top]:
        print(f"{job[:24]:24s} {step[:52]:52s} {len(seconds):5d} {sum(seconds):9.1f} {sum(seconds) / len(seconds):7.2f}")
    if intervals:
        print(f"\nruns overlapped for {overlapped(intervals):.1f} s of their {sum(b - a for a, b in intervals):.1f} s "
              f"(run two at a time: what one at a time would have added, gaps aside); first start to last end "
              f"{max(b for _, b in intervals) - min(a for a, _ in intervals):.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
