"""dbt's target folder stays bounded: dagster-dbt gives every invocation a folder of its own and never removes one
(time2bet_assets.defs.features.resources.prune_invocations keeps the newest)."""

from __future__ import annotations

import os
import time

from time2bet_assets.defs.features.resources import prune_invocations


def _invocation(target, name: str, age_s: float):
    folder = target / name
    (folder / "compiled").mkdir(parents=True)
    (folder / "dbt.log").write_text("{}\n")
    then = time.time() - age_s
    os.utime(folder, (then, then))
    return folder


def test_all_but_the_newest_invocation_folders_are_removed_and_nothing_else(tmp_path):
    target = tmp_path / "target"
    oldest = _invocation(target, "football_staging_dbt-0123abc-9f8e7d6", 300)
    older = _invocation(target, "football_marts_dbt-0123abc-1a2b3c4", 200)
    newer = _invocation(target, "football_marts_dbt-4567def-5a6b7c8", 100)
    newest = _invocation(target, "football_staging_dbt-4567def-d9e8f7a", 0)
    states = target / "partial-parse"
    states.mkdir()
    (states / "0123456789abcdef.msgpack").write_bytes(b"state")
    (target / "manifest.json").write_text("{}")
    lookalike = target / "notes-0123abc-1a2b3c4"   # the name's shape, but no dbt.log: not dbt's
    lookalike.mkdir()

    removed = prune_invocations(target, keep=2)

    assert sorted(removed) == sorted([oldest, older])
    assert not oldest.exists() and not older.exists()
    assert newer.is_dir() and newest.is_dir() and states.is_dir() and lookalike.is_dir()
    assert (target / "manifest.json").exists()
    assert prune_invocations(target, keep=2) == []   # idempotent
    assert prune_invocations(tmp_path / "missing") == []
