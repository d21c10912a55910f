"""Resources of the features area: dbt, run against the same warehouse URL as ingestion, and the shared warehouse
(the Python ratings, the Great Expectations check) and Data Docs resources of ``time2bet_assets.lib``."""

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject

from time2bet.features.dbt import DBT_PROJECT_DIR, dbt_target_env
from time2bet.settings import Settings
from time2bet_assets.lib.expectations import data_docs_resource
from time2bet_assets.lib.warehouse import warehouse_resource

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def _manifest_is_stale() -> bool:
    """No manifest yet (fresh checkout, CI: target/ is not committed), or a project file changed since it
    was parsed (a pulled change to the models must change the asset graph, also outside `dagster dev`)."""
    if not dbt_project.manifest_path.exists():
        return True
    parsed = dbt_project.manifest_path.stat().st_mtime
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", *(p for d in ("models", "macros", "seeds", "tests")
                                                      for p in (DBT_PROJECT_DIR / d).rglob("*") if p.is_file())]
    return any(p.stat().st_mtime > parsed for p in sources)


dbt_project.prepare_if_dev()  # re-parses the project under `dagster dev`
if _manifest_is_stale():
    dbt_project.preparer.prepare(dbt_project)


class WarehouseDbtResource(DbtCliResource):
    """dbt whose profile target and connection come from the platform's warehouse URL."""

    warehouse_url: str

    def target_env(self) -> dict[str, str]:
        return dbt_target_env(self.warehouse_url)


def features_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "dbt": WarehouseDbtResource(
            project_dir=dbt_project,
            warehouse_url=settings.warehouse_url,
            dbt_executable=str(Path(sys.executable).with_name("dbt")),
        ),
        "warehouse": warehouse_resource(settings),
        "data_docs": data_docs_resource(settings),
    }
