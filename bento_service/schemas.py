"""Request and response models of the serving API (pydantic v2; unknown fields are rejected)."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from time2bet.football import DIVISIONS
from time2bet.serving_contract import FAMILIES

MAX_NAME = 64          # a team name longer than this is not a name
MAX_DIVISION = 8       # a division code longer than this is refused for its length (string_too_long)
MAX_BATCH = 10_000     # matches per POST /predict/batch
MAX_ID = 64            # a match id longer than this is refused for its length (match_id_too_long)

# What the OpenAPI schema says the server accepts, beyond types and lengths. Only documented (json_schema_extra):
# the server's own checks stay what they were, so a value outside these is still refused with the answer it always
# had (a division code not served is 422 unknown_division with the known ones, an id no job or match has is 404),
# and the fast path (which validates with these same models and structs) agrees with the FastAPI routes.
DIVISION_SCHEMA = {
    "enum": list(DIVISIONS),
    "description": "a division code of the platform (time2bet.football.DIVISIONS); one with no data in the "
                   "serving snapshot is a 422 unknown_division listing those with data (as GET /teams does)"}
# Names are stripped of surrounding whitespace (pydantic strips the Unicode White_Space characters), then must be
# non-empty: they have a character that is not one of those. Spelled out, because neither JSON Schema's \s
# (ECMA-262: no \x85, but \ufeff) nor Python's (\x1c-\x1f too) is that set.
NOT_BLANK = r"[^\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
NAME_SCHEMA = {"pattern": NOT_BLANK, "description": "a team name as GET /teams lists it (surrounding whitespace "
               "and case are ignored); an unknown one is a 422 unknown_team with the closest names"}
HEX_ID = r"^[0-9a-f]{32}$"
MATCH_ID_SCHEMA = {"pattern": HEX_ID, "description": "a match id as GET /matches lists it (32 hex digits: md5 of "
                   "division|date|home|away); any other is a 404 unknown_match_id (or 422 past 64 characters)"}
JOB_ID_SCHEMA = {"pattern": HEX_ID, "description": "a job id as POST /jobs hands it out (32 hex digits); any "
                 "other is a 404 unknown_job"}

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def iso_date(value):
    """Only an ISO calendar date string YYYY-MM-DD (or null/a date): what the schema's ``format: date`` promises.
    Pydantic's lax date parsing would also take timestamps (``0`` is 1970-01-01), week dates (2025-W10-6) and
    datetimes."""
    if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date string YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"must be a valid date YYYY-MM-DD: {exc}") from None


IsoDate = Annotated[dt.date, BeforeValidator(iso_date)]   # for query parameters (date_from, date_to)


@functools.lru_cache(maxsize=4096)
def _iso_date_of(text: str) -> dt.date:
    """:func:`iso_date` of a string, cached (a refused string raises every time: exceptions are not cached): a
    10,000-match batch names a few hundred distinct dates, and the regex and parse were a third of its
    validation time."""
    return iso_date(text)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class MatchRequest(_Strict):
    home_team: str = Field(min_length=1, max_length=MAX_NAME, strict=True, json_schema_extra=NAME_SCHEMA)
    away_team: str = Field(min_length=1, max_length=MAX_NAME, strict=True, json_schema_extra=NAME_SCHEMA)
    division: str = Field(min_length=1, max_length=MAX_DIVISION, strict=True, json_schema_extra=DIVISION_SCHEMA)
    kickoff_date: dt.date | None = Field(default=None, description="YYYY-MM-DD; default: the next day with no "
                                         "data; one not after either team's latest played match is a 422 "
                                         "kickoff_not_after_latest_match")

    @field_validator("kickoff_date", mode="before")
    @classmethod
    def _iso_date(cls, value):
        # only an ISO date string (or null): no timestamps-as-numbers, no week dates, no datetimes
        try:
            return _iso_date_of(value) if type(value) is str else iso_date(value)
        except ValueError as exc:
            raise ValueError(f"kickoff_date {exc}") from None


# Markets are asked for with one boolean, not a list of market names: they are all sums over one score matrix per
# match, so a subset would save nothing measurable, and a boolean keeps the request (and the default path) simple.
# Strict: only true/false (a string or a list is a 422 bool_type).
MARKETS_FIELD = {"default": False, "strict": True, "description": "true: each prediction also carries `markets` "
                 "(over/under 2.5, both teams to score, Asian handicap, expected goals, likeliest scores, the goals "
                 "model's own 1X2) from the goals model's champion, named in `goals_model`; 503 no_goals_model when "
                 "there is none, 422 markets_unavailable for a division it has no fit for. Default false: the "
                 "response is the 1X2 alone, as before"}


class PredictRequest(MatchRequest):
    """POST /predict: one match, and whether to add its markets."""

    markets: bool = Field(**MARKETS_FIELD)


class BatchRequest(_Strict):
    matches: list[MatchRequest] = Field(min_length=1, max_length=MAX_BATCH)
    markets: bool = Field(**MARKETS_FIELD)


_NAME_LIMITS = {name: next(m.max_length for m in MatchRequest.model_fields[name].metadata if hasattr(m, "max_length"))
                for name in ("home_team", "away_team", "division")}


class _MatchFields(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """MatchRequest's fields and their JSON types, for decoding; the values are checked afterwards. Not tracked by
    the garbage collector (``gc=False``: strings only, no cycle possible): 10,000 of them per batch would otherwise
    count towards, and be walked by, collections."""

    home_team: str
    away_team: str
    division: str
    kickoff_date: str | None = None


class _BatchFields(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    matches: Annotated[list[_MatchFields], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]
    markets: bool = False


_BATCH_DECODER = msgspec.json.Decoder(_BatchFields)


@dataclass(frozen=True)
class MatchColumns:
    """Match requests as columns (what scoring works on): one list per MatchRequest field, in request order, and
    whether the request asked for the markets."""

    home_team: list[str]
    away_team: list[str]
    division: list[str]
    kickoff_date: list[dt.date | None]
    markets: bool = False

    def __len__(self) -> int:
        return len(self.home_team)

    @classmethod
    def of(cls, matches: Sequence[MatchRequest] | MatchColumns, markets: bool = False) -> MatchColumns:
        if isinstance(matches, MatchColumns):
            return matches
        return cls([m.home_team for m in matches], [m.away_team for m in matches], [m.division for m in matches],
                   [m.kickoff_date for m in matches], markets)

    @classmethod
    def from_batch_json(cls, body: bytes) -> MatchColumns | None:
        """A POST /predict/batch body as columns, if ``BatchRequest`` accepts it as it stands; else None (the caller
        then validates with ``BatchRequest`` for the exact error).

        Why: pydantic builds a MatchRequest per match, ~14 ms of a 10,000-match batch. msgspec decodes the
        structure and JSON types in ~3 ms, and the values (lengths, dates) are then checked once per distinct
        value: a batch names few distinct teams and dates. It accepts a subset of what BatchRequest accepts (it
        declines, rather than strips, names with surrounding whitespace), with the same values;
        tests/bento_service/test_serving_fast_path.py compares the two."""
        try:
            batch = _BATCH_DECODER.decode(body)
        except msgspec.MsgspecError:
            return None
        matches = batch.matches
        columns = {"home_team": [m.home_team for m in matches], "away_team": [m.away_team for m in matches],
                   "division": [m.division for m in matches]}
        for name, limit in _NAME_LIMITS.items():
            if not all(0 < len(v) <= limit and v.strip() == v for v in set(columns[name])):
                return None
        texts = [m.kickoff_date for m in matches]
        dates: dict[str | None, dt.date | None] = {None: None}
        for text in set(texts) - {None}:
            try:
                dates[text] = _iso_date_of(text)   # ValueError for anything but a valid YYYY-MM-DD
            except ValueError:
                return None
        return cls(**columns, kickoff_date=[dates[t] for t in texts], markets=batch.markets)


class Probabilities(BaseModel):
    home: float
    draw: float
    away: float


# A model version's family (its registry tag, time2bet.serving_contract.FAMILY_TAG): which inputs it may read.
FAMILY_DESCRIPTION = ("the model family: independent (results-derived features only, never any odds) or "
                      "market-aware (also reads team ratings fitted to the de-margined odds of earlier matches, "
                      "never the predicted match's own)")
Family = Annotated[Literal[FAMILIES], Field(description=FAMILY_DESCRIPTION)]


class ModelRef(BaseModel):
    name: str
    version: str
    alias: str
    data_version: str
    family: Family


class OverUnder(BaseModel):
    over: float = Field(description="P(3 goals or more)")
    under: float = Field(description="P(2 goals or fewer)")


class YesNo(BaseModel):
    yes: float
    no: float


class ExpectedGoals(BaseModel):
    home: float
    away: float


class AsianHandicap(BaseModel):
    """The home side's bet at one handicap line, in stake units: win + push + lose = 1."""

    line: float = Field(description="the home side's handicap: -0.5 means the home side starts half a goal down")
    win: float
    push: float = Field(description="stake returned: the margin after the handicap is exactly 0 (whole lines)")
    lose: float


