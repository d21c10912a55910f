"""The hash chain: lines re-hash to their hash, the chain links by seq and prev, and a round trip keeps every value."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from time2bet.ledger import (
    GENESIS,
    LedgerRecord,
    heads,
    read_records,
    record_to_dict,
    verify,
)
from time2bet.ledger.chain import (
    encode_line,
    last_complete_line,
    rehash,
    safe_writer_id,
)

from .conftest import T0, make_record, write_ledger


def test_a_line_rehashes_to_its_hash_and_links_to_the_previous():
    first, h1 = encode_line("w", 0, GENESIS, record_to_dict(make_record(0)))
    second, h2 = encode_line("w", 1, h1, record_to_dict(make_record(1)))
    a, b = orjson.loads(first), orjson.loads(second)
    assert (a["hash"], b["hash"], b["prev"], a["prev"]) == (h1, h2, h1, GENESIS)
    assert rehash(a) == h1 and rehash(b) == h2
    a["record"]["rows"]["p_home"][0] += 1e-12        # the smallest edit changes the hash
    assert rehash(a) != h1


def test_the_hash_is_reproducible_from_the_written_bytes():
    odd = make_record(0, rows=3, p_home=[1 / 3, 0.1 + 0.2, 5e-324], p_draw=[1 / 7, 0.0, 1.0], p_away=[0.5, 1e-17, 0.0])
    line, digest = encode_line("w", 0, GENESIS, record_to_dict(odd))
    parsed = orjson.loads(line)
    assert rehash(parsed) == digest
    assert parsed["record"]["rows"]["p_home"] == [1 / 3, 0.1 + 0.2, 5e-324]   # floats round-trip exactly


def test_round_trip_through_files(ledger_dir):
    records = [make_record(i, rows=1 + i % 4) for i in range(12)]
    write_ledger(ledger_dir, "w1", records)
    report = verify(ledger_dir, heads(ledger_dir))
    assert report.ok and (report.chains, report.records, report.predictions) == (1, 12, sum(r.n for r in records))
    frame = read_records(ledger_dir)
    assert len(frame) == sum(r.n for r in records)
    first = frame[frame["prediction_id"] == "p000003"]
    assert list(first["row"]) == [0, 1, 2, 3]
    assert list(first["p_home"]) == records[3].p_home and list(first["match_key"]) == records[3].match_key
    assert first["created_at"].iloc[0] == records[3].created_at
    assert first["kickoff_date"].iloc[0] == records[3].kickoff_date[0]
    assert first["features_as_of"].iloc[0] == records[3].features_as_of
    assert (first["division"].iloc[0], first["home_team"].iloc[0]) == ("E0", "Home 3-0")
    assert set(frame["seq"]) == set(range(12)) and set(frame["writer"]) == {"w1"}


def test_a_record_needs_rows_of_equal_length():
    with pytest.raises(ValueError, match="equal length"):
        make_record(0, rows=2, p_draw=[0.3])
    with pytest.raises(ValueError, match="at least one row"):
        make_record(0, rows=0)
    single = LedgerRecord.single(prediction_id="x", created_at=T0, as_of=T0, source="s", model_name="m",
                                 model_version="1", model_alias="champion", variant="champion", data_version=None,
                                 features_as_of=None, match_key="E0|2025-03-02|A|B", match_id=None,
                                 kickoff_date=dt.date(2025, 3, 2), p_home=0.4, p_draw=0.3, p_away=0.3)
    assert single.n == 1 and record_to_dict(single)["rows"]["match_id"] == [None]


def test_numpy_rows_and_naive_timestamps_serialize():
    np = pytest.importorskip("numpy")
    record = make_record(0, rows=2, created_at=dt.datetime(2025, 3, 1, 12), p_home=np.array([0.5, 0.4], "float32"),
                         p_draw=np.array([0.3, 0.3]), p_away=np.array([0.2, 0.3]))
    data = record_to_dict(record)
    assert data["created_at"] == "2025-03-01T12:00:00.000000+00:00"
    assert data["rows"]["p_draw"] == [0.3, 0.3] and isinstance(data["rows"]["p_home"][0], float)


def test_last_complete_line_reads_from_the_end(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"a" * 100 + b"\n" + b"b" * 70_000 + b"\n" + b"torn")
    line, start, end = last_complete_line(path, chunk=1024)
    assert (line, start, end) == (b"b" * 70_000, 101, 70_102)
    path.write_bytes(b"only\n")
    assert last_complete_line(path) == (b"only", 0, 5)
    path.write_bytes(b"torn only")
    assert last_complete_line(path) == (None, 0, 0)


def test_writer_ids_are_file_names():
    assert safe_writer_id("svc-host.local-12-2025") == "svc-host.local-12-2025"
    assert safe_writer_id("a/b c") == "a_b_c"
    with pytest.raises(ValueError):
        safe_writer_id("..")
