"""The end of ``time2bet demo``: once the champion exists, the forecast service (as ``time2bet serve``) and the
Dagster UI run in the background, a real POST /predict for an upcoming fixture is printed with the URLs to try,
and both keep running until Ctrl-C (or SIGTERM), then both are stopped.

Each background process gets its own session (process group): Ctrl-C reaches only the demo, which stops the
group with SIGTERM and, after a bounded wait, SIGKILL (Dagster's dev server has been seen to ignore SIGTERM),
so nothing is left behind. Their output goes to ``$TIME2BET_HOME/logs/``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import click
import httpx

from time2bet.background import REPO_ROOT, Background
from time2bet.serving_contract import CHAMPION
from time2bet.settings import Settings

SERVICE_READY_TIMEOUT_S = 180   # loading the champion and the serving snapshot
UI_READY_TIMEOUT_S = 120


def service_command(host: str, port: int) -> list[str]:
    """`bentoml serve bento_service.service:Time2BetService` on HOST:PORT (the venv's bentoml when there is one)."""
    bentoml = Path(sys.executable).with_name("bentoml")
    return [str(bentoml) if bentoml.exists() else "bentoml", "serve", "bento_service.service:Time2BetService",
            "--host", host, "--port", str(port)]


def service_env(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The platform's locations, explicit, so the service reads the same warehouse and registry as the CLI."""
    base = dict(os.environ if base is None else base)
    return dict(base, TIME2BET_WAREHOUSE_URL=settings.warehouse_url, MLFLOW_TRACKING_URI=settings.mlflow_tracking_uri,
                TIME2BET_SERVING_SNAPSHOT_DIR=str(settings.serving_snapshot_dir),
                PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), base.get("PYTHONPATH")) if p))


def dagster_ui_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-h", host,
            "-p", str(port)]


def sample_prediction(service_url: str) -> tuple[dict, dict] | None:
    """(request, response) of one real POST /predict for the first upcoming fixture the service lists."""
    with httpx.Client(base_url=service_url, timeout=30) as client:
        matches = client.get("/matches")
        matches.raise_for_status()
        if not matches.json()["matches"]:
            return None
        m = matches.json()["matches"][0]
        request = {"home_team": m["home_team"], "away_team": m["away_team"], "division": m["division"],
                   "kickoff_date": m["match_date"]}
        answer = client.post("/predict", json=request)
        answer.raise_for_status()
        return request, answer.json()


def _print_prediction(request: dict, answer: dict) -> None:
    p, model = answer["probabilities"], answer["model"]
    click.echo(f"\nsample prediction (POST /predict, {model['name']} v{model['version']} @{model['alias']}):\n"
               f"  {answer['division']} {answer['kickoff_date']}  {answer['home_team']} v {answer['away_team']}:  "
               f"home {p['home']:.1%}  draw {p['draw']:.1%}  away {p['away']:.1%}\n"
               f"  request  {json.dumps(request)}\n  response {json.dumps(answer)}")


def _print_urls(settings: Settings, service_url: str | None, ui_url: str | None, request: dict | None) -> None:
    lines = ["", "try:"]
    if service_url:
        body = json.dumps(request or {"home_team": "...", "away_team": "...", "division": "E0"})
        lines += [f"  forecast API docs     {service_url}/docs",
                  f"  a prediction          curl -s -X POST {service_url}/predict -H 'content-type: application/json' "
                  f"-d '{body}'",
                  f"  upcoming matches      {service_url}/matches",
                  f"  model                 {service_url}/model/info",
                  f"  metrics (Prometheus)  {service_url}/metrics",
                  f"  Streamlit page        time2bet ui --service-url {service_url}"]
    if ui_url:
        lines.append(f"  Dagster UI            {ui_url}")
    lines.append(f"  MLflow UI             mlflow ui --backend-store-uri {settings.mlflow_tracking_uri} --port 5000")
    click.echo("\n".join(lines))


