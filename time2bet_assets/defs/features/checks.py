"""Great Expectations suite on the feature mart, blocking: no model trains on broken features."""

import dagster as dg

from time2bet.serving_contract import FEATURE_COLUMNS
from time2bet_assets.lib.expectations import DataDocsResource, report_to_check_result
from time2bet_assets.lib.warehouse import WarehouseResource


@dg.asset_check(asset=dg.AssetKey(["fct_match_features"]), blocking=True,
                description="Great Expectations: unique ids, valid outcomes, ranges, nulls after warm-up")
def fct_match_features_expectations(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, data_docs: DataDocsResource
) -> dg.AssetCheckResult:
    from time2bet.quality.expectations import feature_expectations, validate

    # warm-up: both teams have 10 earlier matches, so every rolling window is full
    frame = warehouse.open().read_sql(
        "SELECT * FROM analytics.fct_match_features WHERE home_matches_played >= 10 AND away_matches_played >= 10"
    )
    report = validate(frame, "fct_match_features", lambda gx: feature_expectations(gx, list(FEATURE_COLUMNS)),
                      key_columns=["match_id"], docs_dir=data_docs.site("fct_match_features"))
    context.log.info(f"fct_match_features after warm-up ({len(frame)} rows): {report.summary()}")
    return report_to_check_result(report, rows=len(frame))
