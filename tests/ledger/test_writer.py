"""LedgerWriter: bounded, counted, durable after the flush bound (a SIGKILLed process loses nothing it flushed)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
import threading
import typing
from pathlib import Path

import pytest

from time2bet.ledger import LedgerWriter, heads, read_records, verify
from time2bet.settings import Settings

from .conftest import T0, make_record

REPO = Path(__file__).resolve().parents[2]


def test_a_full_buffer_drops_and_counts(ledger_dir):
    w = LedgerWriter(ledger_dir, "w1", max_buffered=5, autostart=False)
    accepted = [w.append(make_record(i, rows=2)) for i in range(8)]
    assert accepted == [True] * 5 + [False] * 3
    assert (w.buffered, w.dropped, w.dropped_predictions, w.written) == (5, 3, 6, 0)
    assert w.flush() == 5
    assert (w.buffered, w.written, w.written_predictions) == (0, 5, 10)
    assert w.append(make_record(8))                    # room again
    w.close()
    assert not w.append(make_record(9))                # closed: dropped, counted
    assert w.stats() == {"written": 6, "dropped": 4, "buffered": 0, "written_predictions": 11,
                         "dropped_predictions": 7, "failed_flushes": 0}
    frame = read_records(ledger_dir)
    assert sorted(set(frame["prediction_id"])) == [f"p{i:06d}" for i in (0, 1, 2, 3, 4, 8)]


def test_the_background_thread_writes_what_many_threads_append(ledger_dir):
    w = LedgerWriter(ledger_dir, "w1", flush_ms=5, max_buffered=100_000)

    def client(k: int) -> None:
        for i in range(250):
            assert w.append(make_record(k * 1000 + i))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    assert (w.written, w.dropped, w.buffered) == (1000, 0, 0)
    report = verify(ledger_dir, heads(ledger_dir))
    assert report.ok and report.records == 1000


def test_segments_follow_the_utc_day_and_never_go_back(ledger_dir):
    day2 = T0 + dt.timedelta(days=1)
    late = dt.datetime(2025, 3, 2, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))   # 2025-03-01 22:30 UTC
    w = LedgerWriter(ledger_dir, "w1", autostart=False)
    for record in [make_record(0), make_record(1, created_at=late), make_record(2, day=day2), make_record(3)]:
        w.append(record)
    w.close()
    frame = read_records(ledger_dir)
    assert dict(zip(frame["prediction_id"], frame["segment"])) == {
        "p000000": "2025-03-01/w1.jsonl", "p000001": "2025-03-01/w1.jsonl",
        "p000002": "2025-03-02/w1.jsonl", "p000003": "2025-03-02/w1.jsonl"}   # created on day 1, appended after day 2
    assert list(read_records(ledger_dir, day=dt.date(2025, 3, 1))["prediction_id"]) == ["p000000", "p000001"]
    assert verify(ledger_dir).ok


def test_a_restarted_writer_discards_a_torn_tail_and_continues_its_chain(ledger_dir):
    w = LedgerWriter(ledger_dir, "run-1", autostart=False)
    for i in range(3):
        w.append(make_record(i))
    w.close()
    [path] = ledger_dir.glob("*/run-1.jsonl")
    with open(path, "ab") as f:
        f.write(b'{"prev":"abc","record":{"as_')      # a crash mid-write
    assert len(verify(ledger_dir).torn_tails) == 1
    w = LedgerWriter(ledger_dir, "run-1", autostart=False)   # e.g. a retried Dagster step: same run id
    w.append(make_record(3))
    w.close()
    report = verify(ledger_dir)
    assert report.ok and not report.torn_tails and report.records == 4 and report.heads["run-1"].seq == 3


def test_a_failed_write_leaves_no_partial_record_and_counts_the_loss(ledger_dir, monkeypatch):
    w = LedgerWriter(ledger_dir, "w1", autostart=False)
    w.append(make_record(0))
    w.flush()
    w.append(make_record(1))
    w.append(make_record(2))
    real_fsync = os.fsync

    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        w.flush()
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert (w.written, w.dropped, w.failed_flushes) == (1, 2, 1) and "No space" in w.last_error
    w.append(make_record(3))
    w.close()
    report = verify(ledger_dir)
    assert report.ok and report.records == 2 and list(read_records(ledger_dir)["prediction_id"]) == ["p000000",
                                                                                                    "p000003"]


def test_from_settings_uses_the_configured_directory_and_bounds(tmp_path):
    settings = Settings.from_env({"TIME2BET_HOME": str(tmp_path), "TIME2BET_LEDGER_FLUSH_MS": "50",
                                  "TIME2BET_LEDGER_MAX_BUFFERED": "7"})
    assert settings.ledger_dir == tmp_path / "ledger"
    w = LedgerWriter.from_settings(settings, "w", autostart=False)
    assert (w.ledger_dir, w.flush_s, w.max_buffered) == (tmp_path / "ledger", 0.05, 7)
    w.close()
    other = Settings.from_env({"TIME2BET_HOME": str(tmp_path), "TIME2BET_LEDGER_DIR": str(tmp_path / "elsewhere")})
    assert (other.ledger_dir, other.ledger_flush_ms, other.ledger_max_buffered) == (tmp_path / "elsewhere", 200, 10000)


CRASHING_WRITER = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {tests!r})
    from ledger.conftest import make_record
    from time2bet.ledger import LedgerWriter

    w = LedgerWriter({ledger!r}, "crash-1", flush_ms=50)
    for i in range(300):
        assert w.append(make_record(i, rows=1 + i % 3))
    time.sleep(1.0)                       # much longer than the 50 ms flush bound: all of these must be on disk
    for i in range(300, 400):             # these may or may not be: the process dies right away
        w.append(make_record(i))
    os.kill(os.getpid(), 9)
""")


