"""One settings object (time2bet/settings.py): every environment variable is read there, and documented."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from time2bet.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CODE = ("time2bet", "time2bet_assets", "bento_service")   # ui/ is a pure HTTP client: it never imports the platform


def _environment_reads(tree: ast.AST) -> list[int]:
    """Lines that read a variable: os.environ.get(...), os.environ[...], os.getenv(...). Passing os.environ on
    whole to a child process, or setting a default for a library (setdefault), is not a read."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if node.func.attr == "get" and isinstance(target, ast.Attribute) \
                    and target.attr == "environ":
                lines.append(node.lineno)
            if node.func.attr == "getenv":
                lines.append(node.lineno)
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "environ" and isinstance(node.ctx, ast.Load):
            lines.append(node.lineno)
    return lines


def test_no_module_reads_the_environment_but_settings():
    offenders = []
    for package in CODE:
        for path in sorted((REPO / package).rglob("*.py")):
            if path == REPO / "time2bet" / "settings.py":
                continue
            for line in _environment_reads(ast.parse(path.read_text(), str(path))):
                offenders.append(f"{path.relative_to(REPO)}:{line}")
    assert not offenders, f"environment read outside time2bet/settings.py: {offenders}"


def test_every_variable_settings_reads_is_in_the_readme_table():
    source = (REPO / "time2bet" / "settings.py").read_text()
    read = set(re.findall(r'env\.get\("([A-Z0-9_]+)"', source))
    readme = (REPO / "README.md").read_text()
    table = {m for m in re.findall(r"^\| `([A-Z0-9_]+)`", readme, flags=re.MULTILINE)}
    assert read, "no variables found in settings.py"
    assert read <= table, f"variables missing from the README's configuration table: {sorted(read - table)}"


def test_defaults_and_overrides(tmp_path):
    s = Settings.from_env({"TIME2BET_HOME": str(tmp_path)})
    assert s.warehouse_url == f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    assert s.dagster_home == tmp_path / "dagster" and not s.dagster_postgres
    assert (s.model_name, s.challenger_share, s.model_poll_s) == ("match_outcome", 0.0, 30.0)
    s = Settings.from_env({"TIME2BET_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "d"),
                           "DAGSTER_PG_HOST": "db", "TIME2BET_CHALLENGER_SHARE": "0.25",
                           "TIME2BET_MODEL_POLL_S": "0", "TIME2BET_SERVICE_URL": "http://x:1/"})
    assert s.dagster_home == tmp_path / "d" and s.dagster_postgres
    assert (s.challenger_share, s.model_poll_s, s.service_url) == (0.25, 0.1, "http://x:1")


@pytest.mark.parametrize(("env", "says"), [({"TIME2BET_CHALLENGER_SHARE": "1.5"}, "TIME2BET_CHALLENGER_SHARE"),
                                           ({"TIME2BET_DIVISIONS": "E0,XX"}, "TIME2BET_DIVISIONS"),
                                           ({"TIME2BET_FIRST_SEASON": "1993"}, "season label")])
def test_bad_values_are_refused_clearly(env, says, tmp_path):
    with pytest.raises(ValueError, match=says):
        Settings.from_env({"TIME2BET_HOME": str(tmp_path), **env})


def test_the_service_ledger_is_on_unless_turned_off():
    assert Settings.from_env({}).ledger_enabled
    assert Settings.from_env({"TIME2BET_LEDGER": "1"}).ledger_enabled
    assert not Settings.from_env({"TIME2BET_LEDGER": "0"}).ledger_enabled


def test_routes_come_from_the_variable_or_the_configuration_and_default_to_none():
    """Several models (TIME2BET_ROUTES, conf serving.routes): no route by default, so the pooled model answers all."""
    assert Settings.from_env({}).routes == ()
    routed = Settings.from_env({"TIME2BET_ROUTES": "E0=match_outcome_e0, SP1=match_outcome_sp1"})
    assert routed.routes == (("E0", "match_outcome_e0"), ("SP1", "match_outcome_sp1"))
    assert (routed.model_for("E0"), routed.model_for("D1")) == ("match_outcome_e0", "match_outcome")
    assert Settings.from_env({}, overrides=["+serving.routes.SP1=m_sp1"]).routes == (("SP1", "m_sp1"),)
    for bad in ("XX=m", "E0=", "E0=a,E0=b"):
        with pytest.raises(ValueError, match="TIME2BET_ROUTES"):
            Settings.from_env({"TIME2BET_ROUTES": bad})
