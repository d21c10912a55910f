"""The prediction ledger as a Dagster resource: the batch asset writes its predictions through it, the monitoring
area loads and verifies what every writer (service workers, batch runs) appended."""

from __future__ import annotations

import datetime as dt
from functools import cache

import dagster as dg

from time2bet.ledger import LedgerWriter
from time2bet.settings import Settings

AS_OF_TAG = "time2bet/as_of"
"""Run tag carrying the platform's clock (ISO date or datetime) when it is not the wall clock: ``time2bet
simulate`` sets it to the replay date, so that "before kickoff" is judged on the day the prediction was made."""


class LedgerResource(dg.ConfigurableResource):
    """Where the ledger's segment files live (TIME2BET_LEDGER_DIR) and the writers' bounds."""

    ledger_dir: str
    flush_ms: int = 200
    max_buffered: int = 10_000

    def writer(self, run_id: str) -> LedgerWriter:
        """A writer for one run (its id is the run id: a retried step continues the same chain); it writes when
        the caller flushes or closes it, on the step's own thread."""
        return LedgerWriter(self.ledger_dir, f"run-{run_id}", flush_ms=self.flush_ms,
                            max_buffered=self.max_buffered, autostart=False)


def platform_clock(context: dg.AssetExecutionContext, wall: dt.datetime) -> dt.datetime:
    """The run's ``as_of``: the AS_OF_TAG's value (a date is taken as its midnight, UTC), else the wall clock."""
    value = context.run.tags.get(AS_OF_TAG)
    if not value:
        return wall
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def ledger_resource(settings: Settings) -> LedgerResource:
    """The ``ledger`` resource of every area that uses it (one object per configuration, see warehouse.py)."""
    return _ledger(str(settings.ledger_dir), settings.ledger_flush_ms, settings.ledger_max_buffered)


@cache
def _ledger(ledger_dir: str, flush_ms: int, max_buffered: int) -> LedgerResource:
    return LedgerResource(ledger_dir=ledger_dir, flush_ms=flush_ms, max_buffered=max_buffered)
