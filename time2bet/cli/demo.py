"""``time2bet demo`` after the sample site is generated: the first training and a few replayed weeks, then the
forecast service (as ``time2bet serve``) and the Dagster UI in the background, a real POST /predict printed with
the URLs to try, both running until Ctrl-C (or SIGTERM), then both stopped.

The replay is ``time2bet simulate``'s loop (time2bet.cli.simulate.Simulation) on the demo's own home, so a newcomer
finds the prediction ledger, live quality against the market and drift in the Dagster UI, over GET /quality and on
the Streamlit page, made by the shipped sensors, schedules and jobs. Its tools' output (dbt, Dagster, MLflow) goes to
``$TIME2BET_HOME/logs/simulate.log`` the way simulate sends it there: the console keeps progress and results.

Each background process gets its own session (process group): Ctrl-C reaches only the demo, which stops the
group with SIGTERM and, after a bounded wait, SIGKILL (Dagster's dev server has been seen to ignore SIGTERM),
so nothing is left behind. Their output goes to ``$TIME2BET_HOME/logs/``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
import httpx

from time2bet.background import REPO_ROOT, Background
from time2bet.serving_contract import CHAMPION
from time2bet.settings import Settings

if TYPE_CHECKING:
    from time2bet.cli.simulate import StepResult

SERVICE_READY_TIMEOUT_S = 180   # loading the champion and the serving snapshot
UI_READY_TIMEOUT_S = 120
# Replayed after the first training: the sample site plays a round every second Saturday around DEFAULT_AS_OF
# (1, 15 and 29 March), so fortnightly steps predict each round on its morning and score it at the next step: the
# rounds of 1 and 15 March get scored, and the platform ends on 29 March with fixtures to predict.
REPLAY_STEPS = 2
REPLAY_STEP_DAYS = 14


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


def _platform_locations(settings: Settings) -> dict[str, str]:
    """The demo platform's locations, explicit: the replay (which would otherwise derive them from its home) must
    write where the demo trained, and the Dagster UI must read there too."""
    return {"TIME2BET_HOME": str(settings.home), "DAGSTER_HOME": str(settings.dagster_home),
            "TIME2BET_WAREHOUSE_URL": settings.warehouse_url, "TIME2BET_RAW_ZONE": settings.raw_zone,
            "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri, "TIME2BET_MLFLOW_ARTIFACTS": settings.mlflow_artifacts}


def train_and_replay(settings: Settings, site: Path, port: int, *,
                     steps: int = REPLAY_STEPS) -> tuple[dt.date, dict[str, str]]:
    """The first training on the sample site as of DEFAULT_AS_OF, then ``steps`` fortnightly steps of ``time2bet
    simulate``'s loop, on the replay server at ``port``; prints progress and results. Returns the platform's date at
    the end (the site is served as of it afterwards) and the environment of the platform (for the Dagster UI).

    A home that was replayed before is past DEFAULT_AS_OF, and the site served as of an earlier date would have
    fewer matches than loaded (source integrity quarantines such files): it is trained again, without a replay, at
    the first step date after its latest match (where its replay ended), its live quality kept."""
    from time2bet.cli.simulate import Simulation, report_rows, step_dates
    from time2bet.source.sample_site import DEFAULT_AS_OF, DEFAULT_DIVISIONS

    divisions = [d for d in DEFAULT_DIVISIONS if d in settings.divisions]
    sim = Simulation(site, settings.home, divisions)
    sim.env.update(_platform_locations(settings))
    days = (step_dates(DEFAULT_AS_OF, DEFAULT_AS_OF + dt.timedelta(days=REPLAY_STEP_DAYS * steps), REPLAY_STEP_DAYS)
            if steps > 0 else [])
    first = DEFAULT_AS_OF
    loaded = _loaded_until(settings)
    if loaded is not None and loaded >= DEFAULT_AS_OF:
        first, days = _step_after(DEFAULT_AS_OF, loaded), []
        click.echo(f"this home is past {DEFAULT_AS_OF} (replayed before): training again as of {first}, no replay")
    click.echo(f"platform home {settings.home}; the tools' own output goes to {sim.log_file}")
    try:
        sim.start(first, port, progress=lambda text: click.echo(f"  {text}"))
        click.echo(f"  {_champion_line(settings)}")
        if days:
            click.echo(f"replaying to {days[-1]} as `time2bet simulate --step {REPLAY_STEP_DAYS}d` does: the shipped "
                       "sensors and jobs ingest results, predict fixtures into the ledger, score live quality, drift")
        previous = first
        for day in days:
            sim.failed_checks.clear()
            result = sim.step(day, previous, port)
            rows = report_rows(sim.env["TIME2BET_WAREHOUSE_URL"], previous, day, divisions, sim.failed_checks)
            click.echo(f"  {day}: " + _step_summary(result, rows))
            previous = day
    except RuntimeError as exc:   # Simulation's own failures (say the first ingestion)
        raise click.ClickException(f"{exc}; the tools' output is in {sim.log_file}") from None
    finally:
        sim.close()
    for line in _monitoring_summary(settings):
        click.echo(line)
    return previous, dict(sim.env)


def _step_after(start: dt.date, day: dt.date) -> dt.date:
    """The first date of the replay's fortnightly steps from ``start`` that is after ``day``."""
    return start + dt.timedelta(days=REPLAY_STEP_DAYS * math.ceil(((day - start).days + 1) / REPLAY_STEP_DAYS))


