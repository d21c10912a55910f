"""The exported serving snapshot is the warehouse's: the files the platform's jobs wrote (asset serving_snapshot),
and a fresh export of the warehouse, load into the same Snapshot as ``Snapshot.load(warehouse_url)``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bento_service.snapshot import Snapshot
from time2bet.serving_snapshot_store import read_pointer, read_tables, write_snapshot
from time2bet.warehouse.client import Warehouse

FRAMES = ("teams", "form", "head_to_head", "team_state", "season_entry", "predictions")


def assert_same_snapshot(got: Snapshot, expected: Snapshot) -> None:
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name), obj=name)
    assert got.divisions == expected.divisions
    assert got.last_played == expected.last_played
    assert got.features_as_of == expected.features_as_of
    assert (got.team_table() is None) == (expected.team_table() is None)


@pytest.fixture(scope="module")
def from_warehouse(settings) -> Snapshot:
    return Snapshot.load(settings.warehouse_url)


def test_the_platform_exported_the_snapshot_its_warehouse_holds(settings, from_warehouse):
    pointer = read_pointer(settings.serving_snapshot_dir)
    assert pointer is not None, "build_features / train_and_promote exported no serving snapshot"
    exported = Snapshot.load_export(settings.serving_snapshot_dir)
    assert exported.version == pointer["version"]
    assert pointer["features_as_of"] == from_warehouse.features_as_of.isoformat()
    assert_same_snapshot(exported, from_warehouse)


def test_export_and_read_round_trip(settings, from_warehouse, tmp_path):
    pointer = write_snapshot(read_tables(Warehouse.from_url(settings.warehouse_url)), tmp_path)
    got = Snapshot.load_export(tmp_path)
    assert got.version == pointer["version"]
    assert_same_snapshot(got, from_warehouse)
    # the same rows out of the fast path
    pairs = [("E0", *from_warehouse.teams.loc[from_warehouse.teams["country"] == "England", "team_id"][:2])]
    assert np.array_equal(got.team_table().rows(pairs), from_warehouse.team_table().rows(pairs), equal_nan=True)
