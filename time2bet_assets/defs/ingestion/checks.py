"""Great Expectations suite on raw.matches as a blocking asset check (run before features are built)."""

import dagster as dg

from time2bet_assets.lib.expectations import DataDocsResource, report_to_check_result
from time2bet_assets.lib.warehouse import WarehouseResource


@dg.asset_check(asset=dg.AssetKey(["raw_matches"]), blocking=True,
                description="Great Expectations: schema, types, ranges, uniqueness, dates, odds of raw.matches")
def raw_matches_expectations(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, data_docs: DataDocsResource
) -> dg.AssetCheckResult:
    from time2bet.quality.expectations import raw_matches_expectations as suite
    from time2bet.quality.expectations import validate

    frame = warehouse.open().read_sql("SELECT * FROM raw.matches")
    report = validate(frame, "raw_matches", suite, key_columns=["division", "season", "source_row"],
                      docs_dir=data_docs.site("raw_matches"))
    context.log.info(f"raw.matches ({len(frame)} rows): {report.summary()}")
    return report_to_check_result(report, rows=len(frame))
