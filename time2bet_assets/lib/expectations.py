"""Great Expectations inside Dagster asset checks: where Data Docs go, validation report -> AssetCheckResult.

The suites and the validation itself are the core library's (``time2bet.quality.expectations``); this is only
the adapter that the checks of every area share.
"""

from functools import cache
from pathlib import Path

import dagster as dg

from time2bet.settings import Settings


class DataDocsResource(dg.ConfigurableResource):
    """Data Docs (HTML) of every validation, one site per suite: an artefact a person can open."""

    root: str

    def site(self, suite: str) -> Path:
        path = Path(self.root) / suite
        path.mkdir(parents=True, exist_ok=True)
        return path


def data_docs_resource(settings: Settings) -> DataDocsResource:
    """The ``data_docs`` resource of every area with a Great Expectations check."""
    return _data_docs(str(settings.home / "quality" / "data-docs"))


@cache
def _data_docs(root: str) -> DataDocsResource:
    # one object per folder, so that areas binding the same key merge (see lib.warehouse._warehouse)
    return DataDocsResource(root=root)


def report_to_check_result(report, *, rows: int) -> dg.AssetCheckResult:
    metadata = {
        "rows_validated": rows,
        "success_percent": round(report.success_percent, 2),
        "failed_expectations": dg.MetadataValue.json(report.failures),
    }
    if report.docs_index:
        metadata["data_docs"] = dg.MetadataValue.path(report.docs_index)
    return dg.AssetCheckResult(
        passed=report.success,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
        description=report.summary(),
    )
