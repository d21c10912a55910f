"""Tests of the serving layer (bento_service). No __init__.py here on purpose: as a package this folder would
be imported as `bento_service` and shadow the service package itself.

The platform and the `bentoml serve` they talk to are session fixtures of tests/conftest.py (the CLI and UI tests
use them too); these are the service's own in-process views of that platform."""

from __future__ import annotations

import pytest


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
