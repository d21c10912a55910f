"""A day of the ledger is judged on the chains it concerns: its heads are the anchors to record, tampering with one
of its chains (or removing the segment an anchor names) stops it, problems of other chains are only reported."""

from __future__ import annotations

import datetime as dt

from time2bet.ledger import anchors_from_mapping, anchors_to_mapping, heads
from time2bet.monitoring.ledger_days import day_heads, newest_record_time, verify_day

from .conftest import UTC, record, write

D1 = dt.datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
D2 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _records(matches, created: dt.datetime, n: int = 3):
    return [record(matches.iloc[[i]], as_of=created) for i in range(n)]


def _at(records, created: dt.datetime):
    import dataclasses

    return [dataclasses.replace(r, created_at=created + dt.timedelta(seconds=i)) for i, r in enumerate(records)]


def test_a_day_verifies_and_gives_its_heads(tmp_path, matches):
    ledger = tmp_path / "ledger"
    write(ledger, "svc-a", _at(_records(matches, D1), D1) + _at(_records(matches, D2), D2))   # one chain, two days
    write(ledger, "run-b", _at(_records(matches, D2, 2), D2))
    day1, day2 = D1.date().isoformat(), D2.date().isoformat()
    first = verify_day(ledger, day1, {})
    assert first.ok and first.writers == ("svc-a",)
    assert first.heads == {"svc-a": first.heads["svc-a"]} and first.heads["svc-a"].seq == 2
    assert first.heads["svc-a"].segment == f"{day1}/svc-a.jsonl"
    second = verify_day(ledger, day2, anchors_from_mapping(anchors_to_mapping(first.heads)))
    assert second.ok and second.report.anchored == 1 and set(second.writers) == {"svc-a", "run-b"}
    assert second.heads == heads(ledger) == day_heads(ledger, day2)
    assert newest_record_time(ledger) == D2 + dt.timedelta(seconds=2)


def test_tampering_stops_the_days_of_that_chain_and_is_reported_to_the_others(tmp_path, matches):
    ledger = tmp_path / "ledger"
    write(ledger, "svc-a", _at(_records(matches, D1), D1) + _at(_records(matches, D2), D2))
    write(ledger, "run-b", _at(_records(matches, D2, 2), D2))
    day1, day2 = D1.date().isoformat(), D2.date().isoformat()
    anchors = {**verify_day(ledger, day1, {}).heads}
    anchors |= verify_day(ledger, day2, anchors).heads
    segment = ledger / day1 / "svc-a.jsonl"
    segment.write_text(segment.read_text().replace('"p_home":[0.', '"p_home":[0.9', 1))
    tampered = verify_day(ledger, day1, anchors)
    assert not tampered.ok and {p.kind for p in tampered.problems} == {"edited"} and tampered.heads == {}
    later = verify_day(ledger, day2, anchors)   # the same chain goes on in day 2: it hangs on the edited record
    assert not later.ok and all(p.writer == "svc-a" for p in later.problems)
    other = ledger / day2 / "run-b.jsonl"
    lines = other.read_text().splitlines(keepends=True)
    other.write_text("".join(lines[:-1]))   # the newest record of run-b removed: only its anchor tells
    report = verify_day(ledger, day2, anchors)
    assert {p.kind for p in report.problems if p.writer == "run-b"} == {"truncated"}
    (ledger / day2 / "run-b.jsonl").unlink()   # a whole segment gone: the anchor naming it still concerns day 2
    gone = verify_day(ledger, day2, anchors)
    assert gone.writers == ("svc-a",) and [p.kind for p in gone.problems if p.writer == "run-b"] == ["truncated"]
    elsewhere = verify_day(ledger, day1, anchors)   # day 1 is not run-b's: its problem is reported beside
    assert [p.writer for p in elsewhere.problems_elsewhere] == ["run-b"]
    assert {p.writer for p in elsewhere.problems} == {"svc-a"}
