"""Tests of the serving layer (bento_service). No __init__.py here on purpose: as a package this folder would
be imported as `bento_service` and shadow the service package itself.

The platform and the `bentoml serve` they talk to are session fixtures of tests/conftest.py (the CLI and UI tests
use them too); these are the service's own in-process views of that platform."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items):
    """schemathesis 4.32's per-operation tests (test_contract.py) all get one node id under pytest 9.2 (the name has
    the operation, the id not); pytest-xdist keys tests by id and ran only the first operation. Each gets its name
    as its id."""
    from _pytest.nodes import NodeId  # pytest 9.2's structured node id (Node._id); no public setter

    for item in items:
        module, _, tail = item.nodeid.rpartition("::")
        if "[" in item.name and "[" not in tail:
            item._id = NodeId.parse(f"{module}::{item.name}")


@pytest.fixture(scope="session")
def snapshot(settings):
    from bento_service.snapshot import Snapshot

    return Snapshot.load(settings.warehouse_url)


@pytest.fixture(scope="session")
def served_model(settings):
    from bento_service.model import ServedModel

    return ServedModel.load(settings.mlflow_tracking_uri)


@pytest.fixture(scope="session")
def batch_features(settings):
    """The batch path's feature rows: upcoming_match_features joined with ratings.fixture_ratings."""
    from time2bet.warehouse.client import Warehouse
    from time2bet_assets.defs.ml.assets import UPCOMING_FIXTURES_SQL

    frame = Warehouse.from_url(settings.warehouse_url).read_sql(UPCOMING_FIXTURES_SQL)
    assert len(frame) > 0, "the sample platform has no upcoming fixtures"
    return frame