def test_records_appended_before_the_flush_bound_survive_sigkill(ledger_dir):
    script = CRASHING_WRITER.format(tests=str(REPO / "tests"), ledger=str(ledger_dir))
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == -9, result.stderr
    frame = read_records(ledger_dir)
    ids = set(frame["prediction_id"])
    assert {f"p{i:06d}" for i in range(300)} <= ids
    assert len(frame[frame["seq"] < 300]) == sum(1 + i % 3 for i in range(300))
    report = verify(ledger_dir)
    assert report.ok, report.listing()
    assert report.records >= 300


def test_an_unserializable_record_is_dropped_alone(ledger_dir):
    w = LedgerWriter(ledger_dir, "w1", autostart=False)
    w.append(make_record(0))
    w.append(make_record(1, kickoff_date=[object()]))
    w.append(make_record(2))
    assert w.flush() == 2
    w.close()
    assert (w.written, w.dropped) == (2, 1) and "p000001 not serializable" in w.last_error
    report = verify(ledger_dir)
    assert report.ok and report.records == 2


def test_a_writer_whose_last_record_is_unreadable_starts_a_new_chain(ledger_dir):
    w = LedgerWriter(ledger_dir, "run-1", autostart=False)
    w.append(make_record(0))
    w.close()
    [path] = ledger_dir.glob("*/run-1.jsonl")
    path.write_bytes(path.read_bytes() + b"garbage\n")
    w = LedgerWriter(ledger_dir, "run-1", autostart=False)
    w.append(make_record(1))
    w.close()
    assert w.written == 1 and w.writer_id.startswith("run-1-")
    report = verify(ledger_dir)
    assert [p.kind for p in report.problems] == ["malformed"] and report.heads[w.writer_id].seq == 0


class _Gathered:
    """A deferred entry of one row whose class builds a run of entries as one record (as the service's answers)."""

    calls: typing.ClassVar[list[int]] = []

    def __init__(self, i: int, broken: bool = False):
        self.i, self.broken, self.n = i, broken, 1

    def records(self):
        if self.broken:
            raise RuntimeError(f"entry {self.i} is broken")
        return [make_record(self.i)]

    @classmethod
    def records_of(cls, entries):
        cls.calls.append(len(entries))
        if any(e.broken for e in entries):
            raise RuntimeError("a broken entry in the run")
        one = [make_record(e.i) for e in entries]
        clocks = [r.created_at for r in one]
        return [make_record(entries[0].i, created_at=clocks[-1], as_of=clocks[-1],
                            match_key=[r.match_key[0] for r in one], match_id=[r.match_id[0] for r in one],
                            kickoff_date=[r.kickoff_date[0] for r in one], p_home=[r.p_home[0] for r in one],
                            p_draw=[r.p_draw[0] for r in one], p_away=[r.p_away[0] for r in one],
                            row_created_at=clocks, row_as_of=clocks)]


def test_consecutive_entries_of_a_gathering_class_are_built_by_one_call(ledger_dir):
    _Gathered.calls = []
    w = LedgerWriter(ledger_dir, "w1", autostart=False)
    for entry in [_Gathered(0), _Gathered(1), _Gathered(2), make_record(3), _Gathered(4), _Gathered(5)]:
        assert w.append(entry)
    assert w.flush() == 3   # records: 0-2 gathered, 3, 4-5 gathered
    w.close()
    assert _Gathered.calls == [3, 2] and (w.written_predictions, w.dropped) == (6, 0)
    frame = read_records(ledger_dir).sort_values("created_at")
    assert frame["created_at"].tolist() == [T0 + dt.timedelta(seconds=i) for i in range(6)]   # each row its own clock
    assert (frame["as_of"] == frame["created_at"]).all()
    assert verify(ledger_dir).ok


def test_a_run_that_cannot_be_gathered_is_built_one_by_one_and_loses_only_the_broken_entry(ledger_dir):
    _Gathered.calls = []
    w = LedgerWriter(ledger_dir, "w1", autostart=False)
    for entry in [_Gathered(0), _Gathered(1, broken=True), _Gathered(2)]:
        assert w.append(entry)
    assert w.flush() == 2
    w.close()
    assert (w.written, w.dropped, w.dropped_predictions) == (2, 1, 1) and "entry 1 is broken" in w.last_error
    assert sorted(read_records(ledger_dir)["prediction_id"]) == ["p000000", "p000002"]
