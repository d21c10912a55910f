"""The live-quality scoreboard as a file: written by the Dagster asset ``live_quality``, read by the service's
``GET /quality``.

The service never reads the warehouse while Dagster may write it (DuckDB's single writer, see
serving_snapshot_store.py), so after each live-quality run the asset exports the whole ``monitoring.live_quality``
table as one Parquet file, ``<dir>/scoreboard.parquet``, replaced atomically (written beside it, then
``os.replace``): a reader sees the previous version or the new one. It is small (a row per week, window, model
version, variant and division).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import pandas as pd

FILE = "scoreboard.parquet"


def write_scoreboard(frame: pd.DataFrame, directory: Path | str) -> Path:
    """Replace ``<directory>/scoreboard.parquet`` by ``frame`` (atomically); its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / FILE
    staging = directory / f".{FILE}.{uuid.uuid4().hex}"
    try:
        frame.to_parquet(staging, index=False)
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return target


class Scoreboard:
    """The exported scoreboard, read again only when the file changed (its mtime and size)."""

    def __init__(self, directory: Path | str):
        self.path = Path(directory) / FILE
        self._seen: tuple[int, int] | None = None
        self._frame: pd.DataFrame | None = None

    def frame(self) -> pd.DataFrame | None:
        """The latest export, or None when ``live_quality`` has not run yet."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        if self._seen != (stat.st_mtime_ns, stat.st_size):
            frame = pd.read_parquet(self.path)
            for column in ("week", "window_start", "window_end", "first_kickoff", "last_kickoff"):
                if column in frame:
                    frame[column] = pd.to_datetime(frame[column]).dt.date
            self._frame, self._seen = frame, (stat.st_mtime_ns, stat.st_size)
        return self._frame

    def query(self, *, model_version: str | None = None, division: str | None = None, since: dt.date | None = None,
              window: str = "week") -> pd.DataFrame | None:
        """Rows of one window kind ('week' or 'rolling'), filtered; None when nothing was exported yet."""
        frame = self.frame()
        if frame is None:
            return None
        rows = frame[frame["window"] == window]
        if model_version is not None:
            rows = rows[rows["model_version"].astype(str) == str(model_version)]
        if division is not None:
            rows = rows[rows["division"] == division]
        if since is not None:
            rows = rows[rows["week"] >= since]
        return rows.sort_values(["week", "model_version", "variant", "division"])


__all__ = ["FILE", "Scoreboard", "write_scoreboard"]
