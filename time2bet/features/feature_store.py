"""The Feast feature store over the dbt marts: what the service reads about a team and a pair of teams, online.

The three feature views hold exactly the rows the serving snapshot holds (time2bet.serving_snapshot_store), so a
feature row built from them equals the snapshot's to the bit:

- ``team_form`` (entity ``team``): the team's next-match row of ``analytics.int_team_form_computed`` (form over
  its last 5 / 10 / weighted matches, venue form, matches played, its latest match date);
- ``team_ratings`` (entity ``team``): its current Elo and pi-ratings (``ratings.team_state``);
- ``head_to_head`` (entity ``team_pair``, ``pair_id`` = ``team_a_id|team_b_id`` in id order): the pair's
  next-meeting row of ``analytics.int_head_to_head_computed``; a pair that never met has no row, which the
  service reads as no meeting, like the snapshot (so every pair it accepts is served);
- ``match_features`` (entity ``match``, offline only): ``analytics.fct_match_features``, every played match's
  model-input row at kickoff, for point-in-time training sets.

Every export of the state is one version: its rows are valid from the day after the latest played match they
know (``valid_from``), stamped with the export time (``exported_at``). The offline store keeps every version
(dev: one Parquet file per version under ``<feast_dir>/data/<view>/``; prod: the warehouse tables ``feast.<view>``
in PostgreSQL), so a point-in-time query sees the state as it was; ``materialize`` puts the newest into the
online store (dev: SQLite file; prod: Redis). The repository's ``feature_store.yaml`` is written from the
settings (:func:`write_repo`); secrets are never written, only ``${PGPASSWORD}`` for Feast to expand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import yaml

from time2bet.serving_contract import FORM_STATS, FORM_WINDOWS, MODEL_FEATURES, VENUE_STATS
from time2bet.serving_snapshot_store import SNAPSHOT_QUERIES

FORM_VIEW, RATINGS_VIEW, H2H_VIEW, MATCH_VIEW = "team_form", "team_ratings", "head_to_head", "match_features"
TEAM, PAIR, MATCH = "team", "team_pair", "match"
VALID_FROM, EXPORTED_AT = "valid_from", "exported_at"
# the int_team_form_computed columns the service's side features read (bento_service.snapshot._side_columns)
FORM_FEATURES = (
    "matches_played",
    *(f"{stat}_{window}" for stat in FORM_STATS for window in FORM_WINDOWS),
    *(f"{side}_venue_{stat}_last5" for side in ("home", "away") for stat in ("matches", *VENUE_STATS)),
)
RATING_FEATURES = ("elo", "pi_home", "pi_away")
H2H_FEATURES = ("meetings_last5", "team_a_points_last5", "team_b_points_last5", "team_a_goal_diff_last5")
TEXT_FEATURES = {FORM_VIEW: ("previous_match_date",), RATINGS_VIEW: ("last_season",), H2H_VIEW: ()}
FLOAT_FEATURES = {FORM_VIEW: FORM_FEATURES, RATINGS_VIEW: RATING_FEATURES, H2H_VIEW: H2H_FEATURES}
KEYS = {FORM_VIEW: "team_id", RATINGS_VIEW: "team_id", H2H_VIEW: "pair_id", MATCH_VIEW: "match_id"}
ONLINE_VIEWS = (FORM_VIEW, RATINGS_VIEW, H2H_VIEW)
EPOCH = dt.datetime(1970, 1, 2, tzinfo=dt.UTC)   # materialization starts here: every version is in range


def pair_id(team_a: str, team_b: str) -> str:
    """The pair entity's key: both ids in id order, as int_head_to_head_computed orders a pair."""
    return f"{min(team_a, team_b)}|{max(team_a, team_b)}"


# --- the repository's configuration --------------------------------------------------------------------------

