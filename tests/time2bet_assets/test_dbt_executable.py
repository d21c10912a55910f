"""The code location loads without an activated environment: dbt is the one beside the interpreter, also when the
dbt manifest must be prepared at import (a fresh clone has none; `dagster dev` re-parses at every load)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
IMPORT_TIMEOUT_S = 300
BARE_PATH = "/usr/bin:/bin"   # no .venv/bin: `python` started by its path, as `.venv/bin/python bench/ingest.py` is


@pytest.fixture
def checkout(tmp_path) -> Path:
    """The packages and the dbt project in a fresh directory, without dbt's target/ (git ignores it): a fresh
    clone, which leaves the repository's own manifest alone."""
    root = tmp_path / "checkout"
    skip = shutil.ignore_patterns("__pycache__", "target", "logs", "dbt_packages", ".user.yml")
    for name in ("time2bet", "time2bet_assets", "dbt_project", "conf"):
        shutil.copytree(REPO_ROOT / name, root / name, ignore=skip)
    for name in ("pyproject.toml", "dagster.yaml"):
        shutil.copy(REPO_ROOT / name, root / name)
    return root


def load_definitions(checkout: Path, tmp_path: Path, **extra_env: str) -> None:
    if any(Path(d, "dbt").exists() for d in BARE_PATH.split(":")):
        pytest.skip(f"a dbt on {BARE_PATH} would hide the lookup under test")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "DAGSTER_IS_DEV_CLI", "PYTHONHOME")}
    env |= {"PATH": BARE_PATH, "PYTHONPATH": str(checkout), "TIME2BET_HOME": str(tmp_path / "home"),
            "DAGSTER_HOME": str(tmp_path / "dagster"), **extra_env}
    code = ("import time2bet_assets.definitions, time2bet.features.dbt as d; "
            f"assert d.DBT_PROJECT_DIR == __import__('pathlib').Path({str(checkout / 'dbt_project')!r}), "
            "d.DBT_PROJECT_DIR")
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=checkout, capture_output=True, text=True,
                          timeout=IMPORT_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_the_code_location_prepares_the_dbt_manifest_without_dbt_on_path(checkout, tmp_path):
    manifest = checkout / "dbt_project" / "target" / "manifest.json"
    assert not manifest.exists()

    load_definitions(checkout, tmp_path)   # no manifest: parsed at import
    assert manifest.exists()

    parsed = manifest.stat().st_mtime_ns
    os.utime(manifest, ns=(parsed - 10**9, parsed - 10**9))   # up to date, but a second older
    load_definitions(checkout, tmp_path, DAGSTER_IS_DEV_CLI="1")   # `dagster dev`: parsed again at every load
    assert manifest.stat().st_mtime_ns > parsed - 10**9


def test_the_dbt_version_is_read_from_the_installed_package_not_by_running_dbt(monkeypatch):
    """dagster-dbt runs `dbt --version` once per resource, i.e. per dbt step: a process start, and dbt asks PyPI for
    its latest release (a network call at run time). Ours knows the version of the dbt beside the interpreter."""
    import dagster_dbt.core.resource as dagster_dbt_resource
    from dbt.version import __version__ as installed

    from time2bet_assets.defs.features.resources import DBT_EXECUTABLE, WarehouseDbtResource, dbt_project

    def no_process(*args, **kwargs):
        raise AssertionError(f"ran {args}")

    monkeypatch.setattr(dagster_dbt_resource, "check_output", no_process)
    dbt = WarehouseDbtResource(project_dir=dbt_project, warehouse_url="duckdb:////tmp/unused.duckdb",
                               dbt_executable=DBT_EXECUTABLE)
    assert Path(DBT_EXECUTABLE).parent == Path(sys.executable).parent
    assert str(dbt._cli_version) == installed
