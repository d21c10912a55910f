"""verify(): an edited record, a removed record, a truncated chain, a deleted segment are caught; appending after
the anchor is fine; a torn tail is a crash, not tampering."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import orjson

from time2bet.ledger import heads, load_anchors, merge_anchors, save_anchors, verify
from time2bet.ledger.chain import rehash

from .conftest import T0, make_record, write_ledger


def _segment(ledger_dir: Path, writer: str = "w1") -> Path:
    [path] = sorted(ledger_dir.glob(f"*/{writer}.jsonl"))[-1:]
    return path


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _kinds(report) -> list[str]:
    return [p.kind for p in report.problems]


def test_an_intact_ledger_with_two_writers_verifies(ledger_dir):
    write_ledger(ledger_dir, "w1")
    write_ledger(ledger_dir, "w2", [make_record(i, rows=5) for i in range(3)])
    report = verify(ledger_dir, heads(ledger_dir))
    assert report.ok, report.listing()
    assert report.summary() == "2 chains, 13 records, 25 predictions, all intact; 2 of 2 chains anchored"


def test_an_edited_probability_is_caught(ledger_dir):
    write_ledger(ledger_dir, "w1")
    anchors = heads(ledger_dir)
    path = _segment(ledger_dir)
    lines = _lines(path)
    lines[4] = lines[4].replace(b'"p_home":[0.5]', b'"p_home":[0.55]')
    path.write_bytes(b"".join(lines))
    report = verify(ledger_dir, anchors)
    assert _kinds(report) == ["edited"]
    assert report.problems[0].line == 5 and "seq 4" in report.problems[0].detail


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(ledger_dir):
    write_ledger(ledger_dir, "w1")
    path = _segment(ledger_dir)
    lines = _lines(path)
    obj = orjson.loads(lines[4])
    obj["record"]["rows"]["p_home"] = [0.9]
    obj["hash"] = rehash(obj)
    lines[4] = orjson.dumps(obj) + b"\n"
    path.write_bytes(b"".join(lines))
    report = verify(ledger_dir)
    assert _kinds(report) == ["broken_chain"] and report.problems[0].line == 6


def test_a_record_removed_in_the_middle_is_caught(ledger_dir):
    write_ledger(ledger_dir, "w1")
    path = _segment(ledger_dir)
    lines = _lines(path)
    del lines[5]
    path.write_bytes(b"".join(lines))
    report = verify(ledger_dir)          # no anchor needed
    assert _kinds(report) == ["broken_chain"] and "seq 5 missing (removed)" in report.problems[0].detail


def test_reordered_records_are_caught(ledger_dir):
    write_ledger(ledger_dir, "w1")
    path = _segment(ledger_dir)
    lines = _lines(path)
    lines[3], lines[4] = lines[4], lines[3]
    path.write_bytes(b"".join(lines))
    assert set(_kinds(verify(ledger_dir))) == {"broken_chain"}


def test_the_last_record_removed_before_the_anchor_is_caught(ledger_dir):
    write_ledger(ledger_dir, "w1")
    anchors = heads(ledger_dir)
    path = _segment(ledger_dir)
    path.write_bytes(b"".join(_lines(path)[:-1]))
    assert verify(ledger_dir).ok         # without the anchor nothing shows it ...
    report = verify(ledger_dir, anchors)  # ... with it, it does
    assert _kinds(report) == ["truncated"] and "anchored at seq 9" in report.problems[0].detail


def test_a_rewritten_chain_differs_from_the_anchor(ledger_dir, tmp_path):
    write_ledger(ledger_dir, "w1")
    anchors = heads(ledger_dir)
    shutil.rmtree(ledger_dir)            # the whole chain written again, with one probability changed
    write_ledger(ledger_dir, "w1", [make_record(i, p_home=[0.5 if i != 2 else 0.6]) for i in range(10)])
    assert verify(ledger_dir).ok
    assert _kinds(verify(ledger_dir, anchors)) == ["anchor_mismatch"]


def test_deleted_segment_files_are_caught(ledger_dir):
    days = [T0, T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2)]
    write_ledger(ledger_dir, "w1", [make_record(i, day=d) for d in days for i in range(4)])
    assert [p.parent.name for p in sorted(ledger_dir.glob("*/w1.jsonl"))] == ["2025-03-01", "2025-03-02",
                                                                              "2025-03-03"]
    anchors = heads(ledger_dir)
    assert anchors["w1"].seq == 11 and anchors["w1"].segment == "2025-03-03/w1.jsonl"
    middle, last = ledger_dir / "2025-03-02", ledger_dir / "2025-03-03"
    shutil.move(middle, middle.with_name("moved-away"))
    report = verify(ledger_dir, anchors)   # the middle segment: a gap in the chain
    assert _kinds(report) == ["broken_chain"] and "seq 4..7 missing" in report.problems[0].detail
    shutil.move(middle.with_name("moved-away"), middle)
    shutil.rmtree(last)                    # the newest segment: only the anchor knows
    assert verify(ledger_dir).ok
    assert _kinds(verify(ledger_dir, anchors)) == ["truncated"]
    shutil.rmtree(ledger_dir / "2025-03-01")   # the oldest segment: seq 0 is missing
    assert "oldest records" in verify(ledger_dir).problems[0].detail


def test_a_whole_chain_deleted_is_caught(ledger_dir):
    write_ledger(ledger_dir, "w1")
    write_ledger(ledger_dir, "w2")
    anchors = heads(ledger_dir)
    for path in ledger_dir.glob("*/w2.jsonl"):
        path.unlink()
    report = verify(ledger_dir, anchors)
    assert _kinds(report) == ["truncated"] and report.problems[0].writer == "w2"


def test_records_appended_after_the_anchor_are_accepted(ledger_dir, tmp_path):
    write_ledger(ledger_dir, "w1", [make_record(i) for i in range(5)])
    save_anchors(tmp_path / "anchors.json", heads(ledger_dir))
    write_ledger(ledger_dir, "w1", [make_record(i) for i in range(5, 9)])   # the same writer continues its chain
    report = verify(ledger_dir, load_anchors(tmp_path / "anchors.json"))
    assert report.ok, report.listing()
    assert report.records == 9 and report.heads["w1"].seq == 8


def test_every_anchor_of_several_is_checked(ledger_dir, tmp_path):
    write_ledger(ledger_dir, "w1", [make_record(i) for i in range(5)])
    early = heads(ledger_dir)
    write_ledger(ledger_dir, "w1", [make_record(i) for i in range(5, 9)])
    late = heads(ledger_dir)
    assert verify(ledger_dir, merge_anchors(early, late)).ok
    path = _segment(ledger_dir)          # rewrite the chain from seq 2 on, recomputing every hash ...
    lines = [orjson.loads(line) for line in _lines(path)]
    lines[2]["record"]["rows"]["p_home"] = [0.7]
    for index in range(2, len(lines)):
        lines[index]["prev"] = lines[index - 1]["hash"]
        lines[index]["hash"] = rehash(lines[index])
    path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in lines))
    assert verify(ledger_dir).ok          # ... so only anchors see it, each one
    assert _kinds(verify(ledger_dir, early)) == ["anchor_mismatch"]
    assert _kinds(verify(ledger_dir, merge_anchors(early, late))) == ["anchor_mismatch", "anchor_mismatch"]


def test_a_torn_tail_is_a_crash_not_tampering(ledger_dir):
    write_ledger(ledger_dir, "w1")
    anchors = heads(ledger_dir)
    path = _segment(ledger_dir)
    partial = _lines(path)[3][:57]
    with open(path, "ab") as f:          # the start of an 11th record, cut short
        f.write(partial)
    report = verify(ledger_dir, anchors)
    assert report.ok and report.records == 10
    assert [t.kind for t in report.torn_tails] == ["torn_tail"] and report.torn_tails[0].line == 11
    assert "torn tail" in report.summary() and "all intact" in report.summary()
    assert heads(ledger_dir) == anchors
    path.write_bytes(b"".join(_lines(path)[:-2]) + _lines(path)[-2][:40])   # a cut into an anchored record
    report = verify(ledger_dir, anchors)
    assert _kinds(report) == ["truncated"] and len(report.torn_tails) == 1


def test_a_torn_line_in_an_older_segment_is_a_problem(ledger_dir):
    write_ledger(ledger_dir, "w1", [make_record(i, day=d) for d in (T0, T0 + dt.timedelta(days=1)) for i in range(3)])
    old = ledger_dir / "2025-03-01" / "w1.jsonl"
    old.write_bytes(old.read_bytes()[:-1])   # its last newline removed
    report = verify(ledger_dir)
    assert "malformed" in _kinds(report) and not report.torn_tails


def test_garbage_lines_are_malformed(ledger_dir):
    write_ledger(ledger_dir, "w1")
    path = _segment(ledger_dir)
    lines = _lines(path)
    lines.insert(2, b"not json\n")
    path.write_bytes(b"".join(lines))
    assert _kinds(verify(ledger_dir)) == ["malformed"]