def repo_config(settings) -> dict:
    """feature_store.yaml as a dict: offline store file (DuckDB warehouse) or PostgreSQL (PostgreSQL warehouse);
    online store SQLite or Redis (TIME2BET_FEAST_ONLINE_STORE, Redis at TIME2BET_REDIS_URL)."""
    root = Path(settings.feast_dir)
    config = {"project": settings.feast_project, "provider": "local", "entity_key_serialization_version": 3,
              # read once per process (0: never again): the service must not read the registry per request
              "registry": {"path": str(root / "registry.db"), "cache_ttl_seconds": 0}}
    if settings.warehouse_url.startswith("postgresql"):
        url = urlsplit(settings.warehouse_url)
        config["offline_store"] = {
            "type": "postgres", "host": url.hostname or "127.0.0.1", "port": url.port or 5432,
            "database": url.path.lstrip("/"), "db_schema": "feast", "user": url.username or "postgres",
            "password": "${PGPASSWORD}", "sslmode": "prefer"}
    else:
        config["offline_store"] = {"type": "file"}
    if settings.feast_online_store == "redis":
        url = urlsplit(settings.redis_url)
        config["online_store"] = {"type": "redis",
                                  "connection_string": f"{url.hostname or '127.0.0.1'}:{url.port or 6379},"
                                                       f"db={(url.path or '/0').lstrip('/') or 0}"}
    else:
        config["online_store"] = {"type": "sqlite", "path": str(root / "online.db")}
    return config


def write_repo(settings) -> Path:
    """Write ``<feast_dir>/feature_store.yaml`` (``feast -c <feast_dir> ...`` works on it too); the directory."""
    root = Path(settings.feast_dir)
    (root / "data").mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(repo_config(settings), sort_keys=False)
    path = root / "feature_store.yaml"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return root


def open_store(settings):
    """The FeatureStore of the settings (its feature_store.yaml written first)."""
    from feast import FeatureStore

    return FeatureStore(repo_path=str(write_repo(settings)))


# --- the definitions -------------------------------------------------------------------------------------------

def _postgres(settings) -> bool:
    return settings.warehouse_url.startswith("postgresql")


def _source(settings, view: str):
    from feast import FileSource
    from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import PostgreSQLSource

    if _postgres(settings):
        return PostgreSQLSource(name=f"{view}_source", query=f"SELECT * FROM feast.{view}",
                                timestamp_field=VALID_FROM, created_timestamp_column=EXPORTED_AT)
    return FileSource(name=f"{view}_source", path=str(Path(settings.feast_dir) / "data" / view),
                      timestamp_field=VALID_FROM, created_timestamp_column=EXPORTED_AT)


def definitions(settings) -> list:
    """Entities and feature views of the repository (applied by :func:`apply`)."""
    from feast import Entity, FeatureView, Field, ValueType
    from feast.types import Float64, String

    team = Entity(name=TEAM, join_keys=["team_id"], value_type=ValueType.STRING, description="a club")
    pair = Entity(name=PAIR, join_keys=["pair_id"], value_type=ValueType.STRING,
                  description="two clubs, team_a_id|team_b_id in id order (head-to-head)")
    match = Entity(name=MATCH, join_keys=["match_id"], value_type=ValueType.STRING, description="a played match")
    entity = {FORM_VIEW: team, RATINGS_VIEW: team, H2H_VIEW: pair}
    views = [
        FeatureView(name=view, entities=[entity[view]], ttl=dt.timedelta(0), source=_source(settings, view),
                    schema=[*(Field(name=c, dtype=Float64) for c in FLOAT_FEATURES[view]),
                            *(Field(name=c, dtype=String) for c in TEXT_FEATURES[view])], online=True)
        for view in ONLINE_VIEWS
    ]
    views.append(FeatureView(name=MATCH_VIEW, entities=[match], ttl=dt.timedelta(0), online=False,
                             source=_source(settings, MATCH_VIEW),
                             schema=[Field(name=c, dtype=Float64) for c in MODEL_FEATURES]))
    return [team, pair, match, *views]


def apply(store, settings) -> None:
    store.apply(definitions(settings))


# --- the offline store: one version of the state per export ---------------------------------------------------

MATCH_FEATURES_SQL = (f"SELECT match_id, match_date, {', '.join(MODEL_FEATURES)} FROM analytics.fct_match_features")


