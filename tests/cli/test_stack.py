"""`time2bet stack`: the production topology as real processes. The stack comes up on databases of its own
(unique names on 127.0.0.1:5432, dropped at the end), ingests the replayed sample site, builds features, trains and
promotes a champion through Dagster runs whose steps run on the Celery workers (RabbitMQ), and serves it; then
`stack down` must leave none of its processes behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

pytestmark = [pytest.mark.heavy, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
TIME2BET = str(Path(sys.executable).with_name("time2bet"))
UP_TIMEOUT_S = 420
RUN_TIMEOUT_S = 900
READY_TIMEOUT_S = 120
CELERY_WORKERS = 2
SERVICE_WORKERS = 2


def _rabbitmq_reachable() -> bool:
    with socket.socket() as s:
        s.settimeout(3)
        return s.connect_ex(("127.0.0.1", 5672)) == 0


def _cli(env: dict[str, str], *args: str, timeout_s: float) -> str:
    done = subprocess.run([TIME2BET, "stack", *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    assert done.returncode == 0, f"time2bet stack {' '.join(args)} failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    return done.stdout


def _processes(state: dict) -> dict[int, float]:
    """Every live process of the stack (recorded pids and their descendants): pid -> create time."""
    found = {}
    for component in state["components"]:
        try:
            leader = psutil.Process(component["pid"])
            for proc in [leader, *leader.children(recursive=True)]:
                found[proc.pid] = proc.create_time()
        except psutil.NoSuchProcess:
            pass
    return found


def _still_running(processes: dict[int, float]) -> list[str]:
    left = []
    for pid, created in processes.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{pid} {' '.join(proc.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return left


@pytest.fixture
def stack_databases(postgres_server_url):
    """A unique prefix for the stack's databases; the three it names are dropped at the end (the test's own)."""
    import psycopg

    prefix = f"t2b_stack_{uuid.uuid4().hex[:10]}"
    yield prefix
    with psycopg.connect(postgres_server_url, autocommit=True) as con:
        for name in ("warehouse", "dagster", "mlflow"):
            con.execute(f'DROP DATABASE IF EXISTS "{prefix}_{name}" WITH (FORCE)')


def test_the_stack_runs_the_chain_on_celery_s3_postgres_and_the_mlflow_server_and_down_leaves_nothing(
        tmp_path, postgres_server_url, stack_databases):
    import boto3
    import psycopg
    from mlflow import MlflowClient

    from tests.deploy.conftest import require_binary
    from time2bet.source.mirror import ReplayServer
    from time2bet.source.sample_site import DEFAULT_AS_OF, DEFAULT_DIVISIONS, generate_sample_site

    for binary in ("prometheus", "prometheus-alertmanager", "prometheus-pushgateway"):
        require_binary(binary)
    if not _rabbitmq_reachable():
        pytest.fail("RabbitMQ is not reachable on 127.0.0.1:5672 (the Celery broker)")
    prefix = stack_databases
    site = tmp_path / "site"
    summary = generate_sample_site(site)
    with ReplayServer(site, as_of=DEFAULT_AS_OF) as source:
        env = {**os.environ, "TIME2BET_HOME": str(tmp_path / "home"), "TIME2BET_SOURCE_URL": source.url,
               "TIME2BET_DIVISIONS": ",".join(DEFAULT_DIVISIONS), "TIME2BET_FIRST_SEASON": "2020-21"}
        state_file = tmp_path / "home" / "stack" / "prod-local" / "state.json"
        processes: dict[int, float] = {}
        try:
            _cli(env, "up", "--postgres", postgres_server_url, "--db-prefix", prefix, "--no-automation",
                 "--celery-workers", str(CELERY_WORKERS), "--service-workers", str(SERVICE_WORKERS),
                 timeout_s=UP_TIMEOUT_S)
            state = json.loads(state_file.read_text())
            processes = _processes(state)
            names = [c["name"] for c in state["components"]]
            assert sorted(names) == sorted(["s3", "mlflow", "pushgateway", "alertmanager", "prometheus",
                                            "dagster-webserver", "dagster-daemon", "service",
                                            *[f"celery-worker-{i}" for i in range(1, CELERY_WORKERS + 1)]])
            status = subprocess.run([TIME2BET, "stack", "status"], env=env, capture_output=True, text=True,
                                    timeout=60, check=False)
            assert status.returncode == 0, status.stdout + status.stderr

            _cli(env, "run", "ingest", "build_features", "train_and_promote", timeout_s=RUN_TIMEOUT_S)
            processes |= _processes(state)
            stack_env = state["env"]

            # --- steps ran on the Celery workers, not in their run's process
            celery_pids = {}   # pid -> worker node name, every process of each Celery worker
            for i in range(1, CELERY_WORKERS + 1):
                (worker,) = [c for c in state["components"] if c["name"] == f"celery-worker-{i}"]
                leader = psutil.Process(worker["pid"])
                for proc in [leader, *leader.children(recursive=True)]:
                    celery_pids[proc.pid] = f"{prefix}-{i}"
            from dagster._core.events import DagsterEventType

            from time2bet.cli.stack import stack_instance

            steps, workers_used = 0, set()
            with stack_instance(stack_env) as instance:
                runs = instance.get_runs()
                assert sorted({r.job_name for r in runs}) == ["build_features", "ingest_season_files",
                                                             "refresh_fixtures", "train_and_promote"]
                for run in runs:
                    assert run.status.value == "SUCCESS", run
                    events = [e.dagster_event for e in instance.all_logs(run.run_id) if e.dagster_event]
                    (run_pid,) = {e.pid for e in events if e.event_type == DagsterEventType.RUN_START}
                    starts = [e for e in events if e.event_type == DagsterEventType.STEP_START]
                    assert starts, f"no steps in run {run.run_id} of {run.job_name}"
                    for start in starts:
                        assert start.pid != run_pid, f"{start.step_key} ran in the run's own process"
                        assert start.pid in celery_pids, f"{start.step_key} ran in pid {start.pid}, no Celery worker's"
                        workers_used.add(celery_pids[start.pid])
                    delegated = {e.step_key for e in events if e.event_type == DagsterEventType.ENGINE_EVENT
                                 and "in celery worker" in (e.message or "")}
                    assert delegated == {s.step_key for s in starts}
                    steps += len(starts)
            assert workers_used == {f"{prefix}-{i}" for i in range(1, CELERY_WORKERS + 1)}, workers_used
            received = sum(Path(c["log"]).read_text(errors="replace").count("Task execute_plan[")
                           for c in state["components"] if c["name"].startswith("celery-worker-"))
            assert received >= 2 * steps   # each task logged as received and as succeeded

            # --- Dagster's runs are in PostgreSQL
            dagster_db = postgres_server_url.rsplit("/", 1)[0] + f"/{prefix}_dagster"
            with psycopg.connect(dagster_db) as con:
                rows = con.execute("SELECT run_id, pipeline_name, status FROM runs").fetchall()
            assert {(r.run_id, r.job_name, "SUCCESS") for r in runs} == set(rows)

            # --- raw files and model artefacts in the S3 bucket
            s3 = boto3.client("s3", endpoint_url=stack_env["AWS_ENDPOINT_URL"],
                              aws_access_key_id=stack_env["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=stack_env["AWS_SECRET_ACCESS_KEY"],
                              region_name=stack_env["AWS_DEFAULT_REGION"])
            bucket = state["urls"]["bucket"].removeprefix("s3://")
            keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                    for o in page.get("Contents", [])]
            season_files = [k for k in keys if k.startswith("raw/football-data/season-files/")]
            assert len(season_files) == len(summary["files"]), season_files
            mlflow_server = stack_env["MLFLOW_TRACKING_URI"]
            assert mlflow_server.startswith("http://127.0.0.1:")
            client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
            champion = client.get_model_version_by_alias("match_outcome", "champion")
            model_id = champion.source.removeprefix("models:/")   # the logged model m-<id> the version points at
            model_files = [k for k in keys if k.startswith("mlflow/") and model_id in k]
            assert any(k.endswith("/MLmodel") for k in model_files), (model_id, keys)

            # --- the service serves that champion, loaded from the MLflow server
            service = state["urls"]["service"]
            deadline = time.monotonic() + READY_TIMEOUT_S
            while httpx.get(f"{service}/readyz", timeout=10).status_code != 200:
                assert time.monotonic() < deadline, f"service not ready {READY_TIMEOUT_S}s after training"
                time.sleep(1)
            # the predictions of train_and_promote reach the service with its next snapshot refresh (a poll); with
            # several workers behind one port, a request can reach a worker that is not ready yet (503)
            listed = []
            while not listed:
                reply = httpx.get(f"{service}/matches", timeout=30)
                listed = reply.json().get("matches") if reply.status_code == 200 else []
                assert listed or time.monotonic() < deadline, \
                    f"no upcoming matches served {READY_TIMEOUT_S}s after training: {reply.status_code} {reply.text[:300]}"
                if not listed:
                    time.sleep(1)
            fixture = listed[0]
            body = {"home_team": fixture["home_team"], "away_team": fixture["away_team"],
                    "division": fixture["division"], "kickoff_date": fixture["match_date"]}
            while (reply := httpx.post(f"{service}/predict", timeout=30, json=body)).status_code == 503:
                assert time.monotonic() < deadline, f"/predict still 503 {READY_TIMEOUT_S}s after training: {reply.text}"
                time.sleep(1)
            assert reply.status_code == 200, reply.text
            answer = reply.json()
            assert answer["model"]["version"] == str(champion.version), answer
            assert answer["model"]["alias"] == "champion"
            assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
            processes |= _processes(state)
        finally:
            down = subprocess.run([TIME2BET, "stack", "down", "--drop-databases"], env=env, capture_output=True,
                                  text=True, timeout=180, check=False)
    assert down.returncode == 0, down.stdout + down.stderr
    assert processes, "no stack process was recorded"
    assert not _still_running(processes), _still_running(processes)
    with psycopg.connect(postgres_server_url) as con:
        left = con.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{prefix}_%",)).fetchall()
    assert not left, left
