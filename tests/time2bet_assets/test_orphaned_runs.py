"""A run left STARTED by a process that died is marked failed when the next `time2bet` command prepares the Dagster
instance; a run whose process lives is not touched. Real processes running real in-process runs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from time2bet.cli.main import prepare_dagster_home
from time2bet.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90   # two processes importing Dagster at once on a busy machine

# A process that runs a one-op job in process on the instance at DAGSTER_HOME, as `time2bet ingest` does; the op
# writes its run id to a file, then waits to be killed.
RUNNER = """
import sys, time
from pathlib import Path
import dagster as dg

@dg.op
def wait_forever(context):
    Path(sys.argv[1]).write_text(context.run_id)
    time.sleep(600)

@dg.job
def long_job():
    wait_forever()

long_job.execute_in_process(instance=dg.DagsterInstance.get(), raise_on_error=False)
"""


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    home = tmp_path / "home"
    monkeypatch.setenv("TIME2BET_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))   # prepare_dagster_home sets it; restored after
    for name in [n for n in os.environ if n.startswith("DAGSTER_PG_")]:
        monkeypatch.delenv(name)
    return Settings.from_env()


def start_run(settings: Settings, marker: Path) -> subprocess.Popen:
    env = dict(os.environ, DAGSTER_HOME=str(settings.dagster_home), PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(marker)], env=env, cwd=marker.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_run_id(proc: subprocess.Popen, marker: Path, deadline: float) -> str:
    while not marker.exists() or not marker.read_text():
        if proc.poll() is not None:
            pytest.fail(f"the run's process exited: {proc.stderr.read().decode(errors='replace')[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no run started within {START_TIMEOUT_S}s")
        time.sleep(0.2)
    return marker.read_text()


def test_a_run_of_a_killed_process_is_marked_failed_and_a_live_one_is_not(settings, tmp_path):
    prepare_dagster_home(settings)   # the instance's dagster.yaml, as the commands have it
    dead_proc = start_run(settings, tmp_path / "dead-run")
    live_proc = start_run(settings, tmp_path / "live-run")
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        dead_run = wait_run_id(dead_proc, tmp_path / "dead-run", deadline)
        live_run = wait_run_id(live_proc, tmp_path / "live-run", deadline)
        os.kill(dead_proc.pid, signal.SIGKILL)
        dead_proc.wait(timeout=10)
        with dg.DagsterInstance.get() as instance:
            assert instance.get_run_by_id(dead_run).status == dg.DagsterRunStatus.STARTED, "nobody reported it"

        prepare_dagster_home(settings)   # what the next `time2bet ingest` / `time2bet train` does first

        with dg.DagsterInstance.get() as instance:
            assert instance.get_run_by_id(dead_run).status == dg.DagsterRunStatus.FAILURE
            assert instance.get_run_by_id(live_run).status == dg.DagsterRunStatus.STARTED
            failure = instance.get_records_for_run(dead_run, of_type=dg.DagsterEventType.RUN_FAILURE).records
            assert str(dead_proc.pid) in failure[0].event_log_entry.dagster_event.message
    finally:
        for proc in (dead_proc, live_proc):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def test_runs_tagged_with_their_process_are_judged_by_the_tags(tmp_path):
    """Runs of another host are never judged by a local pid (a shared PostgreSQL instance); runs of this host
    by the pid in their tags."""
    from time2bet_assets.lib.runs import fail_orphaned_runs, process_tags

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    host = socket.gethostname()
    cases = {
        "dead here": {**process_tags(), "time2bet/pid": str(dead.pid)},
        "alive here (this process)": process_tags(),
        "dead pid, other host": {"time2bet/host": f"not-{host}", "time2bet/pid": str(dead.pid)},
    }
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        ids = {}
        for name, tags in cases.items():
            run = instance.create_run_for_job(job_def=_noop_job, tags=tags, status=dg.DagsterRunStatus.STARTED)
            ids[name] = run.run_id
        assert fail_orphaned_runs(instance) == [ids["dead here"]]
        status = {name: instance.get_run_by_id(run_id).status for name, run_id in ids.items()}
    assert status == {"dead here": dg.DagsterRunStatus.FAILURE,
                      "alive here (this process)": dg.DagsterRunStatus.STARTED,
                      "dead pid, other host": dg.DagsterRunStatus.STARTED}


@dg.op
def _noop():
    pass


@dg.job
def _noop_job():
    _noop()
