"""Resources of the features area: dbt, run against the same warehouse URL as ingestion, and the shared warehouse
(the Python ratings, the Great Expectations check) and Data Docs resources of ``time2bet_assets.lib``.

Every dbt run here, the manifest's preparation included, uses the dbt beside the interpreter (``dbt_executable``):
``.venv/bin/python bench/ingest.py`` or ``.venv/bin/dagster dev`` must work without an activated environment."""

import hashlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import dagster as dg
from dagster._utils import run_with_concurrent_update_guard  # the lock dagster-dbt's own preparer takes
from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from time2bet.features.dbt import DBT_PROJECT_DIR, dbt_executable, dbt_target_env
from time2bet.settings import Settings
from time2bet_assets.lib.expectations import data_docs_resource
from time2bet_assets.lib.warehouse import warehouse_resource

DBT_EXECUTABLE = dbt_executable()
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class LocalDbtResource(DbtCliResource):
    """dagster-dbt's resource without two fixed costs of every dbt step: ``dbt --version`` and a dbt adapter.

    dagster-dbt 0.29 runs ``dbt --version`` once per resource instance, that is once per dbt step of every run: a
    process start (~2.8 s wall, ~1.9 s CPU here, a fifth of a replay's dbt step), and dbt answers it by asking PyPI
    for the latest releases of dbt-core and its adapter (network calls at run time, up to 1 s each offline). The
    dbt beside this interpreter is the dbt-core package installed with it, so its version is that package's; a
    dbt from elsewhere (on PATH) is still asked."""

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            from dbt.version import __version__ as installed  # the package that executable runs

            return version.parse(installed)
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        """No adapter in the step's process: dagster-dbt builds one (~1 s: the adapter's imports and the profile)
        only for its optional row-count and column-metadata fetches, which the platform does not use (a row count
        opens the DuckDB file from the step's process and blocks the warehouse's other connections). dagster-dbt
        runs dbt without it, as it does when building one fails."""


def _manifest_is_stale() -> bool:
    """No manifest yet (fresh checkout, CI: target/ is not committed), or a project file changed since it
    was parsed (a pulled change to the models must change the asset graph, also outside `dagster dev`)."""
    if not dbt_project.manifest_path.exists():
        return True
    parsed = dbt_project.manifest_path.stat().st_mtime
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", *(p for d in ("models", "macros", "seeds", "tests")
                                                      for p in (DBT_PROJECT_DIR / d).rglob("*") if p.is_file())]
    return any(p.stat().st_mtime > parsed for p in sources)


def _prepare_manifest() -> None:
    """What dagster-dbt's preparer does (``dbt deps`` if the project has packages, then ``dbt parse``), with our dbt:
    its preparer builds a DbtCliResource of its own, whose executable is the default, ``dbt`` looked up on PATH,
    and dagster-dbt 0.29 has no way to pass another (DbtProject takes no preparer)."""
    dbt = LocalDbtResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)
    if any((DBT_PROJECT_DIR / name).exists() for name in ("packages.yml", "dependencies.yml")):
        dbt.cli(["deps", "--quiet"], target_path=dbt_project.target_path).wait()
    dbt.cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()


# In place of dbt_project.prepare_if_dev() (re-parse at every load under `dagster dev`) and
# dbt_project.preparer.prepare(dbt_project): the same, with the lock against a concurrent parse (run workers of
# `dagster dev` load the code location as they start), which skips the parse if another process just did it.
if dbt_project.preparer.using_dagster_dev() or _manifest_is_stale():
    run_with_concurrent_update_guard(dbt_project.manifest_path, _prepare_manifest)


PARSE_STATES = DBT_PROJECT_DIR / dbt_project.target_path / "partial-parse"   # one state per warehouse connection
PARTIAL_PARSE = "partial_parse.msgpack"
KEEP_PARSE_STATES = 16


