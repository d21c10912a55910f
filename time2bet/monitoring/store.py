"""The monitoring tables in the warehouse (schema ``monitoring``), and how a partition of one is replaced.

Each monitoring asset owns a table and replaces its own partition's rows (a day of the ledger, a week of live
quality or drift) in one transaction: a reader never sees half a partition, and re-running a partition leaves the
same rows. The warehouse client offers whole-table replacement (``replace_table``) and the raw tables' partition
loads only, so the delete-and-insert of a partition is here, for DuckDB and PostgreSQL alike, on the client's
connection. (It would sit well in ``time2bet.warehouse.client`` as a general ``replace_partition``.)

All timestamps are UTC without a time zone, like the other tables' ``loaded_at``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping

import pandas as pd

from time2bet.ledger import COLUMNS as LEDGER_COLUMNS
from time2bet.warehouse.client import Warehouse

SCHEMA = "monitoring"
LEDGER_TABLE = f"{SCHEMA}.ledger_predictions"
LIVE_QUALITY_TABLE = f"{SCHEMA}.live_quality"
DRIFT_TABLE = f"{SCHEMA}.drift"

_TYPES = {"text": "TEXT", "date": "DATE", "int": "BIGINT", "double": "DOUBLE PRECISION", "timestamp": "TIMESTAMP",
          "bool": "BOOLEAN"}
_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")

# One row per prediction (a ledger record exploded into its rows): time2bet.ledger.read_records's columns, ``row``
# renamed ``record_row`` (ROW is reserved in PostgreSQL), plus when the row was loaded.
LEDGER_PREDICTIONS: dict[str, str] = {
    "day": "date", "writer": "text", "seq": "int", "segment": "text", "prediction_id": "text",
    "created_at": "timestamp", "as_of": "timestamp", "source": "text", "request_id": "text", "model_name": "text",
    "model_version": "text", "model_alias": "text", "variant": "text", "model_family": "text", "data_version": "text",
    "features_as_of": "date", "record_row": "int", "match_key": "text", "match_id": "text", "kickoff_date": "date",
    "p_home": "double", "p_draw": "double", "p_away": "double", "division": "text", "home_team": "text",
    "away_team": "text", "loaded_at": "timestamp",
}

_SCORES = ("log_loss", "rps", "brier", "accuracy")
# One row per kickoff week, window ('week': the week's matches; 'rolling': the weeks ending with it), model,
# version, variant and division ('ALL': every division).
LIVE_QUALITY: dict[str, str] = {
    "week": "date", "window": "text", "window_start": "date", "window_end": "date",
    "model_name": "text", "model_version": "text", "variant": "text", "division": "text",
    "n": "int", **dict.fromkeys(_SCORES, "double"), "ece": "double", "ece_home": "double", "ece_draw": "double",
    "ece_away": "double",
    "n_with_odds": "int", "model_log_loss_on_odds": "double", **{f"market_{s}": "double" for s in _SCORES},
    "n_elo": "int", "model_log_loss_on_elo": "double", **{f"elo_{s}": "double" for s in _SCORES},
    "elo_reference": "text", "promotion_log_loss": "double", "first_kickoff": "date", "last_kickoff": "date",
    "computed_at": "timestamp",
}

# One row per kickoff week and tested column ('feature', 'prediction', 'target'), plus one 'dataset' row: the
# share of drifted features (statistic) against the drift share (threshold).
DRIFT: dict[str, str] = {
    "week": "date", "model_name": "text", "model_version": "text", "kind": "text", "column_name": "text",
    "method": "text", "statistic": "double", "threshold": "double", "drifted": "bool", "n_reference": "int",
    "n_current": "int", "report_path": "text", "computed_at": "timestamp",
}

TABLES: dict[str, dict[str, str]] = {LEDGER_TABLE: LEDGER_PREDICTIONS, LIVE_QUALITY_TABLE: LIVE_QUALITY,
                                     DRIFT_TABLE: DRIFT}


def utc_naive(values) -> pd.Series:
    """Timestamps as UTC without a time zone (naive input is taken as UTC)."""
    stamps = pd.to_datetime(pd.Series(values), utc=True, format="ISO8601")
    return stamps.dt.tz_convert("UTC").dt.tz_localize(None)


def _typed(frame: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    """``frame`` with exactly ``columns``, in order and in the pandas dtypes the SQL types load from."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"columns missing for the table: {missing}")
    out = pd.DataFrame(index=frame.index)
    for name, kind in columns.items():
        values = frame[name]
        if kind == "timestamp":
            out[name] = utc_naive(values).to_numpy() if len(values) else pd.Series(dtype="datetime64[ns]")
        elif kind == "date":   # datetime.date objects: Arrow date32 for DuckDB, YYYY-MM-DD in PostgreSQL's COPY
            days = pd.to_datetime(pd.Series(values, index=frame.index))
            out[name] = pd.Series([None if pd.isna(d) else d.date() for d in days], index=frame.index, dtype=object)
        elif kind == "int":
            out[name] = pd.to_numeric(values).astype("Int64")
        elif kind == "double":
            out[name] = pd.to_numeric(values).astype("float64")
        elif kind == "bool":
            out[name] = values.astype("boolean")
        else:
            out[name] = pd.Series([None if _missing(v) else str(v) for v in values], index=frame.index, dtype=object)
    return out.reset_index(drop=True)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT


