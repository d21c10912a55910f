"""A small, complete platform built from the sample site: warehouse, features, a registered ``champion``.

Used by the serving tests (tests/bento_service/conftest.py) and the serving benchmark (bench/serve.py), so both
exercise the same thing: sample site -> replay server on loopback -> ingest -> features (dbt) -> training.
"""

from __future__ import annotations

import os
from pathlib import Path


def env_for(root: Path) -> dict[str, str]:
    """Every location explicit (under ``root/home``), so an outer environment (say a real MLFLOW_TRACKING_URI)
    cannot leak in."""
    return env_for_home(root / "home")


def env_for_home(home: Path) -> dict[str, str]:
    """The same for an existing platform's TIME2BET_HOME (``root/home`` of :func:`build_platform`)."""
    home = Path(home).absolute()
    return {
        "TIME2BET_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "TIME2BET_WAREHOUSE_URL": f"duckdb:///{home / 'warehouse.duckdb'}",
        "TIME2BET_RAW_ZONE": str(home / "raw"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "TIME2BET_MLFLOW_ARTIFACTS": str(home / "mlartifacts"),
    }


def build_platform(root: Path, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """Sample site -> replay server -> ingest -> features + training; returns the env the platform used.
    ``extra_env`` overrides the embedded defaults, e.g. a PostgreSQL TIME2BET_WAREHOUSE_URL.

    The process environment is changed only while building and restored afterwards."""
    from time2bet.cli.main import run_ingest, run_training
    from time2bet.settings import Settings
    from time2bet.source.mirror import ReplayServer
    from time2bet.source.sample_site import DEFAULT_AS_OF, generate_sample_site

    site = root / "site"
    generate_sample_site(site)
    env = {**env_for(root), **(extra_env or {})}
    saved = dict(os.environ)
    try:
        with ReplayServer(site, as_of=DEFAULT_AS_OF) as server:
            os.environ.update(env)
            os.environ["TIME2BET_SOURCE_URL"] = server.url
            settings = Settings.from_env()
            if not run_ingest(settings, None, None, True):
                raise RuntimeError("ingestion failed")
            if not run_training(settings):
                raise RuntimeError("training failed")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return env