class WarehouseDbtResource(LocalDbtResource):
    """dbt whose profile target and connection come from the platform's warehouse URL.

    Each invocation also starts from this connection's own partial-parse state (``after_build`` saves it, and prunes
    old invocation folders). dagster-dbt seeds every invocation with the project's ``target/partial_parse.msgpack``,
    which the manifest's preparation writes with the profile's default connection; dbt's partial parsing is void
    when the connection differs (its state is keyed by the connection's fields, the DuckDB path included), so every
    dbt step of a platform whose warehouse is not that default re-parsed the whole project: ~2.5 s of each of the
    two dbt steps of every features run (a fifth of a replay step)."""

    warehouse_url: str

    def target_env(self) -> dict[str, str]:
        return dbt_target_env(self.warehouse_url)

    def parse_state(self) -> Path:
        """Where this connection's partial-parse state is kept (keyed by the connection, never its password)."""
        connection = sorted((k, v) for k, v in self.target_env().items() if "PASSWORD" not in k)
        return PARSE_STATES / f"{hashlib.sha256(repr(connection).encode()).hexdigest()[:16]}.msgpack"

    def cli(self, args: Sequence[str], *, target_path: Path | None = None, context=None, **kwargs):
        target_path = target_path or self._get_unique_target_path(context=context)
        state = self.parse_state()
        if state.exists():   # dagster-dbt copies the project's state only where none is yet
            seeded = Path(target_path) if Path(target_path).is_absolute() else DBT_PROJECT_DIR / target_path
            seeded.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(state, seeded / PARTIAL_PARSE)
        return super().cli(args, target_path=target_path, context=context, **kwargs)

    def after_build(self, target_path: Path) -> None:
        """After an invocation whose folder is ``target_path``: keep its partial-parse state, prune old folders."""
        self._keep_parse_state(Path(target_path))
        prune_invocations(Path(target_path).parent)

    def _keep_parse_state(self, target_path: Path) -> None:
        """Save the partial-parse state an invocation wrote in ``target_path``, atomically (runs may overlap)."""
        written = target_path / PARTIAL_PARSE
        if not written.exists():
            return
        PARSE_STATES.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=PARSE_STATES, suffix=".tmp")
        os.close(fd)
        shutil.copyfile(written, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.parse_state())
        # one per warehouse a build ran on (every test's own): the newest few are kept (~0.75 MB each)
        for stale in sorted(PARSE_STATES.glob("*.msgpack"), key=_modified)[:-KEEP_PARSE_STATES]:
            stale.unlink(missing_ok=True)


# dagster-dbt's per-invocation target folders: <op name>-<run id[:7]>-<7 random characters>
INVOCATION_DIR = re.compile(r"^.+-[0-9a-f]{7}-[0-9a-f-]{7}$")
KEEP_INVOCATIONS = 64


def prune_invocations(target: Path, keep: int = KEEP_INVOCATIONS) -> list[Path]:
    """Remove all but the newest ``keep`` dbt invocation folders under ``target``; the ones removed.

    dagster-dbt gives every dbt invocation a target folder of its own (manifest, run results, compiled SQL, its
    dbt.log: ~3 MB) and never removes one: a platform that builds four times a day grew by ~4 GB a year, a test
    run or a season's replay by hundreds of MB. The newest 64 keep the last days' dbt logs for debugging; an
    invocation under way is among the newest (its folder was just written)."""
    if not target.is_dir():
        return []
    found = [p for p in target.iterdir() if p.is_dir() and INVOCATION_DIR.match(p.name) and (p / "dbt.log").exists()]
    stale = sorted(found, key=_modified)[:-keep] if keep > 0 else found
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)   # a concurrent prune may remove it first
    return stale


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:   # another run's pruning took it
        return 0.0


def features_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "dbt": WarehouseDbtResource(
            project_dir=dbt_project,
            warehouse_url=settings.warehouse_url,
            dbt_executable=DBT_EXECUTABLE,
        ),
        "warehouse": warehouse_resource(settings),
        "data_docs": data_docs_resource(settings),
    }
