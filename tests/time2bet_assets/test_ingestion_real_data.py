"""A slice of the real football-data mirror, crawled through the replay server into DuckDB by the assets."""

from __future__ import annotations

import pandas as pd
import pytest

from time2bet.source.mirror import ReplayServer
from time2bet.warehouse.client import Warehouse
from time2bet_assets.definitions import build_definitions
from time2bet_assets.defs.ingestion.backfill import run_season_file_backfill

DIVISIONS = ["E0", "D1", "I1"]
SEASONS = ["2018-19", "2019-20", "2020-21"]


@pytest.mark.realdata
def test_real_season_files_load_with_the_manifest_row_counts(real_data_root, platform, instance):
    with ReplayServer(real_data_root, encoding="latin-1") as server:
        settings, _ = platform(server.url)
        defs = build_definitions(settings)
        results = run_season_file_backfill(defs, instance, DIVISIONS, SEASONS)
    assert [r.success for r in results] == [True]  # one contiguous range -> one run
    manifest = pd.read_csv(real_data_root / "MANIFEST.csv")
    expected = manifest[manifest["division"].isin(DIVISIONS) & manifest["season"].isin(SEASONS)]
    loaded = Warehouse.from_url(settings.warehouse_url).read_sql(
        "SELECT division, season, count(*) AS rows, min(match_date) AS first_date FROM raw.matches GROUP BY 1, 2"
    )
    merged = expected.merge(loaded, on=["division", "season"], suffixes=("_manifest", "_loaded"))
    assert len(merged) == len(expected) == 9
    assert (merged["rows_manifest"] == merged["rows_loaded"]).all()
    assert (pd.to_datetime(merged["first_date_manifest"]) == pd.to_datetime(merged["first_date_loaded"])).all()
