"""Fixtures for running the real ingestion assets against a replayed site."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from time2bet.settings import Settings
from time2bet.source.mirror import ReplayServer
from time2bet.source.sample_site import DEFAULT_AS_OF, generate_sample_site
from time2bet_assets.defs.ingestion.resources import ingestion_resources


@pytest.fixture(scope="session")
def sample_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("sample-site")
    generate_sample_site(site)
    return site


@pytest.fixture
def site_copy(sample_site, tmp_path) -> Path:
    """A private, writable copy of the sample site, for tests that corrupt files."""
    return Path(shutil.copytree(sample_site, tmp_path / "site"))


@pytest.fixture
def server(sample_site):
    with ReplayServer(sample_site, as_of=DEFAULT_AS_OF) as srv:
        yield srv


@pytest.fixture
def platform(tmp_path):
    """Build the ingestion resources for a source URL and warehouse, like the environment switch does."""

    def build(source_url: str, *, warehouse_url: str | None = None, raw_zone: str | None = None, **env):
        settings = Settings.from_env(
            {
                "TIME2BET_HOME": str(tmp_path / "home"),
                "TIME2BET_SOURCE_URL": source_url,
                "TIME2BET_CRAWL_TIMEOUT_S": "3",
                "TIME2BET_CRAWL_RETRIES": "1",
                **({"TIME2BET_WAREHOUSE_URL": warehouse_url} if warehouse_url else {}),
                **({"TIME2BET_RAW_ZONE": raw_zone} if raw_zone else {}),
                **env,
            }
        )
        return settings, ingestion_resources(settings)

    return build


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst
