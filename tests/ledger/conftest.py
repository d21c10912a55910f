"""Records and small ledgers for the ledger's tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from time2bet.ledger import LedgerRecord, LedgerWriter, match_key

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def make_record(i: int, *, rows: int = 1, day: dt.datetime = T0, **overrides) -> LedgerRecord:
    """Record ``i``: ``rows`` predictions, created on ``day`` (+ i seconds)."""
    created = day + dt.timedelta(seconds=i)
    kickoff = created.date() + dt.timedelta(days=1 + i % 3)
    teams = [(f"Home {i}-{r}", f"Away {i}-{r}") for r in range(rows)]
    fields = {
        "prediction_id": f"p{i:06d}", "created_at": created, "as_of": created, "source": "test",
        "model_name": "match_outcome", "model_version": "3", "model_alias": "champion", "variant": "champion",
        "data_version": "abc123", "features_as_of": created.date() - dt.timedelta(days=1),
        "match_key": [match_key("E0", kickoff, h, a) for h, a in teams],
        "match_id": [f"m{i}-{r}" for r in range(rows)], "kickoff_date": [kickoff] * rows,
        "p_home": [0.5 - 0.001 * r for r in range(rows)], "p_draw": [0.3] * rows,
        "p_away": [0.2 + 0.001 * r for r in range(rows)],
    }
    fields.update(overrides)
    return LedgerRecord(**fields)


def write_ledger(directory: Path, writer: str = "w1", records: list[LedgerRecord] | None = None) -> LedgerWriter:
    """Write ``records`` (default: 10 of one row) synchronously through a writer with no thread."""
    w = LedgerWriter(directory, writer, autostart=False)
    for record in records if records is not None else [make_record(i) for i in range(10)]:
        assert w.append(record)
    w.close()
    return w


@pytest.fixture
def ledger_dir(tmp_path) -> Path:
    return tmp_path / "ledger"
