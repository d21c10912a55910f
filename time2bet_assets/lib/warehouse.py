"""The warehouse as a Dagster resource: ingestion loads the raw tables, features and ml read the marts."""

from functools import cache

import dagster as dg

from time2bet.settings import Settings
from time2bet.warehouse.client import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """``duckdb:///path`` (default) or ``postgresql://...``."""

    url: str

    def open(self) -> Warehouse:
        warehouse = Warehouse.from_url(self.url)
        warehouse.ensure_raw_tables()
        return warehouse


def warehouse_resource(settings: Settings) -> WarehouseResource:
    """The ``warehouse`` resource of every area that uses it."""
    return _warehouse(settings.warehouse_url)


@cache
def _warehouse(url: str) -> WarehouseResource:
    # one object per URL: each area binds ``warehouse`` itself, and ``Definitions.merge`` accepts a key bound by
    # several of the merged Definitions only when it is the very same object
    return WarehouseResource(url=url)
