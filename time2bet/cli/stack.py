"""`time2bet stack up|status|run|down`: the production topology of docs/architecture.md as real processes on this
machine, configured only through the platform's settings (the same code as the embedded default):

    S3 (moto server)          raw zone s3://<bucket>/raw and MLflow's artefacts s3://<bucket>/mlflow
    MLflow tracking server    PostgreSQL backend store, artefacts proxied to S3
    Dagster                   webserver + daemon on dagster-postgres; runs launched by the daemon
    Celery workers            `dagster-celery worker start` (--celery-workers, 2): every step of a launched run
    warehouse                 PostgreSQL (dbt-postgres)
    forecast service          `bentoml serve` with TIME2BET_SERVICE_WORKERS workers, following the champion
    Prometheus, Alertmanager, Pushgateway   deploy/'s configuration on the stack's ports

Every process runs in its own session (process group); the stack directory ($TIME2BET_HOME/stack/<profile>) keeps
state.json (pids, ports, URLs, the stack's environment) so that `status`, `run` and `down` find them. `down` sends
SIGTERM to every group, SIGKILL to whatever is left after a bounded wait, and checks that nothing remains.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import httpx
import yaml

from time2bet.background import REPO_ROOT, Background, free_port
from time2bet.settings import Settings

PROFILES = ("prod-local",)
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "time2bet", "AWS_SECRET_ACCESS_KEY": "time2bet", "AWS_DEFAULT_REGION": "us-east-1"}
READY_TIMEOUT_S = 180
STOP_TIMEOUT_S = 20
VENV_BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    """A console script of this environment's venv, else the one on PATH."""
    local = VENV_BIN / name
    return str(local) if local.exists() else (shutil.which(name) or name)


@dataclass
class Component:
    """One process of the stack as recorded in state.json (its pid is its process group's id)."""

    name: str
    pid: int
    command: list[str]
    log: str
    url: str | None = None
    started: float = 0.0   # the leader's start time: a pid reused by another process is not ours


@dataclass
class StackState:
    profile: str
    directory: str
    env: dict[str, str]                       # the stack's own settings (not the caller's whole environment)
    urls: dict[str, str]
    created_databases: list[str]
    admin_pg_url: str
    components: list[Component] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return Path(self.directory) / "state.json"

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(self.path)

    @classmethod
    def load(cls, directory: Path) -> StackState:
        data = json.loads((directory / "state.json").read_text())
        data["components"] = [Component(**c) for c in data["components"]]
        return cls(**data)

    def process_env(self) -> dict[str, str]:
        """What a process of the stack runs with: this environment, the stack's settings on top."""
        base = dict(os.environ)
        return {**base, **self.env,
                "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), base.get("PYTHONPATH")) if p),
                # the venv's tools first: `dagster-celery worker start` runs `celery` from PATH
                "PATH": os.pathsep.join(p for p in (str(VENV_BIN), base.get("PATH")) if p)}


def stack_dir(settings: Settings, profile: str) -> Path:
    return settings.home / "stack" / profile


# --- up ---------------------------------------------------------------------------------------------------------

def _database_url(admin_url: str, name: str, driver: str = "postgresql") -> str:
    base = admin_url.rsplit("/", 1)[0]
    return f"{driver}{base[base.index(':'):]}/{name}"


def _create_databases(admin_url: str, names: list[str]) -> list[str]:
    """The databases that do not exist yet, created; returns those created (only they may be dropped later)."""
    import psycopg

    created = []
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as con:
        for name in names:
            if con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                con.execute(f'CREATE DATABASE "{name}"')
                created.append(name)
    return created


