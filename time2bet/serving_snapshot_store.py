"""The serving snapshot as files: what the service reads about every team, exported by Dagster, read by the service.

DuckDB allows one writer per file, and a read-only open by the service conflicts with Dagster's read-write one;
so the service does not read the warehouse while the platform runs: the Dagster asset ``serving_snapshot``
reads the tables below (:func:`read_tables`) and writes them as Parquet files into a new directory
``<root>/<version>/`` (:func:`write_snapshot`), then points ``<root>/current.json`` at it by one ``os.replace``.
The service polls that pointer and loads a version it has not loaded yet (:func:`read_snapshot`). A reader
therefore sees a whole version or the previous one, never a half-written one; old versions are pruned (the
newest :data:`KEEP_VERSIONS` are kept, the current one always).

The queries live here, once: the export (time2bet_assets) and the service's own fallback on the warehouse
(bento_service.snapshot) both read :data:`SNAPSHOT_QUERIES`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from time2bet.features.market_ratings import STATE_COLUMNS, market_rating_state
from time2bet.serving_contract import PREDICTIONS_TABLE, SEASON_ENTRY_COLUMNS

POINTER = "current.json"
KEEP_VERSIONS = 3                      # version directories kept (the current one always among them)
READ_ATTEMPTS = 3                      # a version pruned while being read: read the pointer again

# name -> SQL; the service's Snapshot is built from exactly these frames (bento_service.snapshot.Snapshot)
SNAPSHOT_QUERIES: dict[str, str] = {
    "teams": (
        "SELECT DISTINCT country, home_team AS team, home_team_id AS team_id, division FROM analytics.stg_matches "
        "UNION SELECT DISTINCT country, away_team, away_team_id, division FROM analytics.stg_matches "
        "UNION SELECT DISTINCT country, home_team, home_team_id, division FROM analytics.stg_fixtures "
        "UNION SELECT DISTINCT country, away_team, away_team_id, division FROM analytics.stg_fixtures"),
    "form": "SELECT * FROM analytics.int_team_form_computed WHERE is_next_match",
    "head_to_head": "SELECT * FROM analytics.int_head_to_head_computed WHERE is_next_meeting",
    "team_state": "SELECT * FROM ratings.team_state",
    "season_entry": "SELECT * FROM ratings.season_entry",
    "predictions": f"SELECT * FROM {PREDICTIONS_TABLE} ORDER BY match_date, match_id, variant",
}
# what the market-implied ratings read of the played matches (time2bet.features.market_ratings): the batch
# predictions and the serving snapshot rate upcoming fixtures from it, never from a fixture's own odds
MARKET_HISTORY_SQL = ("SELECT match_id, match_date, division, home_team_id, away_team_id, market_prob_home, "
                      "market_prob_draw, market_prob_away FROM analytics.fct_match_features ORDER BY match_date, match_id")
# name -> SQL of tables computed in Python from the rows it reads (see read_tables)
COMPUTED_TABLES = {"market_ratings": MARKET_HISTORY_SQL}   # by time2bet.features.market_ratings.market_rating_state
SNAPSHOT_TABLES = (*SNAPSHOT_QUERIES, *COMPUTED_TABLES)
# tables a reader may lack: written by an older platform (season_entry, market_ratings), or not yet (predictions);
# read as empty
OPTIONAL = ("season_entry", "predictions", "market_ratings")
# predictions.upcoming_matches before any batch prediction ran: /predict works without it
PREDICTION_COLUMNS = ["match_id", "division", "season", "match_date", "home_team", "away_team", "p_home", "p_draw",
                      "p_away", "variant", "model_name", "model_version", "data_version", "predicted_at"]


def read_tables(warehouse) -> dict[str, pd.DataFrame]:
    """Every table of :data:`SNAPSHOT_QUERIES` from a ``time2bet.warehouse.client.Warehouse`` (predictions empty
    when the batch path has not written them yet)."""
    tables = {}
    for name, sql in {**SNAPSHOT_QUERIES, **COMPUTED_TABLES}.items():
        if name in OPTIONAL:
            try:
                tables[name] = warehouse.read_sql(sql)
            except Exception:  # noqa: BLE001 - no batch predictions yet, or ratings from an older platform
                tables[name] = _empty(name)
        else:
            tables[name] = warehouse.read_sql(sql)
    # the market-implied ratings as the played matches' odds left them (a market-aware model's inputs)
    tables["market_ratings"] = market_rating_state(tables["market_ratings"]) if len(tables["market_ratings"]) \
        else _empty("market_ratings")
    return tables


def _empty(name: str) -> pd.DataFrame:
    columns = {"predictions": PREDICTION_COLUMNS, "market_ratings": list(STATE_COLUMNS)}
    return pd.DataFrame(columns=columns.get(name, list(SEASON_ENTRY_COLUMNS)))


def features_as_of(tables: Mapping[str, pd.DataFrame]) -> dt.date | None:
    """The latest played match the features know (what Snapshot.features_as_of says)."""
    last = pd.to_datetime(tables["form"]["previous_match_date"]).dropna()
    return last.max().date() if len(last) else None


def content_hash(tables: Mapping[str, pd.DataFrame]) -> str:
    digest = hashlib.sha256()
    for name in (n for n in SNAPSHOT_TABLES if n in tables):
        frame = tables[name]
        digest.update(name.encode() + b"\0" + ",".join(map(str, frame.columns)).encode() + b"\0")
        digest.update(pd.util.hash_pandas_object(frame.astype(str), index=False).values.tobytes())
    return digest.hexdigest()


def read_pointer(root: Path | str) -> dict | None:
    """The current version's pointer (version, created_at, features_as_of, content_hash), or None."""
    try:
        return json.loads((Path(root) / POINTER).read_text())
    except (FileNotFoundError, ValueError):
        return None


