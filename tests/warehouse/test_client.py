"""Partitions are replaced atomically and idempotently, on DuckDB and on PostgreSQL alike."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from time2bet.warehouse.client import PartitionLoad, Warehouse
from time2bet.warehouse.schema import MATCH_COLUMNS


def _frame(division: str, season: str, n: int, goals: int = 1) -> pd.DataFrame:
    """A minimal typed frame in the canonical schema (other columns null)."""
    rows = []
    for i in range(n):
        row = {c: None for c in MATCH_COLUMNS}
        row |= {
            "division": division, "season": season, "match_date": dt.date(2019, 8, 10) + dt.timedelta(days=7 * i),
            "home_team": f"Home {i}", "away_team": f"Away {i}", "home_goals": goals, "away_goals": 0,
            "result": "H" if goals else "D", "source_row": i + 2,
        }
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(MATCH_COLUMNS))
    frame["match_date"] = pd.to_datetime(frame["match_date"])
    for col, kind in MATCH_COLUMNS.items():
        if kind == "int":
            frame[col] = frame[col].astype("Int64")
        elif kind == "double":
            frame[col] = frame[col].astype("float64")
    return frame


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path) -> Warehouse:
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    else:
        url = request.getfixturevalue("postgres_db")
    wh = Warehouse.from_url(url)
    wh.ensure_raw_tables()
    return wh


def _load(division, season, frame, sha="a" * 64):
    return PartitionLoad(division, season, frame, sha, f"raw/{division}/{season}", "http://x/y.csv")


def test_replacing_a_partition_twice_leaves_the_same_rows(warehouse):
    load = _load("E0", "2019-20", _frame("E0", "2019-20", 5))
    warehouse.replace_match_partitions([load])
    warehouse.replace_match_partitions([load])
    counts = warehouse.read_sql("SELECT division, season, count(*) AS n FROM raw.matches GROUP BY 1, 2")
    assert counts.to_dict("records") == [{"division": "E0", "season": "2019-20", "n": 5}]
    assert warehouse.loaded_match_files() == {("E0", "2019-20"): "a" * 64}


def test_replacing_one_partition_keeps_the_others(warehouse):
    warehouse.replace_match_partitions([
        _load("E0", "2019-20", _frame("E0", "2019-20", 5)),
        _load("E0", "2020-21", _frame("E0", "2020-21", 3)),
    ])
    warehouse.replace_match_partitions([_load("E0", "2019-20", _frame("E0", "2019-20", 2), sha="b" * 64)])
    counts = warehouse.read_sql("SELECT season, count(*) AS n FROM raw.matches GROUP BY 1 ORDER BY 1")
    assert counts.to_dict("records") == [{"season": "2019-20", "n": 2}, {"season": "2020-21", "n": 3}]
    files = warehouse.read_sql("SELECT season, sha256, rows FROM raw.match_files ORDER BY 1")
    assert files.to_dict("records") == [
        {"season": "2019-20", "sha256": "b" * 64, "rows": 2},
        {"season": "2020-21", "sha256": "a" * 64, "rows": 3},
    ]


def test_a_failing_load_leaves_the_previous_partition_untouched(warehouse):
    warehouse.replace_match_partitions([_load("E0", "2019-20", _frame("E0", "2019-20", 4))])
    broken = _frame("E0", "2019-20", 6)
    broken["home_goals"] = broken["home_goals"].astype(object)
    broken.loc[3, "home_goals"] = "not a number"  # the engine refuses the insert midway
    with pytest.raises(Exception):  # noqa: B017 - each engine raises its own error type
        warehouse.replace_match_partitions([_load("E0", "2019-20", broken, sha="c" * 64)])
    counts = warehouse.read_sql("SELECT count(*) AS n FROM raw.matches")
    assert int(counts["n"].iloc[0]) == 4
    assert warehouse.loaded_match_files() == {("E0", "2019-20"): "a" * 64}


def test_replace_table_creates_then_replaces_a_derived_table(warehouse):
    first = pd.DataFrame({"match_id": ["a", "b"], "elo": [1500.0, 1490.5], "n": [1, 2],
                          "day": pd.to_datetime(["2020-01-01", "2020-01-02"])})
    warehouse.replace_table("ratings.match_ratings", first)
    warehouse.replace_table("ratings.match_ratings", first.iloc[:1])
    back = warehouse.read_sql("SELECT * FROM ratings.match_ratings")
    assert back["match_id"].tolist() == ["a"] and back["elo"].tolist() == [1500.0]
