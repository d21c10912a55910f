"""The serving snapshot export (time2bet/serving_snapshot_store.py): versions written whole, the pointer replaced
atomically, old versions pruned, and a reader that never sees a half-written version."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pandas as pd
import pytest

from time2bet.serving_snapshot_store import (
    KEEP_VERSIONS,
    POINTER,
    SNAPSHOT_TABLES,
    read_pointer,
    read_snapshot,
    write_snapshot,
)

WRITES = 40
MAX_READS = 100_000


def tables(tag: int, rows: int = 200) -> dict[str, pd.DataFrame]:
    """Every table carries ``tag`` in every row, so a mix of two versions shows."""
    frames = {name: pd.DataFrame({"tag": [tag] * rows, "x": range(rows)}) for name in SNAPSHOT_TABLES}
    frames["form"]["previous_match_date"] = pd.Timestamp("2025-01-01") + pd.Timedelta(days=tag)
    return frames


def test_round_trip_and_pointer(tmp_path):
    assert read_snapshot(tmp_path) is None and read_pointer(tmp_path) is None
    written = tables(1)
    pointer = write_snapshot(written, tmp_path)
    assert json.loads((tmp_path / POINTER).read_text()) == pointer
    assert pointer["features_as_of"] == "2025-01-02"
    got_pointer, got = read_snapshot(tmp_path)
    assert got_pointer == pointer
    for name in SNAPSHOT_TABLES:
        pd.testing.assert_frame_equal(got[name], written[name])


def test_unchanged_tables_write_no_new_version(tmp_path):
    first = write_snapshot(tables(1), tmp_path)
    assert write_snapshot(tables(1), tmp_path) == first
    assert write_snapshot(tables(2), tmp_path)["version"] != first["version"]


def test_old_versions_are_pruned_and_no_temporary_file_is_left(tmp_path):
    pointers = [write_snapshot(tables(i), tmp_path) for i in range(KEEP_VERSIONS + 3)]
    kept = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert kept == sorted(p["version"] for p in pointers[-KEEP_VERSIONS:])
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [POINTER]
    assert read_pointer(tmp_path) == pointers[-1]


def test_an_optional_table_that_vanishes_is_never_read_as_empty(tmp_path):
    """A version pruned while a reader that fell behind reads it loses its files one by one: an optional table's
    file gone then is not "no such table" (an empty frame beside the others' rows) but a failed read."""
    write_snapshot(tables(1), tmp_path)
    pointer = read_pointer(tmp_path)
    assert "predictions" in pointer["tables"]
    (tmp_path / pointer["version"] / "predictions.parquet").unlink()   # mid-prune
    with pytest.raises(FileNotFoundError):
        read_snapshot(tmp_path)
    without = tables(2)
    without.pop("market_ratings")   # optional: exported without it
    write_snapshot(without, tmp_path)
    _, got = read_snapshot(tmp_path)
    assert got["market_ratings"].empty and int(got["team_state"]["tag"].iloc[0]) == 2


def test_missing_table_is_refused(tmp_path):
    partial = tables(1)
    partial.pop("team_state")
    with pytest.raises(ValueError, match="team_state"):
        write_snapshot(partial, tmp_path)
    assert read_pointer(tmp_path) is None


def test_a_reader_never_sees_a_half_written_version(tmp_path):
    """A writer publishes WRITES versions while a reader reads the current one in a loop: each read is one
    whole version (every table has the same tag, the pointer's features_as_of matches it), and tags only grow."""
    write_snapshot(tables(0), tmp_path)
    done, seen, problems = threading.Event(), [], []

    def reader():
        try:
            read_in_a_loop()
        except Exception as exc:  # noqa: BLE001 - a reader that fails is a finding, not a dead thread
            problems.append(f"the reader failed: {type(exc).__name__}: {exc}")

    def read_in_a_loop():
        for _ in range(MAX_READS):
            if done.is_set():
                return
            try:
                pointer, got = read_snapshot(tmp_path)
            except FileNotFoundError:   # pruned under it READ_ATTEMPTS times in a row: told so, never half a version
                continue
            tags = {int(frame["tag"].iloc[0]) for frame in got.values()} | \
                {int(frame["tag"].iloc[-1]) for frame in got.values()}
            if len(tags) != 1:
                problems.append(f"mixed tags {tags} in {pointer['version']}")
                return
            tag = tags.pop()
            if pointer["features_as_of"] != (dt.date(2025, 1, 1) + dt.timedelta(days=tag)).isoformat():
                problems.append(f"pointer {pointer} does not describe tag {tag}")
            seen.append(tag)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, WRITES + 1):
            write_snapshot(tables(i), tmp_path)
    finally:
        done.set()
        thread.join(timeout=60)
    assert not problems, problems
    assert seen and seen == sorted(seen), "a reader went back to an older version"
    assert read_snapshot(tmp_path)[0]["features_as_of"] == (dt.date(2025, 1, 1) + dt.timedelta(days=WRITES)).isoformat()
