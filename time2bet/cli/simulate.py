"""`time2bet simulate`: replay past seasons through the whole loop, on a platform of its own.

A replay server (time2bet.source.mirror) serves the site as it was on the step's date; at each step the platform
does what it would do that day, through Dagster itself on the platform's instance:

1. the shipped ingestion sensors and schedules are *evaluated* (``evaluate_tick``: new_season_files_sensor,
   refresh_current_season and refresh_fixtures_every_6h, which fire once a morning) and the runs they request are
   queued and executed as the daemon's run queue launches them: up to the instance's
   ``run_queue.max_concurrent_runs`` at once (:class:`RunWorkers`); changed_season_files_sensor, which the daemon
   evaluates every minute, is evaluated again each time a run ends, so a division's ingestion starts as soon as its
   observation found its file changed, beside the other divisions' observations (a run key a sensor already
   launched is skipped, as the daemon skips it);
2. the shipped features sensor is evaluated the same way (``features_on_new_data``: ``build_features`` when
   matches were loaded or the fixtures changed since the last build; a week without either skips it), then
   ``train_and_promote`` runs at the first step of each new season (the retraining the platform does at a season
   start; the stopped-by-default ``retrain_when_needed`` adds drift- and quality-triggered retraining), then
   ``predictions_on_new_features`` is evaluated (``predict_upcoming`` when the features or the champion changed
   since the last batch predictions: the coming fixtures predicted into the ledger); every run gets the
   platform's clock (``as_of``), the step's date, by the run tag ``time2bet/as_of``;
3. ``load_prediction_ledger`` for the ledger's day, and ``monitor`` (live quality, drift) for each kickoff week
   that ended since the previous step (from its date to the day before this one): once per week, when its matches
   are all in (a weekly step runs it once; a week still under way is left to the step after its end);
4. the monitoring figures the step's runs exported for Prometheus are recorded; at the end the shipped alert rules
   are evaluated over them (time2bet.monitoring.replay_alerts): the report's ``fired_alerts``.

Nothing here re-implements a sensor, a schedule or an asset: it is their tick evaluation and the jobs, on a clock
that moves. It writes only under its own home (a new temporary directory unless --home), never into the user's
platform: every location is derived from that home (time2bet.cli.sample_platform.env_for_home).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import multiprocessing
import multiprocessing.connection
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pandas as pd

from time2bet.football import season_of

REPORT_COLUMNS = ["step_date", "division", "predicted", "played", "joined", "live_logloss", "market_logloss",
                  "elo_logloss", "feature_drift_share", "target_drift", "target_drift_p_value", "alerts",
                  "fired_alerts"]
MORNING = dt.time(6, 0, tzinfo=dt.UTC)  # the hour the shipped schedules fire (refresh_current_season: 06:00 UTC)
# the morning's ingestion ticks: the schedules and the hourly sensor fire once, and their runs queue; the sensor
# that ingests what the observations found changed (last) is evaluated again each time a run ends
INGESTION_TICKS = ("new_season_files_sensor", "refresh_current_season", "refresh_fixtures_every_6h",
                   "changed_season_files_sensor")
# what a step failure carries when SIGINT/SIGTERM interrupted the run (Dagster's own error, or the interrupt itself)
_INTERRUPTIONS = ("DagsterExecutionInterruptedError", "KeyboardInterrupt")
FEATURES_TICKS = ("features_on_new_data",)   # once the ingestion queue is empty: it reads what those runs materialized
PREDICTIONS_TICK = "predictions_on_new_features"   # after the features (and a season start's training)


@dataclasses.dataclass
class StepResult:
    step_date: dt.date
    runs: int
    failed: list[str]
    trained: bool
    seconds: float


@contextlib.contextmanager
def platform_environment(env: dict[str, str]) -> Iterator[None]:
    """The process environment with ``env`` applied, restored afterwards (Settings and Dagster read it)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    success: bool
    failed_checks: tuple[str, ...]   # names of the asset checks that did not pass
    interrupted: bool                # SIGINT or SIGTERM stopped it (Dagster reports that as a step failure)


# (job, partition key, tags) of a requested run
RunTask = tuple[str, "str | None", dict]