def _drop_databases(admin_url: str, names: list[str]) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as con:
        for name in names:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _stack_env(settings: Settings, directory: Path, admin_url: str, db_prefix: str, ports: dict[str, int],
               bucket: str, service_workers: int) -> dict[str, str]:
    """The stack's settings: the platform's variables (README's configuration table) pointing at its servers."""
    from urllib.parse import urlsplit

    pg = urlsplit(admin_url)
    home = directory / "home"
    return {
        "TIME2BET_HOME": str(home),
        "TIME2BET_SOURCE_URL": settings.source_url,
        "TIME2BET_DIVISIONS": ",".join(settings.divisions),
        "TIME2BET_FIRST_SEASON": settings.first_season,
        "TIME2BET_WAREHOUSE_URL": _database_url(admin_url, f"{db_prefix}_warehouse"),
        "TIME2BET_RAW_ZONE": f"s3://{bucket}/raw",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{ports['s3']}",
        "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{ports['s3']}",   # MLflow's own S3 client (its server)
        **S3_CREDENTIALS,
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{ports['mlflow']}",
        # artefacts go through the tracking server (--serve-artifacts), which keeps them in s3://<bucket>/mlflow
        "TIME2BET_MLFLOW_ARTIFACTS": "mlflow-artifacts:/time2bet",
        "DAGSTER_HOME": str(directory / "dagster"),
        "DAGSTER_PG_HOST": pg.hostname or "127.0.0.1", "DAGSTER_PG_PORT": str(pg.port or 5432),
        "DAGSTER_PG_DB": f"{db_prefix}_dagster", "DAGSTER_PG_USER": pg.username or "postgres",
        "DAGSTER_PG_PASSWORD": pg.password or "",
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1",
        "TIME2BET_DAGSTER_EXECUTOR": "celery",
        "TIME2BET_CELERY_BROKER_URL": settings.celery_broker_url,
        # a queue of this stack's own: another stack (or test) on the same broker never takes its steps
        "TIME2BET_CELERY_QUEUE": f"{db_prefix}_steps",
        "TIME2BET_SERVICE_WORKERS": str(service_workers),
        "TIME2BET_SERVICE_URL": f"http://127.0.0.1:{ports['service']}",
        "TIME2BET_MODEL_POLL_S": "5", "TIME2BET_SNAPSHOT_POLL_S": "5",
        "TIME2BET_PUSHGATEWAY_URL": f"http://127.0.0.1:{ports['pushgateway']}",
        "TIME2BET_REDIS_URL": settings.redis_url,
        "TIME2BET_JOBS_PREFIX": f"{db_prefix}:jobs:",
        "BENTOML_HOME": str(directory / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
    }


def _prometheus_config(directory: Path, ports: dict[str, int]) -> Path:
    """deploy/prometheus/prometheus.yml with the stack's targets (same job names: the rules select on them)."""
    source = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
    config = yaml.safe_load(source.read_text())
    config["rule_files"] = [str(source.parent / pattern) for pattern in config["rule_files"]]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [f"127.0.0.1:{ports['alertmanager']}"]}]}]
    targets = {"time2bet-service": ports["service"], "pushgateway": ports["pushgateway"],
               "alertmanager": ports["alertmanager"], "prometheus": ports["prometheus"]}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{targets[job['job_name']]}"]}]
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _celery_config(directory: Path, env: dict[str, str]) -> Path:
    """The workers' --config-yaml: the executor config the code location uses (time2bet_assets.lib.executor)."""
    from time2bet_assets.lib.executor import celery_config

    path = directory / "celery.yaml"
    path.write_text(yaml.safe_dump({"execution": {"config": celery_config(Settings.from_env(env))}}))
    return path


