"""The ``time2bet`` command line: the operations of the platform as commands.

    time2bet sample-site DIR               write a small generated site in football-data.co.uk layout
    time2bet mirror serve --root DIR       replay a site directory over HTTP on 127.0.0.1
    time2bet ingest                        backfill season files (+ fixtures) through the Dagster assets
    time2bet train [--family F]            validate, build features, train, register, gate, predict fixtures
    time2bet promote VERSION / rollback    move the `champion` alias (logged in the registry, reversible)
    time2bet why                           why the champion is champion, from the registry
    time2bet status                        where the data is and what it holds
    time2bet serve [--port 3000]           the forecast API (BentoML) on 127.0.0.1, following the champion
    time2bet ui [--port 8501]              a Streamlit page on the forecast API: two teams -> probabilities
    time2bet demo                          the quickstart: sample site -> mirror -> ingest -> train -> replay -> service + Dagster UI
    time2bet ledger verify / anchor        check the prediction ledger's hash chains; record their heads
    time2bet config show [--env E] [k=v]   the resolved configuration of an environment (conf/), secrets masked
    time2bet stack up/status/run/down      a production-shaped stack of real processes (PostgreSQL, S3, MLflow server,
                                           Dagster + Celery workers, multi-worker service, Prometheus)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

from time2bet.background import REPO_ROOT
from time2bet.football import DIVISIONS, season_start_year
from time2bet.serving_contract import FAMILIES
from time2bet.settings import Settings

# Dagster's console logger at INFO: the progress bar and our summaries stay readable; DEBUG is in the UI.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def prepare_dagster_home(settings: Settings) -> Path:
    """Point DAGSTER_HOME at the platform's instance directory and give it the right dagster.yaml:
    PostgreSQL storage when DAGSTER_PG_HOST is set, SQLite otherwise. Then mark failed the runs that a killed
    process left STARTED, before the caller launches new ones."""
    import dagster as dg

    from time2bet_assets.lib.runs import fail_orphaned_runs

    home = settings.dagster_home
    os.environ["DAGSTER_HOME"] = str(home)   # Dagster reads its instance location from the environment
    # One "planned" event per asset for a single-run backfill instead of one per partition: halves Dagster's
    # bookkeeping for a backfill of hundreds of season files (docs/adr/0001). The cost: partitions of a run
    # that crashes are not marked failed; our per-file failures are reported by the asset checks anyway.
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
    home.mkdir(parents=True, exist_ok=True)
    template = "deploy/dagster/dagster.postgres.yaml" if settings.dagster_postgres else "dagster.yaml"
    source = REPO_ROOT / template
    target = home / "dagster.yaml"
    if source.exists() and (not target.exists() or target.read_text() != source.read_text()):
        shutil.copyfile(source, target)
    # Dagster's run monitoring does not catch these (time2bet_assets/lib/runs.py says why); left STARTED they would
    # show as running for ever and hold places in the run queue.
    with dg.DagsterInstance.get() as instance:
        for run_id in fail_orphaned_runs(instance):
            click.echo(f"run {run_id} was left STARTED by a process that is gone: marked failed", err=True)
    return home


def _parse_seasons(spec: str | None) -> tuple[str, str] | None:
    """``2019-20:2020-21`` or ``2019-20`` -> (first, last)."""
    if not spec:
        return None
    first, _, last = spec.partition(":")
    return first, last or first


@click.group()
def main() -> None:
    """Time2Bet: football match-outcome forecasting platform."""


@main.command("sample-site")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=7, show_default=True)
def sample_site(dest: Path, seed: int) -> None:
    """Write a small, deterministic site in football-data.co.uk layout to DEST."""
    from time2bet.source.sample_site import DEFAULT_AS_OF, generate_sample_site

    summary = generate_sample_site(dest, seed=seed)
    click.echo(f"wrote {summary} to {dest}; replay it as of {DEFAULT_AS_OF} to get upcoming fixtures")


@main.group()
def mirror() -> None:
    """Replay server for a site directory."""


@mirror.command("serve")
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None, help="serve the site as it was on this date")
@click.option("--port", default=8088, show_default=True)
@click.option("--encoding", default="utf-8", show_default=True, help="utf-8, or latin-1 like the live site")
@click.option("--fault", "faults", multiple=True, help="inject a fault: PATTERN=KIND[xN], e.g. 'mmz4281/*/E0.csv=http_500x2'")
def mirror_serve(root: Path, as_of, port: int, encoding: str, faults: tuple[str, ...]) -> None:
    """Serve ROOT on 127.0.0.1 like football-data.co.uk (index pages, season files, fixtures, robots.txt)."""
    from time2bet.source.mirror import run_mirror

    run_mirror(root, as_of=as_of.date() if as_of else None, port=port, encoding=encoding, faults=list(faults))


@main.command()
@click.option("--divisions", help="comma-separated division codes (default: TIME2BET_DIVISIONS)")
@click.option("--seasons", help="FIRST[:LAST] season labels, e.g. 2015-16:2020-21 (default: all published)")
@click.option("--fixtures/--no-fixtures", default=True, show_default=True)
@click.option("--accept-rewrite", "accept_rewrite", multiple=True, metavar="'DIV|SEASON'",
              help="load this partition's new file even though it drops or changes loaded matches (a quarantined "
                   "correction); recorded in the run's config and metadata. Repeatable.")
def ingest(divisions: str | None, seasons: str | None, fixtures: bool, accept_rewrite: tuple[str, ...]) -> None:
    """Backfill season files (and refresh fixtures) through the Dagster ingestion assets."""
    ok = run_ingest(Settings.from_env(), divisions, seasons, fixtures, accept_rewrite=accept_rewrite)
    sys.exit(0 if ok else 1)


def run_ingest(settings: Settings, divisions: str | None, seasons: str | None, fixtures: bool, *,
               accept_rewrite: tuple[str, ...] = ()) -> bool:
    """Discover what the source publishes, then run single-run backfills; True when every run succeeded."""
    import dagster as dg
    from tqdm import tqdm

    from time2bet.ingestion.discovery import discover_season_files
    from time2bet_assets.definitions import build_definitions
    from time2bet_assets.defs.ingestion.backfill import run_season_file_backfill
    from time2bet_assets.lib.runs import process_tags

    for key in accept_rewrite:
        division, _, season = key.partition("|")
        if division not in DIVISIONS or not season:
            raise click.BadParameter(f"{key!r}: expected 'DIVISION|SEASON', e.g. 'F1|2018-19'", param_hint="--accept-rewrite")
    prepare_dagster_home(settings)
    wanted_divisions = [d.strip() for d in divisions.split(",")] if divisions else list(settings.divisions)
    unknown = [d for d in wanted_divisions if d not in DIVISIONS]
    if unknown:
        raise click.BadParameter(f"unknown divisions {unknown}; known: {', '.join(DIVISIONS)}")
    links = discover_season_files(settings.source_url, timeout_s=settings.crawl_timeout_s)
    window = _parse_seasons(seasons)
    first = season_start_year(window[0] if window else settings.first_season)
    last = season_start_year(window[1]) if window else 9999
    published = {(l.division, l.season) for l in links}
    season_list = sorted({s for d, s in published if d in wanted_divisions and first <= season_start_year(s) <= last},
                         key=season_start_year)
    division_list = [d for d in wanted_divisions if any(pd == d for pd, _ in published)]
    click.echo(f"source {settings.source_url}: {len(links)} season files published; "
               f"ingesting {len(division_list)} division(s) x {len(season_list)} season(s)")
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.get()
    all_ok = True
    with tqdm(total=len(division_list) * len(season_list), unit="partition", desc="season files") as bar:

        def observed(changed):
            bar.write(f"observed the source: {len(changed)} of {bar.total} season file(s) changed since loaded")
            bar.total = len(changed)
            bar.refresh()

        def done(keys, result):
            nonlocal all_ok
            all_ok &= result.success
            bar.update(len(keys))
            if not result.success:
                bar.write(f"run {result.run_id} for {keys[0]}...{keys[-1]} failed; see the Dagster UI")

        run_config = {**QUIET_CONSOLE, "ops": {"raw_matches": {"config": {"accept_rewrite": list(accept_rewrite)}}}}
        results = run_season_file_backfill(defs, instance, division_list, season_list, on_range_done=done,
                                           run_config=run_config, on_observed=observed)
        for result in results:
            if not result.success and result.job_def.name == "observe_season_files":
                all_ok = False
                bar.write(f"observation run {result.run_id} failed (the crawl could not run); see the Dagster UI")
    if fixtures:
        result = defs.resolve_job_def("refresh_fixtures").execute_in_process(
            instance=instance, raise_on_error=False, run_config=QUIET_CONSOLE, tags=process_tags()
        )
        all_ok &= result.success
        if not result.success:
            click.echo(f"fixtures run {result.run_id} failed; see the Dagster UI")
    print_status(settings)
    return all_ok


def print_status(settings: Settings) -> None:
    from time2bet.warehouse.client import Warehouse

    wh = Warehouse.from_url(settings.warehouse_url)
    wh.ensure_raw_tables()
    summary = wh.read_sql(
        "SELECT count(*) AS matches, count(DISTINCT division || season) AS partitions, "
        "CAST(min(match_date) AS VARCHAR) AS first_match, CAST(max(match_date) AS VARCHAR) AS last_match "
        "FROM raw.matches"
    )
    fixtures = wh.read_sql("SELECT count(*) AS n FROM raw.fixtures")["n"].iloc[0]
    row = summary.iloc[0]
    click.echo(
        f"warehouse {settings.warehouse_url.split('@')[-1]}: raw.matches {row['matches']} matches in "
        f"{row['partitions']} division-seasons ({row['first_match']} .. {row['last_match']}); "
        f"raw.fixtures {fixtures} upcoming\nraw zone {settings.raw_zone}\n"
        f"Dagster instance {settings.dagster_home}"
    )


def run_training(settings: Settings, family: str | None = None) -> bool:
    """build_features then train_and_promote, the platform's own jobs, in-process on the instance; ``family``: the
    model family to train (None: the configured one, settings.model_family)."""
    import dagster as dg

    from time2bet_assets.definitions import build_definitions
    from time2bet_assets.lib.runs import process_tags

    prepare_dagster_home(settings)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.get()
    for job in ("build_features", "train_and_promote"):
        click.echo(f"running {job} ...")
        run_config = QUIET_CONSOLE if job != "train_and_promote" or family is None else \
            {**QUIET_CONSOLE, "ops": {"candidate_model": {"config": {"family": family}}}}
        result = defs.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False,
                                                              run_config=run_config, tags=process_tags())
        if not result.success:
            click.echo(f"{job} run {result.run_id} failed; see the Dagster UI", err=True)
            return False
        if job == "train_and_promote":
            gate = result.asset_materializations_for_node("registered_model")[0].metadata["gate"].value
            click.echo(gate.replace("\n\n", "\n").split("\n")[0])
    click.echo(f"MLflow UI: mlflow ui --backend-store-uri {settings.mlflow_tracking_uri} --port 5000")
    return True


@main.command()
@click.option("--division", type=click.Choice(sorted(DIVISIONS)), default=None,
              help="train that division's own model instead (on the features built by a plain `time2bet train`), "
                   "registered as its route's model (TIME2BET_ROUTES), else <model name>_<division>, and gated")
@click.option("--family", type=click.Choice(FAMILIES), default=None,
              help="the model family to train (default: the configured one, TIME2BET_MODEL_FAMILY, whose best holds "
                   "`champion`): independent reads no odds, market-aware also the market-implied ratings of earlier "
                   "matches' odds; another family than the configured one is gated against its own champion only")
def train(division: str | None, family: str | None) -> None:
    """Validate raw data, build features (dbt), train and log a candidate, register it, gate it, predict."""
    settings = Settings.from_env()
    if division is not None:
        if family is not None:
            raise click.UsageError("--family trains the pooled model; a division's model is of the independent family")
        sys.exit(0 if run_division_training(settings, division) else 1)
    sys.exit(0 if run_training(settings, family) else 1)


def run_division_training(settings: Settings, division: str) -> bool:
    """One division's model (time2bet.ml.routes.train_division_model) on the warehouse's fct_match_features."""
    from time2bet.ml.routes import route_model_name, train_division_model
    from time2bet.warehouse.client import Warehouse
    from time2bet_assets.defs.ml.assets import PLAYED_MATCHES_SQL, _dataset_version

    frame = Warehouse.from_url(settings.warehouse_url).read_sql(PLAYED_MATCHES_SQL)
    name = settings.model_for(division)
    name = route_model_name(division, settings.model_name) if name == settings.model_name else name
    gate = dict(settings.gate_policy or {})
    outcome = train_division_model(frame, division, name, tracking_uri=settings.mlflow_tracking_uri,
                                   data_version=_dataset_version(frame), artifact_location=settings.mlflow_artifacts,
                                   n_folds=int(gate.get("n_folds", 3)), hyperparameters=settings.hyperparameters,
                                   gate_policy=gate)
    click.echo(f"{division}: {name} v{outcome.version} {'promoted' if outcome.promoted else 'not promoted'}")
    click.echo(outcome.described.split("\n")[0])
    return True


@main.command()
@click.argument("version")
@click.option("--reason", required=True, help="why, for the registry's audit trail")
def promote(version: str, reason: str) -> None:
    """Make VERSION the champion by hand (recorded, reversible with `time2bet rollback`)."""
    from time2bet.ml.registry import promote as promote_version

    settings = Settings.from_env()
    previous = promote_version(settings.model_name, version, reason, tracking_uri=settings.mlflow_tracking_uri)
    click.echo(f"{settings.model_name} v{version} is champion (was v{previous})")


@main.command()
@click.option("--reason", default="manual rollback", show_default=True)
def rollback(reason: str) -> None:
    """Give `champion` back to the version the current champion replaced."""
    from time2bet.ml.registry import rollback as rollback_champion

    settings = Settings.from_env()
    try:
        version = rollback_champion(settings.model_name, reason, tracking_uri=settings.mlflow_tracking_uri)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{settings.model_name} champion rolled back to v{version}")


@main.command()
def why() -> None:
    """Why is the champion the champion? The gate it passed, against which champion, on which window."""
    from time2bet.ml.registry import describe_champion

    try:
        settings = Settings.from_env()
        click.echo(str(describe_champion(settings.model_name, tracking_uri=settings.mlflow_tracking_uri)))
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
def status() -> None:
    """Where the data is and what the warehouse holds."""
    print_status(Settings.from_env())


@main.command()
@click.option("--port", default=3000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def serve(port: int, host: str) -> None:
    """Serve match-outcome forecasts over HTTP (bento_service): the registry's champion, hot-swapped when the
    alias moves (TIME2BET_MODEL_POLL_S, default 30), A/B with the challenger (TIME2BET_CHALLENGER_SHARE)."""
    from time2bet.cli.demo import service_command, service_env

    # the platform's locations, explicit, so the service reads the same warehouse and registry as the CLI
    env = service_env(Settings.from_env())
    click.echo(f"forecast API: http://{host}:{port}  (docs at /docs, Ctrl-C to stop)")
    # become the server (same pid): a SIGTERM or Ctrl-C to `time2bet serve` reaches BentoML, which stops its
    # workers; a parent waiting on a child would die alone and leave the server running
    sys.stdout.flush()
    sys.stderr.flush()
    command = service_command(host, port)
    os.chdir(REPO_ROOT)
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        raise click.ClickException(f"cannot start {command[0]}: {exc}") from exc


def streamlit_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """`streamlit run ui/streamlit_app.py`, headless, on HOST:PORT, never phoning home (no usage statistics)."""
    return [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "ui" / "streamlit_app.py"),
            "--server.headless", "true", "--server.address", host, "--server.port", str(port),
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--client.toolbarMode", "minimal"]


@main.command("ui")
@click.option("--service-url", default=lambda: Settings.from_env().service_url,
              show_default="TIME2BET_SERVICE_URL or http://127.0.0.1:3000", help="base URL of `time2bet serve`")
@click.option("--port", default=8501, show_default=True)
def ui_command(service_url: str, port: int) -> None:
    """A Streamlit page on the forecast API (ui/streamlit_app.py): pick two teams and see the probabilities,
    browse the upcoming matches with their predictions. Needs `time2bet serve` running."""
    env = dict(os.environ, TIME2BET_SERVICE_URL=service_url)
    click.echo(f"forecast page: http://127.0.0.1:{port}  (service {service_url}; Ctrl-C to stop)")
    try:
        sys.exit(subprocess.run(streamlit_command(port), env=env, cwd=REPO_ROOT, check=False).returncode)
    except KeyboardInterrupt:
        sys.exit(130)


@main.command()
@click.option("--ui/--no-ui", default=True, show_default=True, help="start the Dagster UI afterwards")
@click.option("--port", default=8088, show_default=True, help="port of the replayed sample site")
@click.option("--ui-port", default=3000, show_default=True)
@click.option("--serve/--no-serve", default=True, show_default=True,
              help="start the forecast service on the champion afterwards and print a sample prediction")
@click.option("--serve-port", default=3001, show_default=True)
@click.option("--replay-steps", default=2, show_default=True,
              help="fortnightly steps replayed after the first training, as `time2bet simulate` runs them (0: none)")
@click.option("--exit", "exit_after", is_flag=True,
              help="stop everything after the sample prediction instead of running until Ctrl-C")
def demo(ui: bool, port: int, ui_port: int, serve: bool, serve_port: int, replay_steps: int,
         exit_after: bool) -> None:
    """Quickstart on embedded defaults, offline: generate a sample site, replay it on 127.0.0.1 as of a date
    inside its last season, ingest it, build features, train and promote a champion, then replay a few weeks
    through the whole loop (ledger, live quality, drift), start the forecast service on the champion and the
    Dagster UI, print a sample prediction and the URLs to try, and keep both running until Ctrl-C. The tools'
    own output goes to $TIME2BET_HOME/logs/."""
    from time2bet.cli.demo import run_after_training, train_and_replay
    from time2bet.source.mirror import ReplayServer
    from time2bet.source.sample_site import generate_sample_site

    settings = Settings.from_env()
    site = settings.home / "sample-site"
    summary = generate_sample_site(site)
    click.echo(f"sample site {site}: {len(summary['files'])} season files, {summary['matches']} matches "
               f"({summary['date_range'][0]} .. {summary['date_range'][1]}), replayed on http://127.0.0.1:{port}")
    clock, env = train_and_replay(settings, site, port, steps=replay_steps)
    # the replay server stays up meanwhile, as of the platform's date: the Dagster UI can re-crawl the sample site
    with ReplayServer(site, as_of=clock, port=port) as server:
        run_after_training(settings, serve=serve, serve_port=serve_port, ui=ui, ui_port=ui_port,
                           wait=not exit_after, env={**os.environ, **env, "TIME2BET_SOURCE_URL": server.url})


@main.command()
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="a site in football-data.co.uk's layout (e.g. ../shared/data/football-data)")
@click.option("--from", "first", required=True, type=click.DateTime(["%Y-%m-%d"]), help="the first step's date")
@click.option("--to", "last", required=True, type=click.DateTime(["%Y-%m-%d"]), help="the last step's date")
@click.option("--step", default="7d", show_default=True, help="clock step: Nd or Nw")
@click.option("--divisions", help="comma-separated division codes (default: TIME2BET_DIVISIONS)")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path),
              help="the replay's platform home (default: a new temporary directory; never your platform)")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="write the report as CSV here")
@click.option("--port", default=0, show_default=True, help="the replay server's port (0: any free one)")
@click.option("--verbose", is_flag=True, help="Dagster's logs on the console too (they are always in its UI)")
def simulate(root: Path, first, last, step: str, divisions: str | None, home: Path | None, report: Path | None,
             port: int, verbose: bool) -> None:
    """Replay past seasons through the whole loop: ingest, features, predictions into the ledger, results, live
    quality, drift and retraining at season starts, step by step (time2bet/cli/simulate.py)."""
    import pandas as pd
    from tqdm import tqdm

    from time2bet.background import free_port
    from time2bet.cli.simulate import REPORT_COLUMNS, Simulation, default_home, parse_step, report_rows, step_dates

    try:
        days = step_dates(first.date(), last.date(), parse_step(step))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    wanted = [d.strip() for d in divisions.split(",")] if divisions else list(Settings.from_env().divisions)
    home = (home or default_home()).absolute()
    sim = Simulation(root, home, wanted, quiet=not verbose)
    port = port or free_port()
    click.echo(f"replaying {root} from {first:%Y-%m-%d} to {last:%Y-%m-%d} in {len(days)} steps; platform home {home}")
    started = time.perf_counter()
    rows, previous = [], first.date()
    try:
        sim.start(first.date(), port, progress=lambda text: click.echo(f"  {text}"))
        with tqdm(days, unit="step", desc="replay") as bar:
            for day in bar:
                sim.failed_checks.clear()
                result = sim.step(day, previous, port)
                rows += report_rows(sim.env["TIME2BET_WAREHOUSE_URL"], previous, day, wanted, sim.failed_checks)
                bar.set_postfix_str(f"{day} {'retrained ' if result.trained else ''}{result.seconds:.0f}s"
                                    + (f" FAILED {result.failed}" if result.failed else ""))
                previous = day
    finally:
        sim.close()   # its run workers
    table = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    table["fired_alerts"] = table["step_date"].map(sim.fired_alerts())   # the shipped Prometheus rules
    if report:
        table.to_csv(report, index=False)
    by_step = table.groupby("step_date").agg(predicted=("predicted", "sum"), played=("played", "sum"),
                                             joined=("joined", "sum"), alerts=("alerts", "first"),
                                             fired_alerts=("fired_alerts", "first"))
    click.echo(by_step.to_string())
    click.echo(f"{len(days)} steps in {time.perf_counter() - started:.0f} s; "
               + (f"report {report}" if report else "no --report: the table above is the summary"))


@main.group()
def ledger() -> None:
    """The prediction ledger (TIME2BET_LEDGER_DIR): verify its hash chains, anchor their heads."""


def _anchor_sets(values: tuple[str, ...]) -> list[dict]:
    import json

    from time2bet.ledger import anchors_from_mapping, load_anchors

    sets = []
    for value in values:
        try:
            sets.append(anchors_from_mapping(json.loads(value)) if value.lstrip().startswith("{")
                        else load_anchors(value))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise click.BadParameter(f"{value!r}: not an anchors file or JSON mapping ({exc})",
                                     param_hint="--anchors") from exc
    return sets


@ledger.command("verify")
@click.option("--anchors", "anchors", multiple=True, metavar="FILE|JSON",
              help="anchored heads to check against: a file written by `time2bet ledger anchor`, or a JSON mapping "
                   "writer -> {seq, hash, segment} (e.g. from Dagster metadata). Repeatable. Without anchors, "
                   "removing a chain's newest records cannot be detected.")
def ledger_verify(anchors: tuple[str, ...]) -> None:
    """Re-hash every chain: exit 1 listing edited, removed, reordered or truncated records; 0 when all intact."""
    from time2bet.ledger import merge_anchors, verify

    directory = Settings.from_env().ledger_dir
    report = verify(directory, merge_anchors(*_anchor_sets(anchors)))
    if report.problems or report.torn_tails:
        click.echo(report.listing())
    click.echo(f"ledger {directory}: {report.summary()}")
    sys.exit(0 if report.ok else 1)


@ledger.command("anchor")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="the anchors file (keep it outside the ledger directory); verified against first when it exists")
def ledger_anchor(out: Path) -> None:
    """Write every chain's current head to OUT, after verifying the ledger (against OUT's anchors when it exists);
    a ledger with problems is not anchored (exit 1)."""
    from time2bet.ledger import anchor

    directory = Settings.from_env().ledger_dir
    if out.resolve().is_relative_to(directory):
        raise click.BadParameter(f"{out} is inside the ledger directory {directory}: anchors must be kept outside "
                                 "the files they seal", param_hint="--out")
    report, written = anchor(directory, out)
    if not report.ok:
        click.echo(report.listing())
        click.echo(f"ledger {directory}: {report.summary()}; not anchored", err=True)
        sys.exit(1)
    click.echo(f"anchored {len(written)} chain(s), {report.records} records, to {out}")


from time2bet.cli.config import config
from time2bet.cli.stack import stack

main.add_command(stack)
main.add_command(config)

if __name__ == "__main__":
    main()