def _ddl(table: str, columns: Mapping[str, str]) -> str:
    cols = ", ".join(f'"{name}" {_TYPES[kind]}' for name, kind in columns.items())
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"


def replace_partition(warehouse: Warehouse, table: str, frame: pd.DataFrame, *, key: str, value) -> int:
    """Replace the rows of ``table`` (one of :data:`TABLES`) whose ``key`` column equals ``value`` by ``frame`` in one
    transaction, creating schema and table if needed; the number of rows written."""
    if table not in TABLES or not _NAME.match(table):
        raise ValueError(f"not a monitoring table: {table!r}")
    columns = TABLES[table]
    if key not in columns:
        raise ValueError(f"{key!r} is not a column of {table}")
    rows = _typed(frame, columns)
    if isinstance(value, dt.datetime):
        value = value.date()
    warehouse.replace_rows(table, _ddl(table, columns), rows, key=key, value=value)
    return len(rows)


def table_exists(warehouse: Warehouse, table: str) -> bool:
    schema, name = table.split(".")
    found = warehouse.read_sql("SELECT count(*) AS n FROM information_schema.tables "
                               f"WHERE table_schema = '{schema}' AND table_name = '{name}'")
    return int(found["n"].iloc[0]) > 0


# --- the ledger's rows ------------------------------------------------------------------------------------------

def ledger_rows_for_table(records: pd.DataFrame, loaded_at: dt.datetime | None = None) -> pd.DataFrame:
    """Rows of :func:`time2bet.ledger.read_records` as rows of ``monitoring.ledger_predictions``."""
    frame = records.rename(columns={"row": "record_row"})
    frame = frame.assign(loaded_at=loaded_at or dt.datetime.now(dt.UTC))
    return _typed(frame, LEDGER_PREDICTIONS)


def ledger_rows_from_table(table: pd.DataFrame) -> pd.DataFrame:
    """Rows read back from ``monitoring.ledger_predictions`` in read_records's shape (UTC-aware clocks, dates)."""
    frame = table.rename(columns={"record_row": "row"}).copy()
    for name in ("created_at", "as_of"):
        frame[name] = pd.to_datetime(frame[name]).dt.tz_localize("UTC") if len(frame) else \
            pd.Series(dtype="datetime64[ns, UTC]")
    for name in ("kickoff_date", "features_as_of", "day"):
        frame[name] = pd.to_datetime(frame[name]).dt.date
    frame["model_version"] = frame["model_version"].astype(str)
    return frame[[c for c in LEDGER_COLUMNS if c in frame.columns]]
