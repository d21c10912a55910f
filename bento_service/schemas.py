"""Request and response models of the serving API (pydantic v2; unknown fields are rejected)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_NAME = 64          # a team name or division code longer than this is not a name
MAX_BATCH = 10_000     # matches per POST /predict/batch


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class MatchRequest(_Strict):
    home_team: str = Field(min_length=1, max_length=MAX_NAME, strict=True)
    away_team: str = Field(min_length=1, max_length=MAX_NAME, strict=True)
    division: str = Field(min_length=1, max_length=8, strict=True)
    kickoff_date: dt.date | None = Field(default=None, description="YYYY-MM-DD; default: the next day with no data")

    @field_validator("kickoff_date", mode="before")
    @classmethod
    def _iso_date(cls, value):
        # only an ISO date string (or null): no timestamps-as-numbers, no datetimes
        if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError("kickoff_date must be a date string YYYY-MM-DD")
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"kickoff_date must be a valid date YYYY-MM-DD: {exc}") from None


class BatchRequest(_Strict):
    matches: list[MatchRequest] = Field(min_length=1, max_length=MAX_BATCH)


class Probabilities(BaseModel):
    home: float
    draw: float
    away: float


class ModelRef(BaseModel):
    name: str
    version: str
    alias: str
    data_version: str


class Prediction(BaseModel):
    variant: str = Field(description="champion or challenger (A/B assignment by match id)")
    home_team: str
    away_team: str
    division: str
    kickoff_date: dt.date
    probabilities: Probabilities
    model: ModelRef
    features_as_of: dt.date | None = Field(description="the latest played match the features include")
    snapshot_loaded_at: dt.datetime


class BatchResponse(BaseModel):
    predictions: list[Prediction]


class StoredPrediction(BaseModel):
    match_id: str
    division: str
    season: str | None
    match_date: dt.date
    home_team: str
    away_team: str
    p_home: float
    p_draw: float
    p_away: float
    variant: str
    model_name: str
    model_version: str
    data_version: str | None
    predicted_at: dt.datetime | None


class MatchesResponse(BaseModel):
    count: int
    matches: list[StoredPrediction]


class ModelDetails(BaseModel):
    name: str
    version: str
    alias: str
    run_id: str | None
    metrics: dict[str, float]
    data_version: str
    loaded_at: dt.datetime
    input_features: int


class ModelInfo(ModelDetails):
    """The champion at the top level; the challenger (if its alias exists and it loaded) and its share."""

    challenger: ModelDetails | None = None
    challenger_share: float = Field(description="share of matches sent to the challenger when there is one")
    models: list[ModelDetails] = Field(description="every model served, champion first")