def execute_run(defs, instance, job: str, partition_key: str | None, tags: dict[str, str], quiet: bool) -> RunOutcome:
    """Execute one run of ``job`` in this process, as its run worker would (the replay's and its run workers')."""
    from time2bet.cli.main import QUIET_CONSOLE
    from time2bet_assets.lib.runs import process_tags

    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition_key, raise_on_error=False,
        run_config=QUIET_CONSOLE if not quiet else {"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        tags={**process_tags(), **tags})
    # SIGINT or SIGTERM during the run: Dagster turned it into this step's failure (and maps SIGTERM to SIGINT's
    # handler); with raise_on_error=False the replay would go on to its next step
    interrupted = any(event.is_step_failure and event.step_failure_data.error is not None
                      and event.step_failure_data.error.cls_name in _INTERRUPTIONS for event in result.all_events)
    failed = tuple(check.check_name for check in result.get_asset_check_evaluations() if not check.passed)
    return RunOutcome(result.success, failed, interrupted)


def _dagster():
    """Settings, definitions and instance of the platform the environment names (its DAGSTER_HOME prepared)."""
    import dagster as dg

    from time2bet.cli.main import prepare_dagster_home
    from time2bet.settings import Settings
    from time2bet_assets.definitions import build_definitions

    settings = Settings.from_env()
    prepare_dagster_home(settings)
    return settings, build_definitions(settings), dg.DagsterInstance.get()


class RunWorkers:
    """The runs the ticks request, executed as the daemon's run queue launches them: up to ``size`` at once (the
    instance's ``run_queue.max_concurrent_runs``: 2 in the shipped dagster.yaml), each in a run worker process.

    A morning's ticks request one run per division (observe its current season, then ingest what changed), and
    one after the other in one process they were a third of a replay step in season; two at a time, as the daemon
    runs them, they take two thirds of that (big five, step of 2019-08-29: 14.9 s -> 9.5 s; their DuckDB writes
    wait their turn, as under the daemon). Dagster's own launcher needs a code server and the daemon; these workers
    are plain processes (spawned: a fresh interpreter, nothing inherited but the environment) that load the code
    location once per replay and ``execute_in_process`` what they are sent, as the replay's process does. They die
    with the replay (die_with_parent) and handle no signal of their own: Ctrl-C reaches their process group and
    interrupts their runs, which they report as interrupted."""

    def __init__(self, size: int, log_file: Path | None, quiet: bool):
        self.size, self.log_file, self.quiet = size, log_file, quiet
        self._workers: list[tuple[multiprocessing.Process, multiprocessing.connection.Connection]] = []

    def run(self, tasks: Sequence[RunTask], env: dict[str, str]) -> list[RunOutcome]:
        """Outcomes of ``tasks`` (in their order); each run with ``env`` as its environment."""
        return [outcome for _, outcome in self.drain(list(tasks), env)]

    def drain(self, tasks: list[RunTask], env: dict[str, str],
              more: Callable[[], list[RunTask]] = list) -> list[tuple[RunTask, RunOutcome]]:
        """Run ``tasks`` in their order, and whatever ``more`` returns, asked once before the first and again each
        time a run ends (the daemon evaluating a sensor while the queue runs): every task with its outcome, in the
        order queued, once none is left nor running."""
        waiting = [*tasks, *more()]
        done: list[tuple[RunTask, RunOutcome]] = []
        busy: dict[int, RunTask] = {}   # worker index -> its task

        def launch() -> None:
            if len(waiting) > len(self._workers) - len(busy):
                self._start(min(self.size, len(busy) + len(waiting)))
            for w in range(len(self._workers)):
                if w not in busy and waiting:
                    busy[w] = waiting.pop(0)
                    self._talk(w, "send", (busy[w], env))

        while waiting or busy:
            launch()
            ready = multiprocessing.connection.wait([self._workers[w][1] for w in busy], timeout=1.0)
            for w in list(busy):
                process, conn = self._workers[w]
                if conn in ready:
                    outcome = self._talk(w, "recv")
                    done.append((busy.pop(w), outcome))
                    launch()   # the freed worker takes the next run before the sensor is asked for more
                    waiting += more()
                elif not process.is_alive():
                    self._died(w)
        return done

    def _talk(self, w: int, verb: str, *message):
        """``send`` to or ``recv`` from worker ``w``; its pipe's other end gone is its death."""
        try:
            return getattr(self._workers[w][1], verb)(*message)
        except (EOFError, OSError):
            self._died(w)

    def _died(self, w: int):
        process = self._workers[w][0]
        process.join(timeout=1)
        raise RuntimeError(f"a run worker of the replay died (exit code {process.exitcode}); its run's output is in "
                           f"{self.log_file}")

    def _start(self, wanted: int) -> None:
        context = multiprocessing.get_context("spawn")
        while len(self._workers) < wanted:
            mine, theirs = context.Pipe()
            process = context.Process(target=_run_worker, args=(theirs, os.getpid(), self.log_file, self.quiet),
                                      name=f"replay-run-worker-{len(self._workers)}", daemon=True)
            process.start()
            theirs.close()
            self._workers.append((process, mine))

    def close(self) -> None:
        """Stop the workers: asked to end, killed if one has not within a few seconds (or is in a run)."""
        for _, conn in self._workers:
            with contextlib.suppress(OSError):
                conn.send(None)
        for process, conn in self._workers:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
            conn.close()
        self._workers.clear()


def _run_worker(conn, parent_pid: int, log_file: Path | None, quiet: bool) -> None:
    """A run worker's loop: (task, environment) in, RunOutcome out, until None (or the end of the pipe)."""
    from time2bet.background import die_with_parent

    die_with_parent(parent_pid)
    loaded_for, defs, instance = None, None, None
    try:
        with _quiet_logs(quiet, log_file):
            while (message := conn.recv()) is not None:
                (job, partition_key, tags), env = message
                with platform_environment(env):
                    if env != loaded_for:   # the code location, loaded again only when the environment changes
                        _, defs, instance = _dagster()
                        loaded_for = env
                    conn.send(execute_run(defs, instance, job, partition_key, tags, quiet))
    except (EOFError, KeyboardInterrupt):   # the replay is gone, or Ctrl-C between runs
        pass


def _needed(defs, automation) -> dict:
    """The resources a sensor or schedule asks for, as the daemon gives them: not every resource of the code
    location (dagster-mlflow's ``mlflow`` can only be built inside a run)."""
    return {key: value for key, value in defs.resources.items() if key in automation.required_resource_keys}


class Simulation:
    """One replay: ``home`` (created if missing), the site ``root``, the divisions; ``run()`` steps the clock."""

    def __init__(self, root: Path, home: Path, divisions: list[str] | None, *, quiet: bool = True):
        from time2bet.cli.sample_platform import env_for_home
        from time2bet.monitoring.replay_alerts import MetricSeries

        self.root, self.home = Path(root), Path(home)
        self.env = env_for_home(self.home)
        if divisions:
            self.env["TIME2BET_DIVISIONS"] = ",".join(divisions)
        self.quiet = quiet
        self.launched: dict[str, set[str]] = {}   # sensor name -> run keys launched (the daemon's dedup)
        self.cursors: dict[str, str | None] = {}
        self.failed_checks: list[str] = []
        self.log_file = self.home / "logs" / "simulate.log"   # the tools' own output, off the console
        self.series = MetricSeries()   # the exported monitoring figures after each step
        self.workers: RunWorkers | None = None   # made by start(), with the instance's run queue size

    def close(self) -> None:
        """Stop the run workers (the replay's end, or its interruption)."""
        if self.workers is not None:
            self.workers.close()

    # --- Dagster plumbing ---------------------------------------------------------------------------------

    def _dagster(self):
        return _dagster()

    def _execute(self, defs, instance, job: str, *, partition_key: str | None = None,
                 tags: dict[str, str] | None = None) -> bool:
        return self._outcome(job, execute_run(defs, instance, job, partition_key, tags or {}, self.quiet))

    def _run_queue(self, defs, instance, tasks: list[RunTask], more: Callable[[], list[RunTask]] = list
                   ) -> list[tuple[RunTask, bool]]:
        """Run ``tasks`` and what ``more`` adds as they end (RunWorkers.drain): on the workers, or one after the
        other in this process when there are none; each task with its success."""
        if self.workers is not None:
            ran = self.workers.drain(tasks, dict(os.environ), more)
            return [(task, self._outcome(task[0], outcome)) for task, outcome in ran]
        waiting, ran = [*tasks, *more()], []
        while waiting:
            job, key, tags = task = waiting.pop(0)
            ran.append((task, self._execute(defs, instance, job, partition_key=key, tags=tags)))
            waiting += more()
        return ran

    def _outcome(self, job: str, outcome: RunOutcome) -> bool:
        if outcome.interrupted:
            raise KeyboardInterrupt(f"interrupted during the {job} run")
        self.failed_checks.extend(outcome.failed_checks)
        return outcome.success

    def _tick(self, defs, instance, name: str, when: dt.datetime) -> list[tuple[str, str | None, dict]]:
        """Evaluate the shipped sensor or schedule ``name`` at ``when``: (job, partition key, tags) of every run it
        requests that its daemon would launch. Dynamic partitions it requests are added; its cursor is kept."""
        import dagster as dg

        repository = defs.get_repository_def()
        if repository.has_sensor_def(name):
            sensor = repository.get_sensor_def(name)
            # instance_ref as the daemon gives it: with it, run requests for partitions the same tick adds resolve
            # (the sensor's context then has a dynamic-partitions loader that applies the tick's add requests)
            context = dg.build_sensor_context(instance=instance, instance_ref=instance.get_ref(),
                                              cursor=self.cursors.get(name), sensor_name=name,
                                              resources=_needed(defs, sensor), definitions=defs,
                                              last_sensor_start_time=when.timestamp())
            with dg.partition_loading_context(dynamic_partitions_store=instance):   # as the daemon evaluates it
                data = sensor.evaluate_tick(context)
            if data.cursor is not None:
                self.cursors[name] = data.cursor
            for request in data.dynamic_partitions_requests or []:
                if isinstance(request, dg.AddDynamicPartitionsRequest):
                    instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
            default_job = sensor.job_name
        else:
            schedule = repository.get_schedule_def(name)
            with dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                           resources=_needed(defs, schedule), repository_def=repository) as context, \
                    dg.partition_loading_context(dynamic_partitions_store=instance):
                data = schedule.evaluate_tick(context)
            default_job = schedule.job_name
        launched = self.launched.setdefault(name, set())
        requests = []
        for request in data.run_requests or []:
            if request.run_key is not None and request.run_key in launched:
                continue
            if request.run_key is not None:
                launched.add(request.run_key)
            requests.append((request.job_name or default_job, request.partition_key, dict(request.tags)))
        return requests

    # --- the loop ------------------------------------------------------------------------------------------

    def start(self, first: dt.date, port: int, progress: Callable[[str], None] = lambda _: None) -> None:
        """The platform as of ``first``: everything published then, ingested and trained on (the first training)."""
        from time2bet.cli.main import run_ingest
        from time2bet.source.mirror import ReplayServer

        with ReplayServer(self.root, as_of=first, port=port) as server, platform_environment(
                {**self.env, "TIME2BET_SOURCE_URL": server.url}):
            progress(f"ingesting everything published before {first}")
            with _quiet_logs(self.quiet, self.log_file):
                settings, defs, instance = self._dagster()
                queue = instance.get_concurrency_config().run_queue_config
                if queue is not None and queue.max_concurrent_runs > 1:   # else one at a time, in this process
                    self.workers = RunWorkers(queue.max_concurrent_runs, self.log_file, self.quiet)
                if not run_ingest(settings, None, None, True):
                    raise RuntimeError("the initial ingestion failed: see the Dagster UI of the replay's home")
            progress("building features and training the first champion")
            tags = {_as_of_tag(): first.isoformat()}
            with _quiet_logs(self.quiet, self.log_file):
                for job in ("build_features", "train_and_promote"):
                    if not self._execute(defs, instance, job, tags=tags):
                        raise RuntimeError(f"the initial {job} run failed: see the Dagster UI of the replay's home")
                self._monitor(defs, instance, first, first)

    def step(self, day: dt.date, previous: dt.date, port: int) -> StepResult:
        """One step: the site as of ``day``; the shipped ticks and jobs (see the module's docstring)."""
        from time2bet.source.mirror import ReplayServer

        started = time.perf_counter()
        failed: list[str] = []
        runs = 0
        with ReplayServer(self.root, as_of=day, port=port) as server, platform_environment(
                {**self.env, "TIME2BET_SOURCE_URL": server.url}), _quiet_logs(self.quiet, self.log_file):
            _, defs, instance = self._dagster()
            when = dt.datetime.combine(day, MORNING)
            tags = {_as_of_tag(): day.isoformat()}
            origin: dict[int, str] = {}   # id of a requested task -> the tick that requested it

            def requested(name: str | None) -> list[RunTask]:
                if name is None:
                    return []
                tasks = [(job, key, {**asked, **tags}) for job, key, asked in self._tick(defs, instance, name, when)]
                origin.update((id(task), name) for task in tasks)
                return tasks

            # the ingestion's runs, then (the queue empty) the features sensor's
            for scheduled, reacting in ((INGESTION_TICKS[:-1], INGESTION_TICKS[-1]), (FEATURES_TICKS, None)):
                queued = [task for name in scheduled for task in requested(name)]
                ran = self._run_queue(defs, instance, queued, lambda name=reacting: requested(name))
                runs += len(ran)
                failed += [f"{origin[id(task)]}:{task[0]}:{task[1]}" for task, ok in ran if not ok]
            new_season = season_of(day) != season_of(previous)
            if new_season:
                runs += 1
                if not self._execute(defs, instance, "train_and_promote", tags=tags):
                    failed.append("train_and_promote")
            ran = self._run_queue(defs, instance, requested(PREDICTIONS_TICK))
            runs += len(ran)
            failed += [f"{PREDICTIONS_TICK}:{task[0]}" for task, ok in ran if not ok]
            runs += self._monitor(defs, instance, previous, day)
        self.series.record(day.isoformat(), self.env["TIME2BET_HOME"])
        return StepResult(day, runs, failed, new_season, time.perf_counter() - started)

    def fired_alerts(self) -> dict[str, str]:
        """Step date -> the shipped alert rules firing over the recorded figures at its end, ``;``-separated
        (time2bet.monitoring.replay_alerts; which alerts can fire in a replay is said there). Without promtool,
        each step says so instead."""
        from time2bet.monitoring.replay_alerts import fired_alerts

        try:
            fired = fired_alerts(self.series)
        except FileNotFoundError as exc:
            return dict.fromkeys(self.series.steps, f"unavailable: {exc}")
        return {step: ";".join(names) for step, names in zip(self.series.steps, fired, strict=True)}

    def _monitor(self, defs, instance, since: dt.date, day: dt.date) -> int:
        """load_prediction_ledger for today's ledger segments, then monitor for every kickoff week that ended in
        [since, day) (see the module's docstring)."""
        from time2bet_assets.defs.monitoring.partitions import kickoff_weeks

        today = dt.datetime.now(dt.UTC).date()   # segments are filed by the wall clock's day
        runs = 1
        self._execute(defs, instance, "load_prediction_ledger", partition_key=today.isoformat())
        keys = ended_weeks(kickoff_weeks.get_partition_keys(), since, day)
        for key in keys:
            runs += 1
            self._execute(defs, instance, "monitor", partition_key=key)
        return runs


