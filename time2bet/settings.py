"""One environment switch: every location and endpoint the platform uses, read from the environment.

The same code runs on a laptop (embedded defaults: local files, DuckDB, SQLite) and in production
(PostgreSQL, S3-compatible storage) by changing only these variables:

| variable                  | default                                   | production example                          |
|---------------------------|-------------------------------------------|---------------------------------------------|
| TIME2BET_HOME             | <repo>/.time2bet (or ~/.time2bet)          | /var/lib/time2bet                           |
| TIME2BET_SOURCE_URL       | https://www.football-data.co.uk           | a mirror URL                                |
| TIME2BET_DIVISIONS        | all known divisions                       | E0,E1,D1,SP1,I1,F1                          |
| TIME2BET_FIRST_SEASON     | 1993-94                                   | 2010-11                                     |
| TIME2BET_WAREHOUSE_URL    | duckdb:///<home>/warehouse.duckdb         | postgresql://user@db:5432/time2bet          |
| TIME2BET_RAW_ZONE         | <home>/raw                                | s3://bucket/prefix (AWS_ENDPOINT_URL for MinIO) |
| TIME2BET_CRAWL_TIMEOUT_S  | 30                                        |                                             |
| TIME2BET_CRAWL_RETRIES    | 3                                         |                                             |
| TIME2BET_POLITE           | auto: polite unless the source is loopback | 1 / 0                                      |
| MLFLOW_TRACKING_URI       | sqlite:///<home>/mlflow.db                 | http://mlflow:5000                          |
| TIME2BET_MLFLOW_ARTIFACTS | <home>/mlartifacts                         | s3://bucket/mlflow                          |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from time2bet.football import DIVISIONS, season_code

LIVE_SOURCE_URL = "https://www.football-data.co.uk"


def _default_home() -> Path:
    """A checkout keeps its data beside the code (git-ignored); an installed package uses ~/.time2bet."""
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").exists() and (repo / "time2bet_assets").exists():
        return repo / ".time2bet"
    return Path.home() / ".time2bet"


def _flag(value: str | None) -> bool | None:
    if value is None or value.strip() == "" or value.strip().lower() == "auto":
        return None
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    home: Path
    source_url: str
    divisions: tuple[str, ...]
    first_season: str
    warehouse_url: str
    raw_zone: str
    crawl_timeout_s: float
    crawl_retries: int
    polite: bool | None
    mlflow_tracking_uri: str
    mlflow_artifacts: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("TIME2BET_HOME") or _default_home()).expanduser().resolve()
        divisions = tuple(
            d.strip() for d in env.get("TIME2BET_DIVISIONS", ",".join(DIVISIONS)).split(",") if d.strip()
        )
        unknown = [d for d in divisions if d not in DIVISIONS]
        if unknown:
            raise ValueError(f"TIME2BET_DIVISIONS has unknown division codes {unknown}; known: {sorted(DIVISIONS)}")
        first_season = env.get("TIME2BET_FIRST_SEASON", "1993-94")
        season_code(first_season)  # validates the label
        return cls(
            home=home,
            source_url=env.get("TIME2BET_SOURCE_URL", LIVE_SOURCE_URL).rstrip("/"),
            divisions=divisions,
            first_season=first_season,
            warehouse_url=env.get("TIME2BET_WAREHOUSE_URL") or f"duckdb:///{home / 'warehouse.duckdb'}",
            raw_zone=env.get("TIME2BET_RAW_ZONE") or str(home / "raw"),
            crawl_timeout_s=float(env.get("TIME2BET_CRAWL_TIMEOUT_S", "30")),
            crawl_retries=int(env.get("TIME2BET_CRAWL_RETRIES", "3")),
            polite=_flag(env.get("TIME2BET_POLITE")),
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}",
            mlflow_artifacts=env.get("TIME2BET_MLFLOW_ARTIFACTS") or str(home / "mlartifacts"),
        )

    @property
    def crawl_cache_dir(self) -> Path:
        return self.home / "crawl-cache"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"
