"""The deploy/ configuration's tests: Debian's Prometheus stack (promtool, amtool, prometheus, alertmanager,
pushgateway), found on PATH; .ci/run installs it. Outside CI a missing binary skips its test (saying how to install
it); in CI (CI=true) it fails it, so that the checks cannot silently stop running."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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
