"""The monitoring tables: a partition is replaced in one transaction, the others stay, re-running leaves the same
rows, and the ledger's rows come back as read_records gives them (DuckDB and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from time2bet.ledger import read_records
from time2bet.monitoring import store
from time2bet.warehouse.client import Warehouse

from .conftest import UTC, record, write


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path) -> Warehouse:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}" if request.param == "duckdb" else request.getfixturevalue("postgres_db")
    wh = Warehouse.from_url(url)
    wh.ensure_raw_tables()
    return wh


def test_a_day_of_the_ledger_replaces_its_partition_only(warehouse, tmp_path, matches):
    write(tmp_path / "l", "w", [record(matches, as_of=dt.datetime(2025, 2, 28, tzinfo=UTC), seed=1),
                                record(matches.iloc[:3], as_of=dt.datetime(2025, 2, 28, tzinfo=UTC), with_ids=False)])
    rows = read_records(tmp_path / "l")
    day = rows["day"].iloc[0]
    other = store.ledger_rows_for_table(rows.assign(day=dt.date(2025, 1, 1)))
    assert store.replace_partition(warehouse, store.LEDGER_TABLE, other, key="day", value=dt.date(2025, 1, 1)) \
        == len(rows)
    for _ in range(2):   # idempotent
        written = store.replace_partition(warehouse, store.LEDGER_TABLE, store.ledger_rows_for_table(rows),
                                          key="day", value=day)
        assert written == len(rows)
    table = warehouse.read_sql(f"SELECT * FROM {store.LEDGER_TABLE} ORDER BY day, writer, seq, record_row")
    assert len(table) == 2 * len(rows)
    assert list(table.columns) == list(store.LEDGER_PREDICTIONS)
    back = store.ledger_rows_from_table(table[pd.to_datetime(table["day"]).dt.date == day]).reset_index(drop=True)
    expected = rows.sort_values(["writer", "seq", "row"]).reset_index(drop=True)
    for column in ("match_id", "match_key", "model_version", "variant", "division", "home_team", "p_home", "p_away",
                   "kickoff_date", "seq", "row"):
        assert back[column].tolist() == expected[column].tolist(), column
    assert (back["as_of"] == expected["as_of"]).all() and (back["created_at"] == expected["created_at"]).all()
    assert back["match_id"].isna().sum() == 3   # a prediction without a match id stays without one
    store.replace_partition(warehouse, store.LEDGER_TABLE, store.ledger_rows_for_table(rows.iloc[:0]), key="day",
                            value=day)
    left = warehouse.read_sql(f"SELECT DISTINCT day FROM {store.LEDGER_TABLE}")
    assert pd.to_datetime(left["day"]).dt.date.tolist() == [dt.date(2025, 1, 1)]


def test_the_other_tables_take_their_rows_and_refuse_unknown_ones(warehouse):
    week = dt.date(2025, 2, 24)
    drift = pd.DataFrame([{"week": week, "model_name": "m", "model_version": "2", "kind": "feature",
                           "column_name": "elo_diff", "method": "ks", "statistic": 0.2, "threshold": 0.05,
                           "drifted": False, "n_reference": 10, "n_current": 3, "report_path": None,
                           "computed_at": dt.datetime.now(UTC)}])
    assert store.replace_partition(warehouse, store.DRIFT_TABLE, drift, key="week", value=week) == 1
    back = warehouse.read_sql(f"SELECT * FROM {store.DRIFT_TABLE}")
    assert back["drifted"].tolist() == [False] and back["statistic"].tolist() == [0.2]
    assert store.table_exists(warehouse, store.DRIFT_TABLE) and not store.table_exists(warehouse,
                                                                                       store.LIVE_QUALITY_TABLE)
    with pytest.raises(ValueError, match="not a monitoring table"):
        store.replace_partition(warehouse, "raw.matches", drift, key="week", value=week)
    with pytest.raises(KeyError, match="columns missing"):
        store.replace_partition(warehouse, store.DRIFT_TABLE, drift.drop(columns=["kind"]), key="week", value=week)