def state_frames(warehouse, exported_at: dt.datetime | None = None) -> dict[str, pd.DataFrame]:
    """The views' source rows of one version, from the warehouse: the snapshot's own queries (form,
    head_to_head, team_state), numbers as float64, dates as text, stamped valid_from / exported_at; and the
    played matches' model-input rows (valid from their kickoff date)."""
    exported_at = exported_at or dt.datetime.now(dt.UTC)
    form = warehouse.read_sql(SNAPSHOT_QUERIES["form"])
    h2h = warehouse.read_sql(SNAPSHOT_QUERIES["head_to_head"])
    state = warehouse.read_sql(SNAPSHOT_QUERIES["team_state"])
    latest = pd.to_datetime(form["previous_match_date"]).max()
    valid_from = (pd.Timestamp(EPOCH) if pd.isna(latest) else
                  pd.Timestamp(latest.date() + dt.timedelta(days=1), tz="UTC"))
    h2h = h2h.assign(pair_id=[f"{a}|{b}" for a, b in zip(h2h["team_a_id"], h2h["team_b_id"])])
    frames = {
        FORM_VIEW: _shaped(form, "team_id", FORM_VIEW, previous_match_date=_dates(form["previous_match_date"])),
        RATINGS_VIEW: _shaped(state, "team_id", RATINGS_VIEW, last_season=_text(state.get("last_season"), state)),
        H2H_VIEW: _shaped(h2h, "pair_id", H2H_VIEW),
    }
    for frame in frames.values():
        frame[VALID_FROM], frame[EXPORTED_AT] = valid_from, pd.Timestamp(exported_at)
    matches = warehouse.read_sql(MATCH_FEATURES_SQL)
    match_frame = matches[["match_id"]].copy()
    for column in MODEL_FEATURES:
        match_frame[column] = matches[column].astype("float64")
    match_frame[VALID_FROM] = pd.to_datetime(matches["match_date"]).dt.tz_localize("UTC")
    match_frame[EXPORTED_AT] = pd.Timestamp(exported_at)
    frames[MATCH_VIEW] = match_frame
    return frames


def _text(column: pd.Series | None, frame: pd.DataFrame) -> pd.Series:
    values = [None] * len(frame) if column is None else [None if pd.isna(v) else str(v) for v in column]
    return pd.Series(values, index=frame.index, dtype=object)


