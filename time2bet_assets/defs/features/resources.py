"""Resources of the features area: dbt, run against the same warehouse URL as ingestion."""

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject

from time2bet.features.dbt import DBT_PROJECT_DIR, dbt_target_env
from time2bet.settings import Settings

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()  # re-parses the project under `dagster dev`
if not dbt_project.manifest_path.exists():  # fresh checkout, CI, CLI: parse once (target/ is not committed)
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
        )
    }