def report_rows(warehouse_url: str, previous: dt.date, day: dt.date, divisions: list[str],
                alerts: list[str]) -> list[dict]:
    """The report's rows of one step, one per division, from the platform's own tables: predictions the ledger
    holds with ``as_of`` in (previous, day]; matches played in [previous, day); and, for the kickoff weeks that
    ended within the step, live quality of the champion variant (``monitoring.live_quality``, window 'week';
    log-losses combined over weeks weighted by their match counts) and drift (``monitoring.drift``)."""
    from time2bet.monitoring import store
    from time2bet.monitoring.live_quality import pooled
    from time2bet.warehouse.client import Warehouse

    wh = Warehouse.from_url(warehouse_url)
    ledger = (wh.read_sql(f"SELECT division, count(*) AS n FROM {store.LEDGER_TABLE} WHERE as_of > TIMESTAMP "
                          f"'{previous} 00:00:00' AND as_of <= TIMESTAMP '{day} 23:59:59' AND variant = 'champion' "
                          "GROUP BY division") if store.table_exists(wh, store.LEDGER_TABLE)
              else pd.DataFrame(columns=["division", "n"]))
    played = wh.read_sql("SELECT division, count(*) AS n FROM analytics.stg_matches WHERE match_date >= DATE "
                         f"'{previous}' AND match_date < DATE '{day}' GROUP BY division")
    first_week, last_week = previous - dt.timedelta(days=6), day - dt.timedelta(days=7)   # ended in [previous, day)
    quality = (wh.read_sql(f"SELECT * FROM {store.LIVE_QUALITY_TABLE} WHERE \"window\" = 'week' AND "
                           f"variant = 'champion' AND week >= DATE '{first_week}' AND week <= DATE '{last_week}'")
               if store.table_exists(wh, store.LIVE_QUALITY_TABLE) else pd.DataFrame())
    drift = (wh.read_sql(f"SELECT * FROM {store.DRIFT_TABLE} WHERE week >= DATE '{first_week}' AND "
                         f"week <= DATE '{last_week}'") if store.table_exists(wh, store.DRIFT_TABLE) else pd.DataFrame())
    share = drift.loc[drift["kind"] == "dataset", "statistic"].mean() if len(drift) else float("nan")
    target = drift[drift["kind"] == "target"] if len(drift) else pd.DataFrame(columns=["drifted", "statistic"])
    rows = []
    for division in divisions:
        q = quality[quality["division"] == division] if len(quality) else pd.DataFrame()
        rows.append({
            "step_date": day.isoformat(), "division": division,
            "predicted": int(ledger.loc[ledger["division"] == division, "n"].sum()),
            "played": int(played.loc[played["division"] == division, "n"].sum()),
            "joined": int(q["n"].sum()) if len(q) else 0,
            "live_logloss": pooled(q, "log_loss", "n")[0],
            "market_logloss": pooled(q, "market_log_loss", "n_with_odds")[0],
            "elo_logloss": pooled(q, "elo_log_loss", "n_elo")[0], "feature_drift_share": share,
            "target_drift": bool(target["drifted"].fillna(False).any()) if len(target) else False,
            "target_drift_p_value": float(target["statistic"].min()) if len(target) else float("nan"),
            "alerts": ";".join(sorted(set(alerts))),
        })
    return rows


