"""Shared pieces of the Great Expectations asset checks: where Data Docs go, result -> Dagster check."""

from pathlib import Path

import dagster as dg


class DataDocsResource(dg.ConfigurableResource):
    """Data Docs (HTML) of every validation, one site per suite: an artefact a person can open."""

    root: str

    def site(self, suite: str) -> Path:
        path = Path(self.root) / suite
        path.mkdir(parents=True, exist_ok=True)
        return path


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