def _wait(what: str, check, timeout_s: float, process: Background | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and not process.running:
            raise click.ClickException(f"{what} exited; its log ({process.log}) ends with:\n{process.log_tail()}")
        with contextlib.suppress(Exception):
            if check():
                return
        if time.monotonic() > deadline:
            raise click.ClickException(f"{what} not ready after {timeout_s:.0f}s"
                                       + (f"; see {process.log}" if process else ""))
        time.sleep(0.5)


@contextlib.contextmanager
def stack_instance(env: dict[str, str]):
    """The stack's Dagster instance, opened in this process (dagster.postgres.yaml reads DAGSTER_PG_* from the
    environment: set while it is open, restored afterwards)."""
    import dagster as dg

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            yield instance
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _daemon_heartbeat(env: dict[str, str]) -> bool:
    """The daemon's run coordinator (it launches the queued runs) has a heartbeat in the instance."""
    with stack_instance(env) as instance:
        return "QUEUED_RUN_COORDINATOR" in instance.get_daemon_heartbeats()


_INSTIGATORS = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
    sensors { name sensorState { id status } } schedules { name scheduleState { id status } } } } } }"""


def _stop_automation(dagster_url: str) -> list[str]:
    """Stop every sensor and schedule of the code location (through the webserver's GraphQL API), so that only
    the runs launched by `stack run` run; returns their names."""
    def graphql(query: str, variables: dict | None = None) -> dict:
        answer = httpx.post(f"{dagster_url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
        answer.raise_for_status()
        return answer.json()["data"]

    stopped = []
    for repo in graphql(_INSTIGATORS)["repositoriesOrError"]["nodes"]:
        for kind, state, mutation in (("sensors", "sensorState", "stopSensor"),
                                      ("schedules", "scheduleState", "stopRunningSchedule")):
            for instigator in repo[kind]:
                if instigator[state]["status"] == "RUNNING":
                    graphql(f"mutation($id: String) {{ {mutation}(id: $id) {{ __typename }} }}",
                            {"id": instigator[state]["id"]})
                    stopped.append(instigator["name"])
    return stopped


def up(settings: Settings, profile: str, admin_url: str, db_prefix: str, celery_workers: int,
       service_workers: int, automation: bool = True) -> StackState:
    """Start every component; those that do not need each other at once, then wait for each to be ready. On any
    failure, stop those started (their databases stay, recorded for `down --drop-databases`)."""
    import boto3

    directory = stack_dir(settings, profile)
    if (directory / "state.json").exists():
        old = StackState.load(directory)
        if any(_alive(c) for c in old.components):
            raise click.ClickException(f"a stack runs already ({directory}); `time2bet stack down` first")
    directory.mkdir(parents=True, exist_ok=True)
    logs = directory / "logs"
    logs.mkdir(exist_ok=True)
    ports = {name: free_port() for name in ("s3", "mlflow", "dagster", "service", "prometheus", "alertmanager",
                                            "pushgateway")}
    bucket = db_prefix.replace("_", "-")
    env = _stack_env(settings, directory, admin_url, db_prefix, ports, bucket, service_workers)
    created = _create_databases(admin_url, [f"{db_prefix}_{n}" for n in ("warehouse", "dagster", "mlflow")])
    state = StackState(profile, str(directory), env, {}, created, admin_url)
    state.save()
    process_env = state.process_env()
    started: dict[str, Background] = {}

    def start(name: str, command: list[str], url: str | None = None) -> Background:
        import psutil

        process = Background(name, command, process_env, logs / f"{name}.log", stop_with_parent=False).start()
        started[name] = process
        state.components.append(Component(name, process.proc.pid, command, str(process.log), url,
                                           psutil.Process(process.proc.pid).create_time()))
        if url:
            state.urls[name] = url
        state.save()
        return process

    s3, mlflow, dagster = (f"http://127.0.0.1:{ports['s3']}", env["MLFLOW_TRACKING_URI"],
                           f"http://127.0.0.1:{ports['dagster']}")
    pushgateway, service = env["TIME2BET_PUSHGATEWAY_URL"], env["TIME2BET_SERVICE_URL"]
    alertmanager, prometheus = f"http://127.0.0.1:{ports['alertmanager']}", f"http://127.0.0.1:{ports['prometheus']}"
    workspace = str(REPO_ROOT / "workspace.yaml")
    try:
        _prepare_dagster(env)   # the instance's schema, once, before the webserver, daemon and workers open it
        start("s3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(ports["s3"])], s3)
        start("mlflow", [_tool("mlflow"), "server", "--host", "127.0.0.1", "--port", str(ports["mlflow"]),
                         "--workers", "1",
                         "--backend-store-uri", _database_url(admin_url, f"{db_prefix}_mlflow", "postgresql+psycopg2"),
                         "--artifacts-destination", f"s3://{bucket}/mlflow", "--serve-artifacts"], mlflow)
        start("pushgateway", [_tool("prometheus-pushgateway"),
                              f"--web.listen-address=127.0.0.1:{ports['pushgateway']}"], pushgateway)
        start("alertmanager", [_tool("prometheus-alertmanager"),
                               f"--config.file={REPO_ROOT / 'deploy' / 'alertmanager' / 'alertmanager.yml'}",
                               f"--storage.path={directory / 'alertmanager-data'}",
                               f"--web.listen-address=127.0.0.1:{ports['alertmanager']}", "--cluster.listen-address="],
              alertmanager)
        start("prometheus", [_tool("prometheus"), f"--config.file={_prometheus_config(directory, ports)}",
                             f"--storage.tsdb.path={directory / 'prometheus-data'}",
                             f"--web.listen-address=127.0.0.1:{ports['prometheus']}"], prometheus)
        start("dagster-webserver", [_tool("dagster-webserver"), "-h", "127.0.0.1", "-p", str(ports["dagster"]),
                                    "-w", workspace], dagster)
        celery_yaml = _celery_config(directory, env)
        for i in range(1, celery_workers + 1):
            # the code location imported by the worker before it forks its pool: every task starts warm
            start(f"celery-worker-{i}", [_tool("dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                                         "-y", str(celery_yaml), "-q", env["TIME2BET_CELERY_QUEUE"],
                                         "-n", f"{db_prefix}-{i}", "-i", "time2bet_assets.definitions",
                                         "--", "--concurrency=1"])
        from time2bet.cli.demo import service_command
        start("service", service_command("127.0.0.1", ports["service"]), service)

        for name, ready in (("s3", f"{s3}/moto-api/"), ("mlflow", f"{mlflow}/health"),
                            ("pushgateway", f"{pushgateway}/-/ready"), ("alertmanager", f"{alertmanager}/-/ready"),
                            ("prometheus", f"{prometheus}/-/ready"), ("dagster-webserver", f"{dagster}/server_info"),
                            # live once started; ready (/readyz) only once a champion exists (`stack run` trains it)
                            ("service", f"{service}/livez")):
            started[name].wait_ready(ready, READY_TIMEOUT_S)
        boto3.client("s3", endpoint_url=s3, aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                     region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"]).create_bucket(Bucket=bucket)
        state.urls["bucket"] = f"s3://{bucket}"
        if not automation:   # before the daemon starts: sensors on by default would launch runs at its first tick
            state.urls["automation stopped"] = ", ".join(_stop_automation(dagster))
        daemon = start("dagster-daemon", [_tool("dagster-daemon"), "run", "-w", workspace])
        _wait("dagster-daemon", lambda: _daemon_heartbeat(env), READY_TIMEOUT_S, daemon)
        for i in range(1, celery_workers + 1):
            worker = started[f"celery-worker-{i}"]
            _wait(worker.name, lambda w=worker: " ready." in w.log_tail(20_000), READY_TIMEOUT_S, worker)
        state.save()
    except BaseException:
        stop_all(state)
        raise
    return state


def _prepare_dagster(env: dict[str, str]) -> None:
    """DAGSTER_HOME with the PostgreSQL instance file, and the instance's schema created once, before the webserver
    and the daemon open it at the same time."""

    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "deploy" / "dagster" / "dagster.postgres.yaml", home / "dagster.yaml")
    with stack_instance(env) as instance:
        instance.get_runs(limit=1)


# --- down -------------------------------------------------------------------------------------------------------

def _group_members(pgid: int, started: float = 0.0) -> list:
    """Live (non-zombie) processes of process group ``pgid``; none when its leader ``pgid`` is another process
    than the one started at ``started`` (the pid was reused after the stack's processes ended)."""
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        if started and abs(psutil.Process(pgid).create_time() - started) > 1:
            return []
    members = []
    for proc in psutil.process_iter(["pid", "status"]):
        with contextlib.suppress(psutil.Error):
            if os.getpgid(proc.info["pid"]) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc)
    return members


def _alive(component: Component) -> bool:
    return bool(_group_members(component.pid, component.started))


def stack_processes(state: StackState) -> list:
    """Every live process of the stack: the recorded leaders, their descendants and their process groups."""
    import psutil

    found = {}
    for c in state.components:
        members = _group_members(c.pid, c.started)
        for proc in members:
            found[proc.pid] = proc
        with contextlib.suppress(psutil.Error):
            leader = psutil.Process(c.pid)
            if c.started and abs(leader.create_time() - c.started) > 1:
                continue
            for proc in [leader, *leader.children(recursive=True)]:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found[proc.pid] = proc
    return list(found.values())


def stop_all(state: StackState, timeout_s: float = STOP_TIMEOUT_S) -> list[int]:
    """SIGTERM to every group (newest first: the service before the servers it reads), SIGKILL to whatever is left
    after ``timeout_s``; returns the pids still alive after that (none, unless the kernel refused)."""
    import psutil

    ours = [c for c in reversed(state.components) if _alive(c)]
    targets = stack_processes(state)
    for c in ours:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(c.pid, signal.SIGTERM)
    for proc in targets:   # descendants that left their group
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(targets, timeout=timeout_s)
    for c in ours:
        if _group_members(c.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(c.pid, signal.SIGKILL)
    for proc in alive + stack_processes(state):
        with contextlib.suppress(psutil.Error):
            proc.kill()
    _, alive = psutil.wait_procs(alive + stack_processes(state), timeout=timeout_s)
    return [p.pid for p in alive]


def down(directory: Path, drop_databases: bool) -> list[int]:
    state = StackState.load(directory)
    left = stop_all(state)
    if drop_databases and state.created_databases:
        _drop_databases(state.admin_pg_url, state.created_databases)
        state.created_databases = []
    state.components = []
    state.save()
    return left


# --- status and run ---------------------------------------------------------------------------------------------

def status_lines(state: StackState) -> list[str]:
    lines = []
    for c in state.components:
        alive = _alive(c)
        answer = ""
        if c.url and c.url.startswith("http"):
            try:
                answer = f" HTTP {httpx.get(c.url, timeout=3).status_code}"
            except httpx.HTTPError as exc:
                answer = f" unreachable ({type(exc).__name__})"
        lines.append(f"{c.name:18} pid {c.pid:7} {'running' if alive else 'STOPPED':8} {c.url or ''}{answer}")
    return lines


def _graphql(state: StackState):
    from urllib.parse import urlsplit

    from dagster_graphql import DagsterGraphQLClient

    url = urlsplit(state.urls["dagster-webserver"])
    return DagsterGraphQLClient(url.hostname, port_number=url.port, timeout=60)


def launch(state: StackState, jobs: list[tuple[str, dict[str, str]]], timeout_s: float = 900) -> list[str]:
    """Submit every (job, tags) to the stack's Dagster at once (the daemon launches them; their steps go to the
    Celery workers) and wait for all; returns the run ids, raises ClickException when a run did not succeed."""
    from dagster import DagsterRunStatus

    client = _graphql(state)
    runs = {client.submit_job_execution(job, tags=tags): job for job, tags in jobs}
    finished = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
    deadline = time.monotonic() + timeout_s
    while pending := [run_id for run_id in runs if client.get_run_status(run_id) not in finished]:
        if time.monotonic() > deadline:
            raise click.ClickException(f"runs {pending} still not finished after {timeout_s:.0f}s")
        time.sleep(1)
    failed = [f"{runs[run_id]} {run_id} ({client.get_run_status(run_id).value})" for run_id in runs
              if client.get_run_status(run_id) != DagsterRunStatus.SUCCESS]
    if failed:
        raise click.ClickException(f"runs did not succeed: {failed}; see {state.urls['dagster-webserver']}/runs")
    return list(runs)


def ingest_through(state: StackState, echo=click.echo) -> list[str]:
    """Every season file the source publishes (the stack's divisions and seasons), in as few launched runs as
    partition ranges allow, and the fixtures, at once; returns the run ids."""
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from time2bet.football import season_start_year
    from time2bet.ingestion.discovery import discover_season_files
    from time2bet_assets.defs.ingestion.backfill import partition_rectangles, register_partitions

    settings = Settings.from_env(state.env)
    links = discover_season_files(settings.source_url, timeout_s=settings.crawl_timeout_s)
    first = season_start_year(settings.first_season)
    pairs = {(l.division, l.season) for l in links
             if l.division in settings.divisions and season_start_year(l.season) >= first}
    divisions = [d for d in settings.divisions if any(d == pd for pd, _ in pairs)]
    seasons = sorted({s for _, s in pairs}, key=season_start_year)
    with stack_instance(state.env) as instance:
        register_partitions(instance, divisions, seasons)
        ordered = (list(instance.get_dynamic_partitions("division")), list(instance.get_dynamic_partitions("season")))
    wanted = {f"{d}|{s}" for d, s in pairs}
    runs = [("ingest_season_files", {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]})
            for keys in partition_rectangles(*ordered, wanted, wanted)]
    echo(f"ingest_season_files over {len(wanted)} partitions in {len(runs)} run(s), refresh_fixtures beside them")
    return launch(state, [*runs, ("refresh_fixtures", {})])


# --- the command group ------------------------------------------------------------------------------------------

profile_option = click.option("--profile", type=click.Choice(PROFILES), default="prod-local", show_default=True)


@click.group("stack")
def stack() -> None:
    """A production-shaped stack of real processes on this machine (PostgreSQL, S3, MLflow server, Dagster with
    Celery workers, a multi-worker service, Prometheus): up, status, run, down."""


@stack.command("up")
@profile_option
@click.option("--postgres", "admin_url", default=DEFAULT_PG_URL, show_default=True,
              help="a PostgreSQL server (URL of a database to connect to for CREATE DATABASE)")
@click.option("--db-prefix", default="time2bet_stack", show_default=True,
              help="the stack's databases <prefix>_warehouse|dagster|mlflow (created when missing), bucket and queue")
@click.option("--celery-workers", default=2, show_default=True, type=click.IntRange(1, 16))
@click.option("--service-workers", default=os.cpu_count() or 1, show_default="the core count",
              type=click.IntRange(1, 64))
@click.option("--automation/--no-automation", default=True, show_default=True,
              help="leave the code location's sensors and schedules on (they ingest and rebuild on their own), or "
                   "stop them so that only `stack run` launches runs")
@click.option("--foreground", is_flag=True,
              help="stay attached: stop the stack on Ctrl-C, SIGTERM, or when this command's parent dies")
def stack_up(profile: str, admin_url: str, db_prefix: str, celery_workers: int, service_workers: int,
             automation: bool, foreground: bool) -> None:
    """Start the stack and print its URLs; its state goes to $TIME2BET_HOME/stack/<profile>."""
    settings = Settings.from_env()
    started = time.monotonic()
    state = up(settings, profile, admin_url, db_prefix, celery_workers, service_workers, automation)
    click.echo(f"stack {profile} up in {time.monotonic() - started:.0f}s ({len(state.components)} processes); "
               f"state {state.path}")
    for name, url in state.urls.items():
        click.echo(f"  {name:18} {url}")
    if foreground:
        _stay_attached(state)


def _stay_attached(state: StackState) -> None:
    """Until a signal, the parent's death or a component's exit; then the whole stack down."""
    parent = os.getppid()
    reason = []

    def on_signal(signum, _frame):
        reason.append(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        while not reason:
            if os.getppid() != parent:
                reason.append("parent exited")
            dead = [c.name for c in state.components if not _alive(c)]
            if dead:
                reason.append(f"{', '.join(dead)} exited")
            time.sleep(1)
    finally:
        click.echo(f"stopping the stack ({reason[0] if reason else 'error'})")
        left = stop_all(state)
        state.components = []
        state.save()
        if left:
            click.echo(f"still alive: {left}", err=True)


@stack.command("status")
@profile_option
def stack_status(profile: str) -> None:
    """Each component: pid, running or not, and what its URL answers."""
    directory = stack_dir(Settings.from_env(), profile)
    if not (directory / "state.json").exists():
        raise click.ClickException(f"no stack at {directory}")
    state = StackState.load(directory)
    lines = status_lines(state)
    click.echo("\n".join(lines) if lines else f"stack {profile}: nothing running")
    sys.exit(0 if lines and all(" running " in line for line in lines) else 1)


@stack.command("run")
@profile_option
@click.argument("jobs", nargs=-1, required=True)
def stack_run(profile: str, jobs: tuple[str, ...]) -> None:
    """Launch JOBS one after the other on the stack's Dagster and wait for each: `ingest` (every published season
    file, then the fixtures) or a job name (build_features, train_and_promote, ...)."""
    state = StackState.load(stack_dir(Settings.from_env(), profile))
    for job in jobs:
        if job == "ingest":
            ingest_through(state)
        else:
            click.echo(job)
            launch(state, [(job, {})])
    click.echo("done")


@stack.command("down")
@profile_option
@click.option("--drop-databases", is_flag=True, help="also drop the databases this stack's `up` created")
def stack_down(profile: str, drop_databases: bool) -> None:
    """Stop every process of the stack (SIGTERM, then SIGKILL after a bounded wait); nothing is left running."""
    directory = stack_dir(Settings.from_env(), profile)
    if not (directory / "state.json").exists():
        raise click.ClickException(f"no stack at {directory}")
    left = down(directory, drop_databases)
    if left:
        raise click.ClickException(f"processes still alive after SIGKILL: {left}")
    click.echo(f"stack {profile} down" + (" (databases dropped)" if drop_databases else ""))
