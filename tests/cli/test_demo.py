"""`time2bet demo` (time2bet/cli/demo.py). Its end on the session's platform: the forecast service and the Dagster
UI start in the background, one real POST /predict is printed with the URLs to try, and everything started is
stopped again (here with --exit; interactively on Ctrl-C). And the whole command as a newcomer runs it, in a
process of its own on a fresh home: a short console (progress and results), the tools' output in the logs folder,
and a replay that leaves the ledger, live quality and drift behind for the Dagster UI, GET /quality and the page;
then once more on the same home, as a second `make demo` does."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import click
import httpx
import pytest

from time2bet.background import free_port as _free_port


def _gone(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return True
    return False


def test_demo_ends_with_the_service_and_the_ui_then_stops_both(platform_env, service_env_for, tmp_path, capsys):
    from time2bet.cli.demo import run_after_training
    from time2bet.settings import Settings

    settings = Settings.from_env(platform_env)
    serve_port, ui_port = _free_port(), _free_port()
    started = run_after_training(settings, serve=True, serve_port=serve_port, ui=True, ui_port=ui_port, wait=False,
                                 env=service_env_for(platform_env, tmp_path))
    out = capsys.readouterr().out
    service = f"http://127.0.0.1:{serve_port}"
    assert "sample prediction (POST /predict, match_outcome v" in out and "@champion" in out, out
    assert "home " in out and "draw " in out and "away " in out
    for expected in (f"{service}/docs", f"curl -s -X POST {service}/predict", f"{service}/matches",
                     f"{service}/metrics", f"time2bet ui --service-url {service}", f"http://127.0.0.1:{ui_port}",
                     f"mlflow ui --backend-store-uri {settings.mlflow_tracking_uri}"):
        assert expected in out, (expected, out)
    assert [b.name for b in started] == ["forecast service", "Dagster UI"]
    assert not any(b.running for b in started)
    assert _gone(f"{service}/livez") and _gone(f"http://127.0.0.1:{ui_port}/server_info")


def test_a_service_that_never_gets_ready_is_a_clear_error_and_is_stopped(platform_env, service_env_for, tmp_path,
                                                                         monkeypatch):
    from time2bet.cli import demo
    from time2bet.settings import Settings

    # an empty warehouse and no exported snapshot: the service starts but cannot load its serving snapshot, so it
    # never gets ready
    settings = Settings.from_env({**platform_env, "TIME2BET_WAREHOUSE_URL": f"duckdb:///{tmp_path / 'empty.duckdb'}",
                                  "TIME2BET_SERVING_SNAPSHOT_DIR": str(tmp_path / "no-snapshot")})
    monkeypatch.setattr(demo, "SERVICE_READY_TIMEOUT_S", 15)
    serve_port = _free_port()
    with pytest.raises(click.ClickException, match="not ready after 15s"):
        demo.run_after_training(settings, serve=True, serve_port=serve_port, ui=False, wait=False,
                                env=service_env_for(platform_env, tmp_path))
    assert _gone(f"http://127.0.0.1:{serve_port}/livez")


def test_without_a_champion_the_demo_says_so_and_starts_no_service(platform_env, service_env_for, tmp_path, capsys):
    from time2bet.cli.demo import run_after_training
    from time2bet.settings import Settings

    settings = Settings.from_env({**platform_env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}"})
    assert run_after_training(settings, serve=True, serve_port=_free_port(), ui=False, wait=False,
                              env=service_env_for(platform_env, tmp_path)) == []
    assert "no `champion` in the registry" in capsys.readouterr().err


MAX_CONSOLE_LINES = 40
DEMO_TIMEOUT_S = 900


def _run_to_the_end(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``command`` to its end; past DEMO_TIMEOUT_S, SIGTERM first: the demo then stops the service and the UI it
    started in sessions of their own (a SIGKILL would leave them running)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    try:
        out, err = proc.communicate(timeout=DEMO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"the demo did not end within {DEMO_TIMEOUT_S}s:\n{(out + err)[-3000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def test_the_demo_replays_weeks_keeps_its_console_short_and_runs_again_on_its_home(tmp_path):
    """One replayed step instead of the default REPLAY_STEPS (each takes about a minute; the loop is the same), so
    the console budget is checked for the default: a line per step."""
    from time2bet.cli.demo import REPLAY_STEPS
    from time2bet.ledger import verify
    from time2bet.monitoring.store import LIVE_QUALITY_TABLE
    from time2bet.scoreboard_store import Scoreboard
    from time2bet.warehouse.client import Warehouse
    from ui.streamlit_app import cumulative_log_loss

    home = tmp_path / "home"
    site_port, serve_port, ui_port = _free_port(), _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items()   # only the home: nothing of an outer platform may leak in
           if not k.startswith("TIME2BET_") and k not in ("DAGSTER_HOME", "MLFLOW_TRACKING_URI")}
    done = _run_to_the_end([sys.executable, "-m", "time2bet.cli.main", "demo", "--port", str(site_port),
                            "--serve-port", str(serve_port), "--ui-port", str(ui_port), "--replay-steps", "1", "--exit"],
                           env={**env, "TIME2BET_HOME": str(home)}, cwd=tmp_path)
    console = done.stdout + done.stderr
    assert done.returncode == 0, console[-5000:]
    assert len(console.splitlines()) + REPLAY_STEPS - 1 <= MAX_CONSOLE_LINES, console

    # the lines say what happened: training, each replayed step, live quality against the market, the
    # prediction, where to look
    service = f"http://127.0.0.1:{serve_port}"
    assert "champion: match_outcome v" in done.stdout
    steps = re.findall(r"^  (2025-\d\d-\d\d): (\d+) predictions into the ledger, (\d+) matches played, (\d+) scored",
                       done.stdout, flags=re.MULTILINE)
    assert len(steps) == 1 and int(steps[0][3]) > 0, done.stdout   # the round of 1 March, predicted then scored
    version = re.search(r"^live quality of v(\d+) \(champion\) on (\d+) matches predicted before kickoff",
                        done.stdout, flags=re.MULTILINE)
    live = re.search(r"model (\d\.\d+) vs de-margined market (\d\.\d+) on the (\d+) with odds", done.stdout)
    assert version and live and int(live.group(3)) > 0, done.stdout
    assert "sample prediction (POST /predict, match_outcome v" in done.stdout
    for expected in (f"{service}/docs", f"{service}/quality", f"time2bet ui --service-url {service}",
                     f"http://127.0.0.1:{ui_port}", f"logs: {home / 'logs'}"):
        assert expected in done.stdout, (expected, done.stdout)
    assert "Running with dbt" not in console and "Warning" not in console

    # the tools' own output is in the logs folder
    logs = home / "logs"
    assert "Running with dbt" in (logs / "simulate.log").read_text()
    assert (logs / "service.log").stat().st_size > 0 and (logs / "dagster-dev.log").stat().st_size > 0

    # what the replay leaves: an intact ledger, live-quality rows, their export (what GET /quality and the page
    # read) agreeing with the console, and drift reports
    ledger = verify(home / "ledger")
    assert ledger.ok and ledger.predictions > 0, ledger.summary()
    scored = Warehouse.from_url(f"duckdb:///{home / 'warehouse.duckdb'}").read_sql(
        f"SELECT sum(n) AS n FROM {LIVE_QUALITY_TABLE} WHERE \"window\" = 'week' AND division = 'ALL' "
        "AND variant = 'champion'")["n"].iloc[0]
    assert scored == int(version.group(2))
    rows = Scoreboard(home / "monitoring").query(model_version=version.group(1), division="ALL")
    rows = rows[rows["variant"] == "champion"].to_dict("records")
    cumulative = cumulative_log_loss(rows).iloc[-1]
    assert f"{cumulative['model_on_odds']:.4f}" == live.group(1) and f"{cumulative['market']:.4f}" == live.group(2)
    assert list((home / "monitoring" / "drift").rglob("*.html"))
    assert _gone(f"{service}/livez") and _gone(f"http://127.0.0.1:{ui_port}/server_info")

    # `make demo` again on that home: its clock cannot go back to before the replay (the site's files would shrink
    # and be quarantined), so it trains where the replay ended
    again = _run_to_the_end([sys.executable, "-m", "time2bet.cli.main", "demo", "--port", str(site_port),
                             "--no-serve", "--no-ui", "--exit"], env={**env, "TIME2BET_HOME": str(home)}, cwd=tmp_path)
    assert again.returncode == 0, (again.stdout + again.stderr)[-5000:]
    assert f"training again as of {steps[0][0]}, no replay" in again.stdout, again.stdout
    assert verify(home / "ledger").ok
