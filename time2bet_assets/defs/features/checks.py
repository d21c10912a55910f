"""Great Expectations suite on the feature mart, blocking: no model trains on broken features."""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from time2bet.serving_contract import FEATURE_COLUMNS
from time2bet_assets.defs.features.assets import football_marts_dbt
from time2bet_assets.defs.ingestion.resources import WarehouseResource
from time2bet_assets.defs.quality import DataDocsResource, report_to_check_result

FCT_MATCH_FEATURES = get_asset_key_for_model([football_marts_dbt], "fct_match_features")
UPCOMING_MATCH_FEATURES = get_asset_key_for_model([football_marts_dbt], "upcoming_match_features")


@dg.asset_check(asset=FCT_MATCH_FEATURES, blocking=True,
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
