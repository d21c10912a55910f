"""Fixtures shared across test areas: real services on loopback, started once per test run."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

import click
import httpx
import pytest

REPO_ROOT = REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the service package lives at the repo root (not installed)
    sys.path.insert(0, str(REPO))

from time2bet.background import Background, free_port
from time2bet.cli.demo import service_command
from time2bet.cli.sample_platform import build_platform  # (shared with bench/serve.py)

REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "football-data"


def pytest_configure(config):
    """SIGTERM (a CI time-out, a stopped job) ends the run as Ctrl-C does: the fixtures tear down and stop the
    servers they started, instead of the interpreter dying with them still up."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
PG_ADMIN_URL = os.environ.get("TIME2BET_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    if not (REAL_DATA / "MANIFEST.csv").exists():
        pytest.skip(f"real football-data mirror not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The PostgreSQL server on 127.0.0.1:5432; tests create (and drop) their own databases on it."""
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=5).close()
    except psycopg.OperationalError as exc:  # pragma: no cover - depends on the machine
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    return PG_ADMIN_URL


@pytest.fixture
def postgres_db(postgres_server_url: str):
    """A fresh database of our own, dropped afterwards; yields its URL."""
    import psycopg

    name = f"time2bet_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    url = postgres_server_url.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with psycopg.connect(postgres_server_url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3-compatible server (moto in server mode) on loopback, for the raw zone's S3 path."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


# --- one real platform (sample site -> ingest -> features -> champion) and one real `bentoml serve` per session

READY_TIMEOUT_S = 120
POLL_S = 1
CHALLENGER_SHARE = 0.5


@pytest.fixture(scope="session")
def platform_env(tmp_path_factory) -> dict[str, str]:
    """TIME2BET_HOME/DAGSTER_HOME of a freshly built platform (warehouse, registry with a champion)."""
    return build_platform(tmp_path_factory.mktemp("platform"))


@pytest.fixture(scope="session")
def settings(platform_env):
    from time2bet.settings import Settings

    return Settings.from_env(platform_env)


JOBS_PREFIX = f"time2bet:test:{uuid.uuid4().hex}:jobs:"   # this session's batch-job keys (deleted at the end)
REDIS_URL = os.environ.get("TIME2BET_REDIS_URL") or "redis://127.0.0.1:6379/0"
PORT_FREE_TIMEOUT_S = 30


class BentoServer:
    """One `bentoml serve` of the service on a fixed loopback port; stop() and start() again keep port and env."""

    def __init__(self, env: dict[str, str], root: Path):
        self.env, self.root = env, root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Background | None = None
        self.starts = 0

    def start(self) -> None:
        """Start and wait (bounded) until /readyz answers 200 (model + snapshot loaded)."""
        assert self.process is None, "already running"
        deadline = time.monotonic() + PORT_FREE_TIMEOUT_S
        while not _port_free(self.port):   # the previous run's socket may linger briefly
            if time.monotonic() > deadline:
                pytest.fail(f"port {self.port} still busy after {PORT_FREE_TIMEOUT_S}s")
            time.sleep(0.2)
        self.process = Background("bentoml serve", service_command("127.0.0.1", self.port), self.env,
                                  self.root / f"serve-{self.starts}.log").start()
        self.starts += 1
        try:
            self.process.wait_ready(f"{self.url}/readyz", READY_TIMEOUT_S)
        except click.ClickException as exc:
            self.stop()
            pytest.fail(exc.message)

    def stop(self) -> None:
        """The server's whole process group (SIGTERM, then SIGKILL if it lingers)."""
        process, self.process = self.process, None
        if process is not None:
            process.stop()

    def restart(self) -> None:
        self.stop()
        self.start()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as the server binds: TIME_WAIT is no obstacle
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _delete_job_keys() -> None:
    try:
        import redis
    except ImportError:
        return
    try:
        r = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5, socket_timeout=10)
        keys = list(r.scan_iter(match=f"{JOBS_PREFIX}*", count=500))
        if keys:
            r.delete(*keys)
        r.close()
    except redis.RedisError:
        pass


def serve_env(platform_env: dict[str, str], root: Path) -> dict[str, str]:
    """The environment of a `bentoml serve` on the platform ``platform_env`` with its BENTOML_HOME under root."""
    env = {**os.environ, **platform_env, "BENTOML_HOME": str(root / "bentoml_home"),
           "BENTOML_DO_NOT_TRACK": "True", "PYTHONPATH": str(REPO),
           # follow the registry every second; A/B half the matches once a `challenger` alias exists (the
           # platform leaves none, so every other test sees the champion only)
           "TIME2BET_MODEL_POLL_S": str(POLL_S), "TIME2BET_CHALLENGER_SHARE": str(CHALLENGER_SHARE),
           "TIME2BET_REDIS_URL": REDIS_URL, "TIME2BET_JOBS_PREFIX": JOBS_PREFIX}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # the platform's store is its registry too; an in-process mlflow.set_registry_uri of an earlier test (another
    # platform's) exports MLFLOW_REGISTRY_URI, which a child's MlflowClient would otherwise read the registry from
    env.pop("MLFLOW_REGISTRY_URI", None)
    return env


@pytest.fixture(scope="session")
def bento_server(platform_env, tmp_path_factory):
    """`bentoml serve` of the service on a free loopback port, ready (model + snapshot loaded); killed at the end.
    Batch jobs go to Redis under this session's JOBS_PREFIX, whose keys are deleted at the end."""
    root = tmp_path_factory.mktemp("bento")
    server = BentoServer(serve_env(platform_env, root), root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        _delete_job_keys()


@pytest.fixture(scope="session")
def service_env_for():
    """serve_env(platform_env, root): the environment conftest gives a `bentoml serve` (Redis prefix, poll, ...)."""
    return serve_env


@pytest.fixture(scope="session")
def platform_builder():
    """build_platform(root, extra_env) for tests that need a platform of their own (say on PostgreSQL)."""
    return build_platform


@pytest.fixture(scope="session")
def start_bento_server(tmp_path_factory):
    """start(platform_env) -> another ready `bentoml serve` (say on another platform); every one started is
    stopped at the end of the session (or earlier with its stop())."""
    servers: list[BentoServer] = []

    def start(platform_env: dict[str, str]) -> BentoServer:
        root = tmp_path_factory.mktemp("bento")
        # a jobs queue of its own (under the session's prefix, so deleted at the end): a worker of one server must
        # not run, or hold, another's jobs
        env = {**serve_env(platform_env, root), "TIME2BET_JOBS_PREFIX": f"{JOBS_PREFIX}server{len(servers)}:"}
        server = BentoServer(env, root)
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
        _delete_job_keys()


@pytest.fixture(scope="session")
def server_url(bento_server) -> str:
    return bento_server.url


@pytest.fixture(scope="session")
def client(server_url):
    with httpx.Client(base_url=server_url, timeout=30) as c:
        yield c
