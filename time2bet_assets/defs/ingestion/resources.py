"""Resources of the ingestion area, built from the one environment switch (time2bet.settings); the warehouse and
Data Docs resources are the shared ones of ``time2bet_assets.lib``."""

from pathlib import Path

import dagster as dg
from dagster_aws.s3 import S3Resource

from time2bet.ingestion.crawl import FetchResult, crawl
from time2bet.ingestion.raw_zone import RawZone, open_raw_zone
from time2bet.settings import Settings
from time2bet_assets.lib.expectations import data_docs_resource
from time2bet_assets.lib.warehouse import warehouse_resource


class FootballDataSource(dg.ConfigurableResource):
    """The source site (football-data.co.uk or a mirror of its layout) and how politely to crawl it."""

    base_url: str
    divisions: list[str]
    first_season: str
    cache_dir: str
    timeout_s: float = 30.0
    retries: int = 3
    polite: bool | None = None

    def crawl(self, *, divisions, seasons, fixtures: bool, staging_dir: Path) -> list[FetchResult]:
        return crawl(
            self.base_url,
            divisions=divisions,
            seasons=seasons,
            fixtures=fixtures,
            staging_dir=staging_dir,
            cache_dir=Path(self.cache_dir),
            polite=self.polite,
            timeout_s=self.timeout_s,
            retries=self.retries,
            log_file=staging_dir / "crawl.log",
        )


class RawZoneResource(dg.ConfigurableResource):
    """Immutable raw zone: a local directory, or ``s3://bucket/prefix`` through dagster-aws's S3Resource."""

    location: str
    s3_endpoint_url: str | None = None

    def open(self) -> RawZone:
        client = None
        if self.location.startswith("s3://"):
            client = S3Resource(endpoint_url=self.s3_endpoint_url).get_client()
        return open_raw_zone(self.location, s3_client=client)


def ingestion_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "source": FootballDataSource(
            base_url=settings.source_url,
            divisions=list(settings.divisions),
            first_season=settings.first_season,
            cache_dir=str(settings.crawl_cache_dir),
            timeout_s=settings.crawl_timeout_s,
            retries=settings.crawl_retries,
            polite=settings.polite,
        ),
        "raw_zone": RawZoneResource(location=settings.raw_zone, s3_endpoint_url=settings.s3_endpoint_url),
        "warehouse": warehouse_resource(settings),
        "data_docs": data_docs_resource(settings),
    }
