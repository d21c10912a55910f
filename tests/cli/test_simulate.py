"""`time2bet simulate` on the sample site: two weekly steps after a first training, through the shipped sensors,
schedules and jobs. The report has the documented columns; the round played in the first step was predicted
(ledger, before kickoff), ingested in the second and joined there, every played predicted match once; the
replay's ledger verifies; nothing is written outside its home."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pandas as pd

from time2bet.cli.simulate import REPORT_COLUMNS, ended_weeks, parse_step, step_dates

FIRST, LAST = dt.date(2025, 2, 1), dt.date(2025, 2, 15)


def test_step_dates_and_steps():
    assert step_dates(FIRST, LAST, 7) == [dt.date(2025, 2, 8), dt.date(2025, 2, 15)]
    assert step_dates(FIRST, dt.date(2025, 2, 10), 7) == [dt.date(2025, 2, 8), dt.date(2025, 2, 10)]
    assert parse_step("2w") == 14 and parse_step("7d") == 7 and parse_step("3") == 3
    mondays = ["2025-01-20", "2025-01-27", "2025-02-03", "2025-02-10"]
    assert ended_weeks(mondays, FIRST, dt.date(2025, 2, 8)) == ["2025-01-27"]      # ended Sunday 2 Feb
    assert ended_weeks(mondays, dt.date(2025, 2, 8), LAST) == ["2025-02-03"]       # each week once
    assert ended_weeks(mondays, dt.date(2025, 2, 2), dt.date(2025, 2, 3)) == ["2025-01-27"]   # daily steps


def test_simulate_replays_the_loop(tmp_path):
    from time2bet.source.sample_site import generate_sample_site
    from time2bet.warehouse.client import Warehouse

    site, home, report = tmp_path / "site", tmp_path / "replay", tmp_path / "report.csv"
    generate_sample_site(site)
    cli = [sys.executable, "-m", "time2bet.cli.main"]
    done = subprocess.run([*cli, "simulate", "--root", str(site), "--from", FIRST.isoformat(), "--to",
                           LAST.isoformat(), "--divisions", "E0,E1", "--home", str(home), "--report", str(report)],
                          capture_output=True, text=True, timeout=1200, cwd=tmp_path,
                          env={k: v for k, v in __import__("os").environ.items() if not k.startswith("TIME2BET_")})
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(done.stdout.splitlines()) <= 40, done.stdout   # progress and results, not the tools' chatter
    table = pd.read_csv(report)
    assert list(table.columns) == REPORT_COLUMNS
    assert len(table) == 2 * 2   # steps x divisions

    wh = Warehouse.from_url(f"duckdb:///{home / 'warehouse.duckdb'}")
    # the round of 8 Feb: a fixture at the first step (predicted as of that day), played, ingested at the second
    played = wh.read_sql("SELECT division, count(*) AS n FROM analytics.stg_matches WHERE match_date >= DATE "
                         "'2025-02-03' AND match_date <= DATE '2025-02-09' GROUP BY division").set_index("division")["n"]
    assert played.sum() > 0
    second = table[table["step_date"] == LAST.isoformat()].set_index("division")
    first = table[table["step_date"] == "2025-02-08"].set_index("division")
    for division, n in played.items():
        assert first.loc[division, "predicted"] >= n   # the first step predicted that round before kickoff
        assert second.loc[division, "joined"] == n     # and the second joined each played match once
        assert second.loc[division, "live_logloss"] > 0
    # fired_alerts: the shipped rules over the figures the steps exported agree with the drift the warehouse holds
    # for the week each step reported (the replay's series have the model's and the ledger's alerts only)
    drift = wh.read_sql("SELECT week, kind, drifted FROM monitoring.drift")
    drift["week"] = pd.to_datetime(drift["week"]).dt.date
    previous = FIRST
    for step, rows in table.groupby("step_date", sort=True):
        assert rows["fired_alerts"].nunique(dropna=False) == 1   # a step's alerts, on each of its rows
        value = rows["fired_alerts"].iloc[0]
        fired = set(value.split(";")) if isinstance(value, str) else set()
        assert fired <= {"FeatureDrift", "PredictionDrift", "TargetDrift", "LiveLogLossAboveEstimate",
                         "LiveLogLossWorseThanEloReference", "LedgerChainProblems"}, value
        day = dt.date.fromisoformat(step)
        week = drift[drift["week"].astype(str).isin(ended_weeks(sorted(set(drift["week"].astype(str))), previous, day))]
        for alert, kind in (("FeatureDrift", "dataset"), ("TargetDrift", "target")):
            assert (alert in fired) == bool(week.loc[week["kind"] == kind, "drifted"].fillna(False).any()), (step, value)
        previous = day
    verified = subprocess.run([*cli, "ledger", "verify"], capture_output=True, text=True, timeout=300,
                              env={**{k: v for k, v in __import__("os").environ.items() if not k.startswith("TIME2BET_")},
                                   "TIME2BET_HOME": str(home)})
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_tick_that_adds_a_season_partition_requests_its_runs(tmp_path):
    """The daemon resolves the run requests of a sensor tick against the partitions that tick adds; so does the
    replay (it once failed at the first step after a new season's first file was published)."""
    from time2bet.background import free_port
    from time2bet.cli.simulate import MORNING, Simulation, platform_environment
    from time2bet.source.mirror import ReplayServer
    from time2bet.source.sample_site import DEFAULT_AS_OF, generate_sample_site

    site = tmp_path / "site"
    generate_sample_site(site)
    sim = Simulation(site, tmp_path / "replay", ["E0"])
    with ReplayServer(site, as_of=DEFAULT_AS_OF, port=free_port()) as server, platform_environment(
            {**sim.env, "TIME2BET_SOURCE_URL": server.url}):
        _, defs, instance = sim._dagster()
        instance.add_dynamic_partitions("division", ["E0"])
        instance.add_dynamic_partitions("season", ["2023-24"])   # the platform knew last season only
        requested = sim._tick(defs, instance, "new_season_files_sensor", dt.datetime.combine(DEFAULT_AS_OF, MORNING))
    assert "E0|2024-25" in {key for _, key, _ in requested}
    assert "2024-25" in instance.get_dynamic_partitions("season")


def test_sigterm_stops_the_replay_and_everything_it_started(tmp_path):
    """A replay told to stop (SIGTERM: a container's stop, `kill`) stops within a bound, its replay server and
    Dagster's step processes with it. Dagster turns the signal into a failure of the run under way; the replay
    must not take that for a failed run and go on to its next steps (it did, for the rest of the season)."""
    import os
    import signal
    import threading
    import time

    import psutil

    from time2bet.source.sample_site import generate_sample_site

    site = tmp_path / "site"
    generate_sample_site(site)
    replay = subprocess.Popen(
        [sys.executable, "-m", "time2bet.cli.main", "simulate", "--root", str(site), "--from", "2024-09-01",
         "--to", "2025-05-01", "--divisions", "E0,E1", "--home", str(tmp_path / "replay")],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("TIME2BET_")})
    seen = bytearray()
    reader = threading.Thread(target=lambda: [seen.extend(chunk) for chunk in iter(
        lambda: os.read(replay.stderr.fileno(), 4096), b"")], daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 600
        while b"replay:" not in seen and replay.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)   # the first training done, the steps' progress bar started
        assert replay.poll() is None, seen.decode(errors="replace")[-3000:]
        time.sleep(5)          # inside the first step's runs
        started = psutil.Process(replay.pid).children(recursive=True)
        replay.send_signal(signal.SIGTERM)
        replay.wait(timeout=90)
        assert replay.returncode != 0
        _, alive = psutil.wait_procs(started, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        if replay.poll() is None:
            os.killpg(replay.pid, signal.SIGKILL)
            replay.wait(timeout=30)


def test_the_runs_of_a_tick_run_two_at_a_time_in_run_workers(tmp_path):
    """The runs a tick requests go to run workers, as many at once as the instance's run queue allows (2): each in a
    process of its own, outcomes in the order asked; a worker that dies is an error, not a hang; closed, none is
    left."""
    import os

    import psutil
    import pytest

    from time2bet.background import free_port
    from time2bet.cli.simulate import RunWorkers, Simulation, platform_environment
    from time2bet.source.mirror import ReplayServer
    from time2bet.source.sample_site import DEFAULT_AS_OF, generate_sample_site

    site = tmp_path / "site"
    generate_sample_site(site)
    sim = Simulation(site, tmp_path / "replay", ["E0", "E1"])
    with ReplayServer(site, as_of=DEFAULT_AS_OF, port=free_port()) as server, platform_environment(
            {**sim.env, "TIME2BET_SOURCE_URL": server.url}):
        _, _, instance = sim._dagster()
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 2
        workers = RunWorkers(2, tmp_path / "workers.log", quiet=True)
        try:
            tasks = [("refresh_fixtures", None, {"test/order": str(k)}) for k in range(3)]
            outcomes = workers.run(tasks, dict(os.environ))
            assert [o.success for o in outcomes] == [True] * 3 and not any(o.interrupted for o in outcomes)
            pids = {run.tags["time2bet/pid"] for run in instance.get_runs()}
            assert len(pids) == 2 and str(os.getpid()) not in pids   # two workers, neither of them this process
            # a sensor evaluated as runs end (``more``): what it requests is queued behind what is waiting
            asked = []

            def more():
                asked.append(len(asked))
                return [("refresh_fixtures", None, {"test/order": "added"})] if len(asked) == 2 else []

            ran = workers.drain(tasks[:2], dict(os.environ), more)
            assert [task[2]["test/order"] for task, _ in ran][-1] == "added" and len(ran) == 3
            assert all(outcome.success for _, outcome in ran) and len(asked) == 1 + 3   # before the first, after each
            processes = [psutil.Process(p.pid) for p, _ in workers._workers]
            processes[0].kill()
            with pytest.raises(RuntimeError, match="run worker of the replay died"):
                workers.run(tasks[:2], dict(os.environ))
        finally:
            workers.close()
        _, alive = psutil.wait_procs(processes, timeout=10)
        assert not alive