def _loaded_until(settings: Settings) -> dt.date | None:
    """The latest match the platform's warehouse holds (None when it holds none)."""
    from time2bet.monitoring.store import table_exists
    from time2bet.warehouse.client import Warehouse

    warehouse = Warehouse.from_url(settings.warehouse_url)
    if not table_exists(warehouse, "raw.matches"):
        return None
    latest = warehouse.read_sql("SELECT CAST(max(match_date) AS VARCHAR) AS d FROM raw.matches")["d"].iloc[0]
    return dt.date.fromisoformat(latest[:10]) if isinstance(latest, str) else None


def _champion_line(settings: Settings) -> str:
    from time2bet.ml.registry import describe_champion

    try:
        champion = describe_champion(settings.model_name, tracking_uri=settings.mlflow_tracking_uri)
    except LookupError:
        return "no champion: the promotion gate rejected every candidate (`time2bet why` says why)"
    gate = champion.gate
    text = f"champion: {champion.name} v{champion.version}"
    if gate.get("challenger_log_loss"):
        text += (f", gate log-loss {float(gate['challenger_log_loss']):.4f} on {gate.get('n')} held-out matches "
                 f"(logistic-regression baseline {float(gate['baseline_log_loss']):.4f}"
                 + (f", Elo-only model {float(gate['elo_only_log_loss']):.4f}" if gate.get("elo_only_log_loss") else "")
                 + ")")
    return text


def _step_summary(result: StepResult, rows: list[dict]) -> str:
    """One replay step in a line: what was predicted, played and scored, and what went wrong."""
    total = {k: sum(int(r[k]) for r in rows) for k in ("predicted", "played", "joined")}
    text = (f"{total['predicted']} predictions into the ledger, {total['played']} matches played, "
            f"{total['joined']} scored against results and market; {result.runs} runs, {result.seconds:.0f} s")
    alerts = sorted({a for r in rows for a in r["alerts"].split(";") if a})
    if alerts:
        text += f"; checks warned: {', '.join(alerts)}"
    if result.failed:
        text += f"; FAILED: {', '.join(result.failed)}"
    return text


def _monitoring_summary(settings: Settings) -> list[str]:
    """Live quality of the champion against the market and its Elo-only reference, from the scoreboard export
    (the file GET /quality serves); the ledger's chains; where the drift reports are."""
    from time2bet.ledger import verify
    from time2bet.monitoring.live_quality import pooled
    from time2bet.scoreboard_store import Scoreboard

    lines = []
    rows = Scoreboard(settings.monitoring_dir).query(division="ALL", window="week")
    rows = rows[(rows["variant"] == "champion") & (rows["n"] > 0)] if rows is not None else None
    if rows is None or rows.empty:
        lines.append("live quality: no predicted match played yet")
    else:
        version = rows["model_version"].iloc[-1]   # the latest week's champion
        rows = rows[rows["model_version"] == version]

        model, n = pooled(rows, "log_loss", "n")
        on_odds, n_odds = pooled(rows, "model_log_loss_on_odds", "n_with_odds")
        market, _ = pooled(rows, "market_log_loss", "n_with_odds")
        on_elo, n_elo = pooled(rows, "model_log_loss_on_elo", "n_elo")
        elo, _ = pooled(rows, "elo_log_loss", "n_elo")
        lines.append(f"live quality of v{version} (champion) on {n} matches predicted before kickoff, "
                     f"{len(rows)} kickoff weeks: log-loss {model:.4f}")
        lines.append(f"  model {on_odds:.4f} vs de-margined market {market:.4f} on the {n_odds} with odds; "
                     f"model {on_elo:.4f} vs Elo-only {elo:.4f} on the {n_elo} with the reference")
    ledger = verify(settings.ledger_dir)
    lines.append(f"prediction ledger {settings.ledger_dir}: {ledger.summary().split(';')[0]}")
    reports = sorted((settings.monitoring_dir / "drift").rglob("*.html"))
    lines.append(f"drift reports (Evidently): {len(reports)} under {settings.monitoring_dir / 'drift'}")
    return lines


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
                  (f"  a prediction          curl -s -X POST {service_url}/predict -H 'content-type: application/json' "
                   f"-d '{body}'"),
                  f"  upcoming matches      {service_url}/matches",
                  f"  model                 {service_url}/model/info",
                  f"  live quality          {service_url}/quality?division=ALL",
                  f"  metrics (Prometheus)  {service_url}/metrics",
                  f"  Streamlit page        time2bet ui --service-url {service_url}  (forecasts and live quality)"]
    if ui_url:
        lines.append(f"  Dagster UI            {ui_url}")
    lines.append(f"  MLflow UI             mlflow ui --backend-store-uri {settings.mlflow_tracking_uri} --port 5000")
    lines.append(f"  the ledger's chains   TIME2BET_HOME={settings.home} time2bet ledger verify")
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
    from mlflow.exceptions import MlflowException

    from time2bet.mlflow_store import registry_client

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
