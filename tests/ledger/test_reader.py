"""read_records(): one row per prediction, typed, by day; a torn tail is skipped, garbage refused."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from time2bet.ledger import COLUMNS, read_records

from .conftest import T0, make_record, write_ledger


def test_an_empty_ledger_is_an_empty_frame_with_the_columns(ledger_dir):
    frame = read_records(ledger_dir)
    assert list(frame.columns) == COLUMNS and frame.empty


def test_batch_records_explode_into_typed_rows(ledger_dir):
    write_ledger(ledger_dir, "w1", [make_record(0, rows=3), make_record(1, features_as_of=None, model_family="xgb")])
    write_ledger(ledger_dir, "w2", [make_record(2, day=T0 + dt.timedelta(days=1), as_of=T0 - dt.timedelta(days=30))])
    frame = read_records(ledger_dir)
    assert list(frame.columns) == COLUMNS and len(frame) == 5
    assert str(frame["created_at"].dtype) == "datetime64[ns, UTC]" and frame["p_away"].dtype == "float64"
    assert list(frame["row"]) == [0, 1, 2, 0, 0]
    assert isinstance(frame["kickoff_date"].iloc[0], dt.date)
    assert pd.isna(frame["features_as_of"].iloc[3]) and frame["model_family"].iloc[3] == "xgb"
    replayed = frame[frame["writer"] == "w2"].iloc[0]
    assert replayed["as_of"] == T0 - dt.timedelta(days=30) and replayed["day"] == dt.date(2025, 3, 2)
    assert len(read_records(ledger_dir, day="2025-03-02")) == 1
    assert len(read_records(ledger_dir, day=dt.date(2025, 3, 1))) == 4


def test_a_torn_tail_is_skipped_and_garbage_refused(ledger_dir):
    write_ledger(ledger_dir, "w1")
    [path] = ledger_dir.glob("*/w1.jsonl")
    with open(path, "ab") as f:
        f.write(b'{"prev":')
    assert len(read_records(ledger_dir)) == 10
    path.write_bytes(path.read_bytes() + b'"x"}\n')
    with pytest.raises(ValueError, match=r"w1\.jsonl:11: not a ledger line"):
        read_records(ledger_dir)


def test_a_record_with_per_row_clocks_gives_each_row_its_own(ledger_dir):
    clocks = [T0 + dt.timedelta(milliseconds=k) for k in range(3)]
    replayed = [T0 - dt.timedelta(days=k) for k in range(3)]
    write_ledger(ledger_dir, "w1", [make_record(0, rows=3, created_at=clocks[-1], as_of=clocks[-1],
                                                row_created_at=clocks, row_as_of=replayed)])
    frame = read_records(ledger_dir)
    assert frame["created_at"].tolist() == clocks and frame["as_of"].tolist() == replayed
    assert frame["prediction_id"].nunique() == 1 and list(frame["row"]) == [0, 1, 2]


def test_per_row_clocks_must_come_in_pairs_and_cover_every_row():
    with pytest.raises(ValueError, match="per-row clocks"):
        make_record(0, rows=2, row_created_at=[T0, T0])
    with pytest.raises(ValueError, match="per-row clocks"):
        make_record(0, rows=2, row_created_at=[T0], row_as_of=[T0])