def _as_of_tag() -> str:
    """The run tag carrying the platform clock (imported late: this module loads Dagster only when it runs)."""
    from time2bet_assets.lib.ledger import AS_OF_TAG

    return AS_OF_TAG


def ended_weeks(keys: list[str], since: dt.date, day: dt.date) -> list[str]:
    """The weekly partition keys (Mondays) of the weeks whose last day (Sunday) is in [since, day)."""
    return [k for k in keys if since <= dt.date.fromisoformat(k) + dt.timedelta(days=6) < day]


@contextlib.contextmanager
def _quiet_logs(quiet: bool, log_file: Path | None = None, *, keep_warnings: bool = False) -> Iterator[None]:
    """Dagster's, dbt's and MLflow's chatter off the console: into ``log_file`` (the Dagster UI keeps every run's
    logs too), warnings included. The progress bar keeps the stream it was given."""
    if not quiet:
        yield
        return
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a", encoding="utf-8") as sink, contextlib.redirect_stdout(sink), \
                contextlib.redirect_stderr(sink), _quiet_logs(quiet, keep_warnings=True):
            yield
        return
    names = ("dagster", "dagster_dbt", "mlflow", "alembic", "urllib3", "great_expectations",
             *(() if keep_warnings else ("py.warnings",)))
    loggers = [logging.getLogger(n) for n in names]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    import warnings
    with warnings.catch_warnings():
        if not keep_warnings:   # else they go to stderr, which is the log file
            warnings.simplefilter("ignore")
        try:
            yield
        finally:
            for lg, (level, propagate) in zip(loggers, saved, strict=True):
                lg.setLevel(level)
                lg.propagate = propagate


def step_dates(first: dt.date, last: dt.date, step_days: int) -> list[dt.date]:
    """The steps after ``first`` up to ``last`` (``last`` always included)."""
    if last <= first:
        raise ValueError(f"--to {last} is not after --from {first}")
    days = [first + dt.timedelta(days=step_days * k) for k in range(1, (last - first).days // step_days + 1)]
    return days if days and days[-1] == last else [*days, last]


def parse_step(text: str) -> int:
    """'7d' / '7' -> 7 days; '2w' -> 14."""
    text = text.strip().lower()
    unit = 7 if text.endswith("w") else 1
    number = int(text.rstrip("dw"))
    if number < 1:
        raise ValueError(f"a step of {text!r} does not move the clock")
    return number * unit


def default_home() -> Path:
    return Path(tempfile.mkdtemp(prefix="time2bet-simulate-"))


__all__ = ["REPORT_COLUMNS", "RunOutcome", "RunWorkers", "Simulation", "StepResult", "default_home", "execute_run",
           "parse_step", "step_dates"]