def write_snapshot(tables: Mapping[str, pd.DataFrame], root: Path | str, *, keep: int = KEEP_VERSIONS) -> dict:
    """Write ``tables`` as a new version under ``root`` and point ``current.json`` at it (atomically); the pointer.
    Tables equal to the current version's (same content hash) write nothing: the current pointer is returned."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    missing = set(SNAPSHOT_QUERIES) - set(tables)
    if missing:
        raise ValueError(f"snapshot tables missing: {sorted(missing)}")
    digest = content_hash(tables)
    current = read_pointer(root)
    if current is not None and current.get("content_hash") == digest and (root / current["version"]).is_dir():
        return current
    now = dt.datetime.now(dt.UTC)
    version = f"{now:%Y%m%dT%H%M%S%fZ}-{digest[:12]}"
    staging = root / f".tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        for name in (n for n in SNAPSHOT_TABLES if n in tables):
            tables[name].to_parquet(staging / f"{name}.parquet", index=False)
        os.replace(staging, root / version)   # the whole directory appears at once
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    as_of = features_as_of(tables)
    pointer = {"version": version, "created_at": now.isoformat(), "content_hash": digest,
               "features_as_of": as_of.isoformat() if as_of else None,
               "tables": [n for n in SNAPSHOT_TABLES if n in tables]}   # an optional one not here: none exported
    temporary = root / f".{POINTER}.{uuid.uuid4().hex}"
    temporary.write_text(json.dumps(pointer))
    os.replace(temporary, root / POINTER)   # readers see the old pointer or the new one, never a partial file
    _prune(root, keep=max(1, keep), current=version)
    return pointer


def _prune(root: Path, *, keep: int, current: str) -> None:
    versions = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for name in versions[:-keep]:
        if name != current:
            shutil.rmtree(root / name, ignore_errors=True)


def read_snapshot(root: Path | str) -> tuple[dict, dict[str, pd.DataFrame]] | None:
    """(pointer, tables) of the current version, or None when nothing was exported yet."""
    root = Path(root)
    for attempt in range(READ_ATTEMPTS):
        pointer = read_pointer(root)
        if pointer is None:
            return None
        folder = root / pointer["version"]
        try:
            if not folder.is_dir():
                raise FileNotFoundError(folder)
            # an optional table is empty only if the version has none: a file that vanishes while it is read
            # (the version pruned under a reader that fell behind) is a retry, never an empty table
            written = set(pointer["tables"]) if "tables" in pointer else \
                {n for n in SNAPSHOT_TABLES if n not in OPTIONAL or (folder / f"{n}.parquet").exists()}
            return pointer, {name: pd.read_parquet(folder / f"{name}.parquet") if name in written else _empty(name)
                             for name in SNAPSHOT_TABLES}
        except FileNotFoundError:   # pruned meanwhile (a reader that fell KEEP_VERSIONS behind): the newest one
            if attempt == READ_ATTEMPTS - 1:
                raise
    return None   # pragma: no cover