class ScoreProbability(BaseModel):
    home_goals: int
    away_goals: int
    probability: float


class Markets(BaseModel):
    """Every market of one score matrix of the goals model (Dixon-Coles, time2bet.ml.goals_model), so they agree
    with one another; its 1X2 is its own, beside the 1X2 model's ``probabilities`` (close, not the same)."""

    probabilities: Probabilities = Field(description="the goals model's 1X2 (summed over its score matrix)")
    over_under_2_5: OverUnder
    both_teams_to_score: YesNo
    asian_handicap: list[AsianHandicap] = Field(description="the home side's bet at -1.5 .. +1.5 by 0.5")
    expected_goals: ExpectedGoals
    most_likely_scores: list[ScoreProbability] = Field(description="the five likeliest scores, likeliest first")


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
    goals_model: ModelRef | None = Field(None, description="only with markets: true: the goals model version "
                                              "the markets come from (the 1X2 comes from `model`)")
    markets: Markets | None = Field(None, description="only with markets: true (absent otherwise)")


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
    predicted_at: dt.datetime | None = Field(description="when the batch predicted it (UTC)")

    @field_validator("predicted_at", mode="after")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        # the warehouse stores naive UTC timestamps; the schema's date-time (RFC 3339) needs the offset
        return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


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
    family: Family
    loaded_at: dt.datetime
    input_features: int


class ModelInfo(ModelDetails):
    """The champion at the top level; the challenger (if its alias exists and it loaded) and its share."""

    challenger: ModelDetails | None = None
    challenger_share: float = Field(description="share of matches sent to the challenger when there is one")
    models: list[ModelDetails] = Field(description="every model served, champion first, then each routed model's "
                                       "champion and challenger (by name)")
    goals_model: ModelDetails | None = Field(default=None, description="the goals model's champion, which answers "
                                             "markets: true (null: none registered or loaded yet)")
    routes: dict[str, str] = Field(default_factory=dict, description="division -> the registered model answering it "
                                   "(TIME2BET_ROUTES, those with a champion loaded); the other divisions: the pooled "
                                   "model at the top level")
    features_as_of: dt.date | None = Field(default=None, description="the latest played match the serving "
                                           "snapshot's features know")
    snapshot_version: str | None = Field(default=None, description="the exported serving snapshot served (a new "
                                         "export is swapped in without a restart); null: read from the warehouse")
    snapshot_loaded_at: dt.datetime | None = Field(default=None, description="when this worker loaded the snapshot")


class TeamsResponse(BaseModel):
    """What POST /predict can be asked about: the divisions, and the team names accepted for one of them."""

    divisions: dict[str, str] = Field(description="division -> country, for every division with data")
    division: str | None = None
    country: str | None = None
    teams: list[str] = Field(default_factory=list, description="names POST /predict accepts for `division`: every "
                             "team of its country seen in matches or fixtures (names resolve per country)")


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description="where: body/query/path, then the field names and list indices")
    type: str | None = Field(description="pydantic's error type, e.g. string_too_long, extra_forbidden")
    msg: str | None


class ErrorResponse(BaseModel):
    """Every 4xx (and 503) body: a machine-readable ``error`` and a ``message`` saying what is wrong; some errors
    add fields (listed below), never echoing a huge input."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="the reason, e.g. unknown_team, unknown_division, same_team, "
                       "kickoff_not_after_latest_match, string_too_long, extra_forbidden, body_too_large, "
                       "malformed_body, unknown_match_id, unknown_job, job_not_finished, not_ready, "
                       "markets_unavailable, no_goals_model")
    message: str
    errors: list[ValidationIssue] | None = Field(None, description="request validation: every problem found")
    index: int | None = Field(None, description="batch requests: the position of the offending match")
    team: str | None = Field(None, description="unknown_team: the name asked for")
    closest: list[str] | None = Field(None, description="unknown_team: the closest known names")
    known_divisions: list[str] | None = Field(None, description="unknown_division: the divisions with data")


class JobAccepted(BaseModel):
    job_id: str
    status: str = Field(description="pending")


class JobStatus(BaseModel):
    job_id: str
    status: str = Field(description="pending, running, completed or failed")
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    error: str | None = Field(description="why a failed job failed")


class QualityRow(BaseModel):
    """One row of the live-quality scoreboard (monitoring.live_quality, exported by the Dagster asset live_quality):
    a model version and A/B variant on one division (or ALL) over a kickoff week ('week') or the rolling window of
    weeks ending with it ('rolling'), beside the de-margined market and the version's Elo-only reference on exactly
    the same matches. Scores are null where no match qualifies."""

    week: dt.date
    window: str
    window_start: dt.date
    window_end: dt.date
    model_name: str
    model_version: str
    variant: str
    division: str
    n: int = Field(description="played matches the version predicted before kickoff")
    log_loss: float | None
    rps: float | None
    brier: float | None
    accuracy: float | None
    ece: float | None
    n_with_odds: int | None
    model_log_loss_on_odds: float | None
    market_log_loss: float | None
    n_elo: int | None
    model_log_loss_on_elo: float | None
    elo_log_loss: float | None
    promotion_log_loss: float | None = Field(description="the version's gate-window log-loss when it was promoted")


class QualityResponse(BaseModel):
    count: int
    rows: list[QualityRow]

