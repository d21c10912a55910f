"""The layers of docs/architecture.md, enforced: import-linter's contracts (pyproject.toml) hold on this tree, and
a reverse import makes them fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("time2bet", "time2bet_assets", "bento_service", "ui")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path, *args: str) -> subprocess.CompletedProcess:
    # --no-cache: a cache keyed by file times could answer for another tree
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", *args], cwd=root, capture_output=True, text=True,
                          timeout=300)


def test_every_layer_contract_is_kept():
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout and " KEPT" in result.stdout


@pytest.fixture
def tree_copy(tmp_path) -> Path:
    for name in PACKAGES:
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


@pytest.mark.parametrize(("module", "imported", "says"), [
    ("time2bet/ml/metrics.py", "time2bet_assets.definitions", "time2bet.ml is not allowed to import time2bet_assets"),
    ("time2bet/ingestion/raw_zone.py", "time2bet.features.ratings", "time2bet.ingestion is not allowed to import"),
    ("time2bet/settings.py", "time2bet.cli.main", "is not allowed to import time2bet.cli"),
    ("bento_service/model.py", "time2bet_assets.definitions", "bento_service is not allowed to import"),
    ("ui/streamlit_app.py", "time2bet.settings", "ui is not allowed to import time2bet"),
    ("time2bet_assets/defs/ml/assets.py", "time2bet_assets.defs.ingestion.assets",
     "time2bet_assets.defs.ml is not allowed to import time2bet_assets.defs.ingestion"),
    ("time2bet_assets/lib/warehouse.py", "time2bet_assets.defs.ml", "time2bet_assets.lib is not allowed to import"),
])
def test_a_reverse_import_breaks_the_build(tree_copy, module, imported, says):
    with (tree_copy / module).open("a") as f:
        f.write(f"\nimport {imported}  # noqa: E402,F401\n")
    result = _lint_imports(tree_copy)
    assert result.returncode != 0
    assert says in " ".join(result.stdout.split()), result.stdout[-3000:]
