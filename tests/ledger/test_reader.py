"""read_records(): one row per prediction, typed, by day; a torn tail is skipped, garbage refused."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import orjson
import pandas as pd
import pytest

from time2bet.ledger import (
    COLUMNS,
    KickoffDays,
    LedgerRecord,
    PairText,
    match_id,
    match_key,
    read_records,
    record_to_dict,
    verify,
)

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


def paired_record(i: int, pairs, ids, codes, days) -> LedgerRecord:
    """A batch record whose keys and match ids are PairText of the same rows (the service's batches)."""
    codes, ordinals = np.asarray(codes), np.asarray([d.toordinal() for d in days])
    n = len(codes)
    return make_record(i, rows=n, match_key=PairText(pairs, codes, ordinals),
                       match_id=PairText(ids, codes, ordinals, hashed=True), kickoff_date=KickoffDays(ordinals))


def test_a_record_written_by_pair_reads_as_its_keys_and_match_ids(ledger_dir):
    pairs = [("E0", "Arsenal", "Chelsea"), ("SP1", "Atlético Madrid", "Real Madrid"), ("E0", "Chelsea", "Arsenal")]
    ids = [("E0", "england-arsenal", "england-chelsea"), ("SP1", "spain-atletico_madrid", "spain-real_madrid"),
           ("E0", "england-chelsea", "england-arsenal")]
    codes = [1, 0, 0, 2, 1]
    days = [dt.date(2025, 3, 2), dt.date(2025, 3, 2), dt.date(2025, 3, 9), dt.date(2025, 3, 9), dt.date(2025, 4, 1)]
    record = paired_record(0, pairs, ids, codes, days)
    written = record_to_dict(record)["rows"]
    assert "match_key" not in written and "match_id" not in written and written["pair"] == codes
    write_ledger(ledger_dir, "w1", [record])
    frame = read_records(ledger_dir)
    assert frame["match_key"].tolist() == [match_key(pairs[c][0], d, *pairs[c][1:]) for c, d in zip(codes, days)]
    assert frame["match_id"].tolist() == [match_id(ids[c][0], d, *ids[c][1:]) for c, d in zip(codes, days)]
    assert frame["home_team"].tolist() == ["Atlético Madrid", "Arsenal", "Arsenal", "Chelsea", "Atlético Madrid"]
    assert frame["kickoff_date"].tolist() == days and frame["row"].tolist() == list(range(5))
    # the dbt macro's id of a played match: md5 of division|date|home id|away id
    assert match_id("E0", dt.date(2025, 3, 2), "england-arsenal", "england-chelsea") == hashlib.md5(
        b"E0|2025-03-02|england-arsenal|england-chelsea").hexdigest()
    assert verify(ledger_dir, {}).ok


def test_a_pair_edited_in_place_breaks_the_chain_and_bad_pair_codes_are_refused(ledger_dir):
    pairs, ids = [("E0", "Arsenal", "Chelsea")], [("E0", "england-arsenal", "england-chelsea")]
    write_ledger(ledger_dir, "w1", [paired_record(0, pairs, ids, [0, 0], [dt.date(2025, 3, 2), dt.date(2025, 3, 9)])])
    [path] = ledger_dir.glob("*/w1.jsonl")
    line = orjson.loads(path.read_bytes())
    line["record"]["rows"]["pairs"][0][2] = "Tottenham"          # another match, same hash field
    path.write_bytes(orjson.dumps(line) + b"\n")
    assert not verify(ledger_dir, {}).ok
    line["record"]["rows"]["pair"] = [0, 1]                      # a row pointing past the record's pairs
    path.write_bytes(orjson.dumps(line) + b"\n")
    with pytest.raises(ValueError, match=r"w1\.jsonl:1: not a ledger line"):
        read_records(ledger_dir)
