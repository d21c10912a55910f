"""Run the repo's dbt project (dbt_project/) against the platform's warehouse, named by one URL.

dbt reads its connection from environment variables (dbt_project/profiles.yml); ``dbt_target_env`` derives
them from the same ``duckdb:///<path>`` or ``postgresql://user:pw@host:port/db`` URL ingestion writes to, so
the two can never point at different warehouses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from time2bet.settings import masked

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
_TAIL_LINES = 60


class DbtError(RuntimeError):
    """A dbt command failed; the message ends with the tail of its output."""

    def __init__(self, message: str, result: subprocess.CompletedProcess):
        super().__init__(message)
        self.result = result


def dbt_executable() -> str:
    """The dbt beside this interpreter (the venv's), so a command started as ``.venv/bin/python ...`` needs no
    activated environment (PATH without .venv/bin); the one on PATH only if there is none beside it."""
    beside = Path(sys.executable).with_name("dbt")  # not resolved: the venv's python is a symlink out of the venv
    return str(beside) if beside.is_file() else (shutil.which("dbt") or "dbt")


def dbt_target_env(warehouse_url: str) -> dict[str, str]:
    """The profile's target (DBT_TARGET) and connection variables for a warehouse URL."""
    if warehouse_url.startswith("duckdb:///"):
        path = warehouse_url.removeprefix("duckdb:///")
        if not path:
            raise ValueError(f"no database file in {warehouse_url!r}: use duckdb:///<path>")
        return {"DBT_TARGET": "duckdb", "TIME2BET_DUCKDB_PATH": path}
    if warehouse_url.startswith(("postgresql://", "postgres://")):
        url = urlsplit(warehouse_url)
        dbname = unquote(url.path.lstrip("/"))
        if not (url.hostname and url.username and dbname):
            raise ValueError(f"{masked(warehouse_url)!r} needs a user, a host and a database name")
        return {
            "DBT_TARGET": "postgres",
            "TIME2BET_PG_HOST": url.hostname,
            "TIME2BET_PG_PORT": str(url.port or 5432),
            "TIME2BET_PG_USER": unquote(url.username),
            "TIME2BET_PG_PASSWORD": unquote(url.password or ""),
            "TIME2BET_PG_DBNAME": dbname,
        }
    raise ValueError(f"unsupported warehouse URL {masked(warehouse_url)!r}: use duckdb:///<path> or postgresql://...")


def run_dbt(args: list[str], warehouse_url: str) -> subprocess.CompletedProcess:
    """``dbt <args>`` on the repo's project and the given warehouse; raises DbtError when dbt fails.

    Uses the dbt executable beside this interpreter (the venv's), so no PATH setup is needed.
    """
    command = [dbt_executable(), *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    env = os.environ | dbt_target_env(warehouse_url) | {"DBT_USE_COLORS": "false", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run(
        command, cwd=DBT_PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-_TAIL_LINES:])
        raise DbtError(f"dbt {' '.join(args)} failed (exit {result.returncode}):\n{tail}", result)
    return result


# The marts join the Python ratings, so a build is two dbt steps around them (Dagster runs the same steps as
# the assets football_staging_dbt -> team_ratings -> football_marts_dbt).
MARTS_SELECTOR = "source:ratings+"


def build_features(warehouse_url: str, command: str = "build", extra_args: list[str] | None = None) -> None:
    """The features outside Dagster (tests, scripts): ``dbt <command>`` of everything the ratings need, the
    ratings (time2bet.features.ratings.rebuild_rating_tables), then ``dbt <command>`` of the marts."""
    from time2bet.features.ratings import rebuild_rating_tables
    from time2bet.warehouse.client import Warehouse

    extra = list(extra_args or [])
    run_dbt([command, "--exclude", MARTS_SELECTOR, *extra], warehouse_url)
    rebuild_rating_tables(Warehouse.from_url(warehouse_url))
    run_dbt([command, "--select", MARTS_SELECTOR, *extra], warehouse_url)