def _dates(column: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(column)
    return pd.Series([None if pd.isna(d) else d.date().isoformat() for d in parsed], index=column.index, dtype=object)


def _shaped(frame: pd.DataFrame, key: str, view: str, **text: pd.Series) -> pd.DataFrame:
    out = pd.DataFrame({key: frame[key].astype(str)})
    for column in FLOAT_FEATURES[view]:
        out[column] = frame[column].astype("float64")
    for column, values in text.items():
        out[column] = values.to_numpy()
    return out


def write_offline(settings, warehouse, frames: Mapping[str, pd.DataFrame]) -> str:
    """Add one version of the state to the offline store (the played matches' rows are replaced: they never
    change); the version's name (its export time)."""
    version = f"{frames[FORM_VIEW][EXPORTED_AT].iloc[0]:%Y%m%dT%H%M%S%fZ}"
    for view, rows in frames.items():
        if _postgres(settings):
            table = f"feast.{view}"
            if view == MATCH_VIEW:
                warehouse.replace_table(table, rows)
            else:
                warehouse.replace_rows(table, _ddl(table, rows), rows, key=EXPORTED_AT, value=rows[EXPORTED_AT].iloc[0])
            continue
        folder = Path(settings.feast_dir) / "data" / view
        folder.mkdir(parents=True, exist_ok=True)
        if view == MATCH_VIEW:
            for old in folder.glob("*.parquet"):
                old.unlink()
        staging = folder / f".{version}.tmp"
        rows.to_parquet(staging, index=False)
        staging.replace(folder / f"{version}.parquet")   # readers never see a half-written file
    return version


def _ddl(table: str, frame: pd.DataFrame) -> str:
    def sql_type(dtype) -> str:
        if pd.api.types.is_float_dtype(dtype):
            return "DOUBLE PRECISION"
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return "TIMESTAMPTZ"
        return "TEXT"

    columns = ", ".join(f'"{c}" {sql_type(t)}' for c, t in frame.dtypes.items())
    return f"CREATE TABLE IF NOT EXISTS {table} ({columns})"


def materialize(store, valid_until: dt.datetime | None = None) -> None:
    """Put the newest version of every online view into the online store."""
    end = valid_until or dt.datetime.now(dt.UTC)
    store.materialize(start_date=EPOCH, end_date=end, feature_views=list(ONLINE_VIEWS))


# --- the online store: what the service reads per request -----------------------------------------------------

def feature_refs(view: str) -> list[str]:
    return [f"{view}:{c}" for c in (*FLOAT_FEATURES[view], *TEXT_FEATURES[view])]


TEAM_REFS = feature_refs(FORM_VIEW) + feature_refs(RATINGS_VIEW)
TEAM_COLUMNS = [ref.split(":", 1)[1] for ref in TEAM_REFS]
PAIR_REFS = feature_refs(H2H_VIEW)


def online_columns(store, team_ids: Sequence[str], pair_ids: Sequence[str]) -> tuple[dict, dict]:
    """The online rows of teams and of pairs, as Feast's columns ({name: [value per entity]}, None where there is
    no row). One lookup (Feast reads every view of it in one Redis pipeline): its entity columns must be as long as
    each other, so the shorter list is padded with its first id (Feast reads each distinct entity once)."""
    teams, pairs = list(team_ids), list(pair_ids)
    n = max(len(teams), len(pairs))
    if not n:
        return {"team_id": []} | {c: [] for c in TEAM_COLUMNS}, {"pair_id": []} | {c: [] for c in H2H_FEATURES}
    rows = {"team_id": teams + teams[:1] * (n - len(teams)), "pair_id": pairs + pairs[:1] * (n - len(pairs))}
    found = store.get_online_features(features=[*TEAM_REFS, *PAIR_REFS], entity_rows=rows).to_dict()
    return ({c: found[c][:len(teams)] for c in ("team_id", *TEAM_COLUMNS)},
            {c: found[c][:len(pairs)] for c in ("pair_id", *H2H_FEATURES)})


def online_state(store, team_ids: Sequence[str], pair_ids: Sequence[str]) -> dict[str, pd.DataFrame]:
    """The online rows of teams and pairs as the snapshot's frames: ``form`` and ``team_state`` indexed by
    team_id, ``head_to_head`` indexed by (team_a_id, team_b_id); absent rows are NaN (a team without a
    played match, a pair that never met), as the snapshot's reindex gives them. Two lookups: teams, pairs."""
    return frames_of(*online_columns(store, team_ids, pair_ids))


def frames_of(teams: Mapping[str, list], pairs: Mapping[str, list]) -> dict[str, pd.DataFrame]:
    """online_state's frames from Feast's columns (an OnlineResponse's ``to_dict()``)."""
    index = pd.Index(teams["team_id"], name="team_id")
    form = pd.DataFrame({c: np.array(teams[c], dtype=float) for c in FORM_FEATURES}, index=index)
    form["previous_match_date"] = pd.to_datetime(pd.Series(teams["previous_match_date"], index=index))
    state = pd.DataFrame({"team_id": list(index), **{c: np.array(teams[c], dtype=float) for c in RATING_FEATURES},
                          "last_season": teams["last_season"]})
    split = [p.split("|", 1) for p in pairs["pair_id"]]
    h2h = pd.DataFrame({c: np.array(pairs[c], dtype=float) for c in H2H_FEATURES},
                       index=pd.MultiIndex.from_tuples(split, names=["team_a_id", "team_b_id"]) if split else
                       pd.MultiIndex.from_arrays([[], []], names=["team_a_id", "team_b_id"]))
    return {"form": form, "team_state": state, "head_to_head": h2h}
