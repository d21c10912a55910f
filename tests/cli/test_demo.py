"""The end of `time2bet demo` (time2bet/demo.py) on the session's platform: the forecast service and the Dagster
UI start in the background, one real POST /predict is printed with the URLs to try, and everything started is
stopped again (here with --exit; interactively on Ctrl-C). The ingest and training steps before it are the
platform build every serving test already relies on (conftest.build_platform runs the same functions)."""

from __future__ import annotations

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
    import time2bet.cli.demo as demo
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
