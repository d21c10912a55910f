"""The deploy/ configuration's tests: Debian's Prometheus stack (promtool, amtool, prometheus, alertmanager,
pushgateway), found on PATH; .ci/run installs it. Outside CI a missing binary skips its test (saying how to install
it); in CI (CI=true) it fails it, so that the checks cannot silently stop running."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import click
import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
INSTALL = "apt-get install prometheus prometheus-alertmanager prometheus-pushgateway"


def require_binary(name: str) -> str:
    """The path of ``name`` on PATH; skips the test when it is missing outside CI, fails it in CI."""
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} not found on PATH in CI: .ci/run installs it ({INSTALL})")
    pytest.skip(f"{name} not installed ({INSTALL})")


@pytest.fixture(scope="session")
def binary():
    """binary(name) -> its path (see require_binary)."""
    return require_binary


def started(stack: contextlib.ExitStack, name: str, command: list[str], ready_url: str, log: Path,
            timeout_s: float) -> None:
    """``command`` in the background, stopped (its whole process group) when ``stack`` closes; ready when
    ``ready_url`` answers 200 within ``timeout_s``."""
    from time2bet.background import Background

    process = Background(name, command, dict(os.environ), log).start()
    stack.callback(process.stop)
    try:
        process.wait_ready(ready_url, timeout_s)
    except click.ClickException as exc:
        pytest.fail(exc.message)


def wait_until(condition: Callable[[], object], what: str, timeout_s: float, explain: Callable[[], str] = str):
    """``condition()``'s first truthy result, polled every 0.25 s; the test fails after ``timeout_s`` saying
    ``what`` (and ``explain()``)."""
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s:.0f}s {explain()}".rstrip())
        time.sleep(0.25)
    return result