def run_after_training(settings: Settings, *, serve: bool = True, serve_port: int = 3001, ui: bool = True,
                       ui_port: int = 3000, wait: bool = True, host: str = "127.0.0.1",
                       env: dict[str, str] | None = None) -> list[Background]:
    """Start the service and the Dagster UI, print a sample prediction and the URLs; with ``wait``, keep them
    running until Ctrl-C/SIGTERM or until one of them exits. Everything started is stopped before returning;
    returns the processes (stopped) for tests."""
    env = dict(os.environ if env is None else env)
    # the venv's executables first (dbt for the Dagster code location), also when the venv is not activated
    env["PATH"] = os.pathsep.join(p for p in (str(Path(sys.executable).parent), env.get("PATH")) if p)
    logs = settings.home / "logs"
    started: list[Background] = []
    previous_term, previous_int = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        # Ctrl-C and SIGTERM leave through the finally below, also when the demo was started with SIGINT ignored
        # (a background job of a script); the children then get SIGINT's default disposition, not SIG_IGN
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        service = dagster = None
        service_url = ui_url = request = None
        if serve and not _has_champion(settings):
            click.echo("no `champion` in the registry (the promotion gate rejected every candidate; "
                       "`time2bet why` and the registry's gate.* tags say why): not starting the forecast service",
                       err=True)
            serve = False
        if serve:
            service_url = f"http://{host}:{serve_port}"
            service = Background("forecast service", service_command(host, serve_port), service_env(settings, env),
                                 logs / "service.log").start()
            started.append(service)
        if ui:
            ui_url = f"http://{host}:{ui_port}"
            dagster = Background("Dagster UI", dagster_ui_command(host, ui_port), env, logs / "dagster-dev.log").start()
            started.append(dagster)
        if service is not None:
            click.echo(f"starting the forecast service on {service_url} (champion + serving snapshot) ...")
            service.wait_ready(f"{service_url}/readyz", SERVICE_READY_TIMEOUT_S)
            try:
                sample = sample_prediction(service_url)
            except httpx.HTTPError as exc:   # say so, keep the service up to look into it
                sample = False
                click.echo(f"the sample prediction failed: {exc}; see {service.log}", err=True)
            if sample is None:
                click.echo("no upcoming fixtures to predict (the source published none)")
            elif sample:
                request, answer = sample
                _print_prediction(request, answer)
        if dagster is not None:
            click.echo(f"\nstarting the Dagster UI on {ui_url} ...")
            dagster.wait_ready(f"{ui_url}/server_info", UI_READY_TIMEOUT_S)
        _print_urls(settings, service_url, ui_url, request)
        if started:
            click.echo(f"logs: {logs}")
        if wait and started:
            click.echo("running; Ctrl-C to stop")
            while all(b.running for b in started):
                time.sleep(0.5)
            gone = next(b for b in started if not b.running)
            raise click.ClickException(f"{gone.name} exited with {gone.proc.returncode}; its log ({gone.log}) "
                                       f"ends with:\n{gone.log_tail()}")
    except KeyboardInterrupt:
        click.echo("\nstopping ...")
    finally:
        if in_main_thread:   # a second Ctrl-C must not cut the (bounded) stopping short and leave processes behind
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for background in reversed(started):
                background.stop()
        finally:
            if in_main_thread:   # (None: a handler not installed from Python, left alone)
                signal.signal(signal.SIGINT, previous_int if previous_int is not None else signal.default_int_handler)
                if previous_term is not None:
                    signal.signal(signal.SIGTERM, previous_term)
    return started


def _has_champion(settings: Settings, model_name: str | None = None) -> bool:
    from time2bet.mlflow_store import registry_client
    from mlflow.exceptions import MlflowException

    name = model_name or settings.model_name
    try:
        # the registry explicitly too: a registry URI set globally in this process (mlflow.set_registry_uri,
        # say by an in-process training run on another store) would otherwise take precedence
        client = registry_client(settings.mlflow_tracking_uri)
        client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return False
    return True


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt
