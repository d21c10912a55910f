"""The warehouse: DuckDB file by default, PostgreSQL in production, chosen by URL alone.

Raw tables live in schema ``raw`` (dbt's sources):
- ``raw.matches``      one row per played match, canonical columns (see schema.MATCH_COLUMNS) plus the hash
                       of the raw-zone file it came from;
- ``raw.match_files``  which raw-zone file is loaded for each (division, season) partition;
- ``raw.fixtures``     the latest snapshot of upcoming matches.

Every write replaces whole partitions inside one transaction, so a reader (or a crash) never sees half a
partition, and loading the same file twice leaves the same rows.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from time2bet.warehouse.schema import FIXTURE_COLUMNS, MATCH_COLUMNS

_DIVISION_RE = re.compile(r"^[A-Z]{1,3}\d?$")
_SEASON_RE = re.compile(r"^\d{4}-\d{2}$")
_SQL_TYPES = {"text": "TEXT", "date": "DATE", "int": "INTEGER", "double": "DOUBLE PRECISION"}

MATCH_FILE_COLUMNS = {
    "division": "text",
    "season": "text",
    "sha256": "text",
    "raw_uri": "text",
    "source_url": "text",
    "rows": "int",
    "first_date": "date",
    "last_date": "date",
}


@dataclass(frozen=True)
class PartitionLoad:
    """A parsed season file ready to replace its (division, season) partition."""

    division: str
    season: str
    frame: pd.DataFrame
    sha256: str
    raw_uri: str
    source_url: str


def _ddl(table: str, columns: dict[str, str], extra: str = "") -> str:
    cols = ",\n  ".join(f'"{name}" {_SQL_TYPES[kind]}' for name, kind in columns.items())
    return f"CREATE TABLE IF NOT EXISTS {table} (\n  {cols}{extra}\n)"


def _matches_ddl() -> str:
    return _ddl("raw.matches", MATCH_COLUMNS, ',\n  "source_sha256" TEXT,\n  "loaded_at" TIMESTAMP')


def _fixtures_ddl() -> str:
    return _ddl("raw.fixtures", FIXTURE_COLUMNS, ',\n  "source_sha256" TEXT,\n  "loaded_at" TIMESTAMP')


def _match_files_ddl() -> str:
    return _ddl(
        "raw.match_files", MATCH_FILE_COLUMNS, ',\n  "loaded_at" TIMESTAMP,\n  PRIMARY KEY (division, season)'
    )


def _stamped(frame: pd.DataFrame, sha256: str, loaded_at: dt.datetime) -> pd.DataFrame:
    return frame.assign(source_sha256=sha256, loaded_at=loaded_at)


def _match_file_rows(loads: list[PartitionLoad], loaded_at: dt.datetime) -> pd.DataFrame:
    rows = []
    for load in loads:
        dates = pd.to_datetime(load.frame["match_date"]) if len(load.frame) else pd.Series(dtype="datetime64[ns]")
        rows.append(
            {
                "division": load.division,
                "season": load.season,
                "sha256": load.sha256,
                "raw_uri": load.raw_uri,
                "source_url": load.source_url,
                "rows": len(load.frame),
                "first_date": dates.min().date() if len(dates) else None,
                "last_date": dates.max().date() if len(dates) else None,
                "loaded_at": loaded_at,
            }
        )
    return pd.DataFrame(rows, columns=[*MATCH_FILE_COLUMNS, "loaded_at"])


class Warehouse(ABC):
    """What ingestion needs from a warehouse; one implementation per engine."""

    url: str

    @staticmethod
    def from_url(url: str) -> Warehouse:
        if url.startswith("duckdb:///"):
            return DuckDBWarehouse(url)
        if url.startswith(("postgresql://", "postgres://")):
            return PostgresWarehouse(url)
        raise ValueError(f"unsupported warehouse URL {url!r}: use duckdb:///<path> or postgresql://...")

    @abstractmethod
    def _connect(self):
        """A DB-API-like connection (duckdb or psycopg): both offer ``execute`` and context management."""

    def ensure_raw_tables(self) -> None:
        with self._connect() as con:
            con.execute("CREATE SCHEMA IF NOT EXISTS raw")
            con.execute(_matches_ddl())
            con.execute(_match_files_ddl())
            con.execute(_fixtures_ddl())

    def loaded_match_files(self) -> dict[tuple[str, str], str]:
        """(division, season) -> sha256 of the raw file currently loaded."""
        with self._connect() as con:
            rows = con.execute("SELECT division, season, sha256 FROM raw.match_files").fetchall()
        return {(d, s): sha for d, s, sha in rows}

    def partition_matches(self, division: str, season: str, columns: tuple[str, ...]) -> pd.DataFrame:
        """The given columns of one partition's loaded rows in raw.matches."""
        if not _DIVISION_RE.match(division) or not _SEASON_RE.match(season):
            raise ValueError(f"not a partition: {division!r}, {season!r}")
        unknown = [c for c in columns if c not in MATCH_COLUMNS]
        if unknown:
            raise ValueError(f"not raw.matches columns: {unknown}")
        return self.read_sql(f"SELECT {', '.join(columns)} FROM raw.matches "
                             f"WHERE division = '{division}' AND season = '{season}'")

    @abstractmethod
    def replace_match_partitions(self, loads: list[PartitionLoad]) -> None:
        """Replace every given partition in one transaction."""

    @abstractmethod
    def replace_fixtures(self, frame: pd.DataFrame, sha256: str) -> None: ...

    @abstractmethod
    def read_sql(self, sql: str) -> pd.DataFrame: ...

    @abstractmethod
    def replace_table(self, table: str, frame: pd.DataFrame) -> None:
        """Create or replace ``schema.table`` with ``frame`` in one transaction (derived tables, e.g. ratings)."""

    @abstractmethod
    def replace_rows(self, table: str, ddl: str, frame: pd.DataFrame, *, key: str, value) -> None:
        """In one transaction: create ``schema.table`` by ``ddl`` if it is missing, delete its rows whose ``key``
        column equals ``value`` and insert ``frame`` (one partition of a table that grows by partitions, e.g. a
        week of the monitoring tables). ``table`` and ``key`` must be trusted names; ``value`` is a parameter."""


def _ddl_from_frame(table: str, frame: pd.DataFrame) -> str:
    def sql_type(dtype) -> str:
        if pd.api.types.is_bool_dtype(dtype):
            return "BOOLEAN"
        if pd.api.types.is_integer_dtype(dtype):
            return "BIGINT"
        if pd.api.types.is_float_dtype(dtype):
            return "DOUBLE PRECISION"
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return "TIMESTAMP"
        return "TEXT"

    cols = ", ".join(f'"{c}" {sql_type(t)}' for c, t in frame.dtypes.items())
    return f"CREATE TABLE {table} ({cols})"


class DuckDBWarehouse(Warehouse):
    LOCK_WAIT_S = 120.0

    def __init__(self, url: str):
        self.url = url
        self.path = url.removeprefix("duckdb:///")

    def _connect(self):
        """DuckDB lets one process write at a time; concurrent Dagster steps wait their turn (bounded)."""
        import duckdb

        deadline = time.monotonic() + self.LOCK_WAIT_S
        delay = 0.05
        while True:
            try:
                # always read-write: DuckDB refuses a second in-process connection with another configuration
                return duckdb.connect(self.path)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def ensure_raw_tables(self) -> None:
        from pathlib import Path

        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        super().ensure_raw_tables()

    def replace_match_partitions(self, loads: list[PartitionLoad]) -> None:
        if not loads:
            return
        loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        keys = pd.DataFrame([(l.division, l.season) for l in loads], columns=["division", "season"])
        frames = [_stamped(l.frame, l.sha256, loaded_at) for l in loads if len(l.frame)]
        matches = pd.concat(frames, ignore_index=True) if frames else None
        files = _match_file_rows(loads, loaded_at)
        with self._connect() as con:
            con.register("partition_keys", keys)
            con.register("match_files_new", files)
            con.begin()
            try:
                con.execute(
                    "DELETE FROM raw.matches WHERE (division, season) IN (SELECT (division, season) FROM partition_keys)"
                )
                if matches is not None:
                    # via Arrow: DuckDB scans Arrow columns directly, much faster than pandas object columns
                    con.register("matches_new", pa.Table.from_pandas(matches, preserve_index=False))
                    con.execute("INSERT INTO raw.matches BY NAME SELECT * FROM matches_new")
                con.execute(
                    "DELETE FROM raw.match_files WHERE (division, season) IN (SELECT (division, season) FROM partition_keys)"
                )
                con.execute("INSERT INTO raw.match_files BY NAME SELECT * FROM match_files_new")
                con.commit()
            except BaseException:
                con.rollback()
                raise

    def replace_fixtures(self, frame: pd.DataFrame, sha256: str) -> None:
        stamped = _stamped(frame, sha256, dt.datetime.now(dt.UTC).replace(tzinfo=None))
        with self._connect() as con:
            con.register("fixtures_new", stamped)
            con.begin()
            try:
                con.execute("DELETE FROM raw.fixtures")
                con.execute("INSERT INTO raw.fixtures BY NAME SELECT * FROM fixtures_new")
                con.commit()
            except BaseException:
                con.rollback()
                raise

    def read_sql(self, sql: str) -> pd.DataFrame:
        with self._connect() as con:
            return con.execute(sql).df()

    def replace_table(self, table: str, frame: pd.DataFrame) -> None:
        schema = table.split(".")[0]
        with self._connect() as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.register("frame_new", frame)
            con.begin()
            try:
                con.execute(f"DROP TABLE IF EXISTS {table}")
                con.execute(_ddl_from_frame(table, frame))
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM frame_new")
                con.commit()
            except BaseException:
                con.rollback()
                raise


    def replace_rows(self, table: str, ddl: str, frame: pd.DataFrame, *, key: str, value) -> None:
        with self._connect() as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
            con.execute(ddl)
            con.register("rows_new", pa.Table.from_pandas(frame, preserve_index=False))
            con.begin()
            try:
                con.execute(f'DELETE FROM {table} WHERE "{key}" = ?', [value])
                if len(frame):
                    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM rows_new")
                con.commit()
            except BaseException:
                con.rollback()
                raise


class PostgresWarehouse(Warehouse):
    def __init__(self, url: str):
        self.url = url

    def _connect(self):
        import psycopg

        return psycopg.connect(self.url)

    @staticmethod
    def _copy(con, table: str, frame: pd.DataFrame, date_format: str = "%Y-%m-%d %H:%M:%S") -> None:
        """COPY ... FROM STDIN in CSV: far faster than INSERTs; empty unquoted fields are NULLs."""
        columns = ", ".join(f'"{c}"' for c in frame.columns)
        buf = io.StringIO()
        frame.to_csv(buf, index=False, header=False, date_format=date_format)
        with con.cursor().copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(buf.getvalue())

    def replace_match_partitions(self, loads: list[PartitionLoad]) -> None:
        if not loads:
            return
        loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        divisions = [l.division for l in loads]
        seasons = [l.season for l in loads]
        frames = [_stamped(l.frame, l.sha256, loaded_at) for l in loads if len(l.frame)]
        with self._connect() as con, con.transaction():
            for table in ("raw.matches", "raw.match_files"):
                con.execute(
                    f"DELETE FROM {table} WHERE (division, season) IN "
                    "(SELECT * FROM unnest(%s::text[], %s::text[]))",
                    (divisions, seasons),
                )
            if frames:
                self._copy(con, "raw.matches", pd.concat(frames, ignore_index=True))
            self._copy(con, "raw.match_files", _match_file_rows(loads, loaded_at))

    def replace_fixtures(self, frame: pd.DataFrame, sha256: str) -> None:
        stamped = _stamped(frame, sha256, dt.datetime.now(dt.UTC).replace(tzinfo=None))
        with self._connect() as con, con.transaction():
            con.execute("DELETE FROM raw.fixtures")
            if len(stamped):
                self._copy(con, "raw.fixtures", stamped)

    def read_sql(self, sql: str) -> pd.DataFrame:
        """Same dtypes as DuckDB's ``.df()``: DATE columns come back as datetime64, not Python dates."""
        with self._connect() as con:
            cur = con.execute(sql)
            frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
        for column in frame.columns[frame.dtypes == object]:
            first = frame[column].dropna().head(1)
            if len(first) and isinstance(first.iloc[0], dt.date):
                frame[column] = pd.to_datetime(frame[column])
        return frame

    def replace_table(self, table: str, frame: pd.DataFrame) -> None:
        schema = table.split(".")[0]
        with self._connect() as con, con.transaction():
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(f"DROP TABLE IF EXISTS {table}")
            con.execute(_ddl_from_frame(table, frame))
            if len(frame):
                self._copy(con, table, frame)

    def replace_rows(self, table: str, ddl: str, frame: pd.DataFrame, *, key: str, value) -> None:
        with self._connect() as con, con.transaction():
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
            con.execute(ddl)
            con.execute(f'DELETE FROM {table} WHERE "{key}" = %s', (value,))
            if len(frame):   # timestamps to the microsecond (the ledger's clocks keep their order within a second)
                self._copy(con, table, frame, date_format="%Y-%m-%d %H:%M:%S.%f")
