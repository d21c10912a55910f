"""The serving snapshot: what the warehouse knows about every team, read once, and feature rows built from it.

A fixture's features in the batch path are ``analytics.upcoming_match_features`` (dbt) joined with
``ratings.fixture_ratings``. For a date after a team's last played match, that mart takes the team's
``int_team_form_computed`` "next match" row (``is_next_match``) and the pair's ``int_head_to_head_computed``
"next meeting" row, and turns them into columns with the ``side_features`` / ``head_to_head_features`` macros
(dbt_project/macros/form.sql). This module loads exactly those rows and applies the same column mapping,
driven by the shared column lists of :mod:`time2bet.features`; ratings come from
:class:`time2bet.features.ratings.NextMatchRatings` over ``ratings.team_state`` and ``ratings.season_entry``: the
rating run's own rules for a team's next match, season starts included (entry rule, regression), which rate
every fixture of the batch path to the bit. The train/serve skew test (tests/bento_service) checks the result
equals the mart, row for row.

A date on or before a team's latest played match is refused: the mart would use a historical row the
snapshot does not hold.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bento_service.schemas import MatchColumns
from time2bet.features.market_ratings import MARKET_RATING_FEATURES, next_match_market_ratings
from time2bet.features.ratings import (
    RATING_PARAMS,
    NextMatchRatings,
    elo_expectation,
    pi_goal_difference,
    tier_initial_rating,
)
from time2bet.football import season_of
from time2bet.ledger.record import KickoffDays, PairText, match_id
from time2bet.serving_contract import (  # the service's input contract
    FORM_STATS,
    FORM_WINDOWS,
    ID_COLUMNS,
    MODEL_FEATURES,
    RATING_FEATURES,
    REST_DAYS_CAP,
    REST_DAYS_FEATURES,
    VENUE_STATS,
    model_input,
)
from time2bet.serving_snapshot_store import features_as_of, read_snapshot, read_tables
from time2bet.warehouse.client import Warehouse

logger = logging.getLogger("time2bet.serving")
# The date cached feature rows are computed for (see feature_matrix): before any match, so their rest days are
# negative and model_input's cap never touches them; it applies once the request's date is added.
REFERENCE_DATE = dt.date(1900, 1, 1)
MAX_CACHED_PAIRS = 50_000              # cached feature rows per snapshot (~36 MB at most); cleared when full
CHECKED_PAIRS = 256                    # pairs the team table is checked on against features() when it is built
HOME_ADVANTAGE = 65.0                  # the rating run's (elo_ratings' default), which features() uses
NO_SEASON = -1                         # last-season year of a team without a played match


class RequestError(ValueError):
    """A request the snapshot cannot answer; ``reason`` labels the metric, ``detail`` is the JSON body."""

    def __init__(self, reason: str, message: str, status: int = 422, **extra):
        super().__init__(message)
        self.reason, self.status = reason, status
        self.detail = {"error": reason, "message": message, **extra}


def _side_columns(form: pd.DataFrame, side: str, match_date: pd.Series) -> pd.DataFrame:
    """macro side_features(form, side, match_date): the side's columns from its form row."""
    out = pd.DataFrame(index=form.index)
    previous = pd.to_datetime(form["previous_match_date"])
    out[f"{side}_rest_days"] = (pd.to_datetime(match_date) - previous).dt.days
    out[f"{side}_matches_played"] = form["matches_played"].fillna(0)
    for stat in FORM_STATS:
        for window in FORM_WINDOWS:
            out[f"{side}_{stat}_{window}"] = form[f"{stat}_{window}"]
    out[f"{side}_venue_matches_last5"] = form[f"{side}_venue_matches_last5"].fillna(0)
    for stat in VENUE_STATS:
        out[f"{side}_venue_{stat}_last5"] = form[f"{side}_venue_{stat}_last5"]
    return out


def _head_to_head_columns(h2h: pd.DataFrame, home_team_id: pd.Series) -> pd.DataFrame:
    """macro head_to_head_features(h2h, home_team_id): the pair's history from the home team's side."""
    home_is_a = (home_team_id == h2h["team_a_id"]).to_numpy()
    out = pd.DataFrame(index=h2h.index)
    out["h2h_meetings_last5"] = h2h["meetings_last5"].fillna(0)
    out["h2h_home_points_last5"] = np.where(home_is_a, h2h["team_a_points_last5"], h2h["team_b_points_last5"])
    out["h2h_home_goal_diff_last5"] = np.where(home_is_a, h2h["team_a_goal_diff_last5"], -h2h["team_a_goal_diff_last5"])
    return out


_REST_COLUMNS = [MODEL_FEATURES.index(c) for c in REST_DAYS_FEATURES]   # the only columns that depend on the date
_HOME_SIDE = [c for c in MODEL_FEATURES if c.startswith("home_") and c not in RATING_FEATURES]
_AWAY_SIDE = [c for c in MODEL_FEATURES if c.startswith("away_") and c not in RATING_FEATURES]
_H2H = ["h2h_meetings_last5", "h2h_home_points_last5", "h2h_home_goal_diff_last5"]
_SLICES = {name: [MODEL_FEATURES.index(c) for c in columns]
           for name, columns in (("home", _HOME_SIDE), ("away", _AWAY_SIDE), ("h2h", _H2H),
                                 ("ratings", list(RATING_FEATURES)))}
assert sorted(i for s in _SLICES.values() for i in s) == list(range(len(MODEL_FEATURES))), "every feature has one source"


@dataclass
class TeamTable:
    """Every team's half of a feature row, and every pair's head-to-head, computed once when the snapshot loads,
    so that any valid pair costs the same gather on the request path, the first time as the hundredth.

    Side columns are the form columns of ``features()`` at REFERENCE_DATE (home and away roles); ratings are the
    team state fixture_ratings reads (Elo, NaN for a team without one, which then starts at its division's tier;
    pi-ratings and their goal-difference transform). Rows built from it equal ``features()``'s bit for bit: the
    same values go through the same float operations; that is checked on sample pairs when the table is built."""

    codes: dict[str, int]                 # team_id -> row of the arrays below
    home: np.ndarray                      # (teams, len(_HOME_SIDE))
    away: np.ndarray                      # (teams, len(_AWAY_SIDE))
    elo: np.ndarray
    pi_home: np.ndarray
    pi_away: np.ndarray
    goal_diff_home: np.ndarray            # pi_goal_difference(pi_home), per team
    goal_diff_away: np.ndarray            # pi_goal_difference(pi_away), per team
    head_to_head: dict[tuple[str, str], tuple[float, float, float, float]]   # (a, b) -> meetings, a pts, b pts, a gd

    @classmethod
    def build(cls, team_ids: Sequence[str], form: pd.DataFrame, head_to_head: pd.DataFrame,
              team_state: pd.DataFrame) -> TeamTable:
        ids = pd.Index(list(dict.fromkeys(team_ids)))
        rows = form.reindex(ids)
        date = pd.Series([REFERENCE_DATE] * len(ids), index=rows.index)
        home = _side_columns(rows, "home", date)[_HOME_SIDE].astype("float64").to_numpy()
        away = _side_columns(rows, "away", date)[_AWAY_SIDE].astype("float64").to_numpy()
        state = team_state.set_index("team_id").reindex(ids) if len(team_state) else pd.DataFrame(index=ids)

        def column(name: str, default: float | None = None) -> np.ndarray:   # as fixture_ratings' side()
            values = (state[name] if name in state else pd.Series(np.nan, index=ids)).astype(float)
            return (values if default is None else values.fillna(default)).to_numpy()

        pi_home, pi_away = column("pi_home", 0.0), column("pi_away", 0.0)
        h2h = {}
        for (a, b), r in zip(head_to_head.index, head_to_head[
                ["meetings_last5", "team_a_points_last5", "team_b_points_last5", "team_a_goal_diff_last5"]
        ].astype(float).itertuples(index=False, name=None)):
            h2h[(a, b)] = r
        return cls(codes={t: i for i, t in enumerate(ids)}, home=home, away=away, elo=column("elo"),
                   pi_home=pi_home, pi_away=pi_away, goal_diff_home=pi_goal_difference(pi_home),
                   goal_diff_away=pi_goal_difference(pi_away), head_to_head=h2h)

    def rows(self, ids: Sequence[tuple[str, str, str]]) -> np.ndarray:
        """MODEL_FEATURES rows at REFERENCE_DATE of (division, home_team_id, away_team_id) triples."""
        n = len(ids)
        h = np.fromiter((self.codes[i[1]] for i in ids), dtype=np.intp, count=n)
        a = np.fromiter((self.codes[i[2]] for i in ids), dtype=np.intp, count=n)
        out = np.empty((n, len(MODEL_FEATURES)))
        out[:, _SLICES["home"]] = self.home[h]
        out[:, _SLICES["away"]] = self.away[a]
        h2h = np.empty((n, 3))
        for k, (_, home_id, away_id) in enumerate(ids):   # macro head_to_head_features, as _head_to_head_columns
            lo, hi = min(home_id, away_id), max(home_id, away_id)
            meetings, a_points, b_points, a_diff = self.head_to_head.get((lo, hi), _NO_MEETING)
            home_is_a = meetings == meetings and home_id == lo   # noqa: PLR0124 - NaN test; a pair row without meetings counts as none
            h2h[k] = (meetings if meetings == meetings else 0.0, a_points if home_is_a else b_points,  # noqa: PLR0124 - NaN test
                      a_diff if home_is_a else -a_diff)
        out[:, _SLICES["h2h"]] = h2h
        start = np.array([_tier_start(i[0]) for i in ids])
        home_elo = np.where(np.isnan(self.elo[h]), start, self.elo[h])
        away_elo = np.where(np.isnan(self.elo[a]), start, self.elo[a])
        diff = home_elo - away_elo + HOME_ADVANTAGE
        out[:, _SLICES["ratings"]] = np.column_stack([
            home_elo, away_elo, diff, elo_expectation(diff), self.pi_home[h], self.pi_away[h], self.pi_home[a],
            self.pi_away[a], self.goal_diff_home[h] - self.goal_diff_away[a]])
        return out


_NO_MEETING = (np.nan, np.nan, np.nan, np.nan)


@functools.lru_cache(maxsize=64)
def _tier_start(division: str) -> float:
    return float(tier_initial_rating(division))


def _season_year(ordinal: int) -> int:
    """The start year of the season of a date (time2bet.football.season_of: seasons turn on 1 July)."""
    return int(season_of(dt.date.fromordinal(ordinal))[:4])


@dataclass
class Fixtures:
    """Resolved requests: the distinct (division, home, away) as asked (``pairs``) and as team ids (``ids``),
    each request's pair (``codes``), its kickoff date (the default filled in) and that date's ordinal."""

    pairs: list[tuple[str, str, str]]
    ids: list[tuple[str, str, str]]
    codes: np.ndarray
    kickoffs: list[dt.date]
    ordinals: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)

    def kickoff_days(self) -> list[str]:
        """Each request's kickoff date as YYYY-MM-DD (formatted once per distinct date: a batch has few)."""
        return KickoffDays(self.ordinals).tolist()

    def match_ids(self) -> list[str]:
        """Each request's match id (macro match_id), as :meth:`Snapshot.resolve` gives it."""
        return PairText(self.ids, self.codes, self.ordinals, hashed=True).tolist()


@dataclass
class Snapshot:
    divisions: dict[str, str]             # division -> country, divisions with data
    teams: pd.DataFrame                   # country, team, team_id (every name seen in matches or fixtures)
    form: pd.DataFrame                    # int_team_form_computed next-match rows, index team_id
    head_to_head: pd.DataFrame            # int_head_to_head_computed next-meeting rows, index (team_a_id, team_b_id)
    team_state: pd.DataFrame              # ratings.team_state
    season_entry: pd.DataFrame            # ratings.season_entry
    predictions: pd.DataFrame             # predictions.upcoming_matches (every variant)
    last_played: dict[str, dt.date]       # team_id -> its latest played match date
    features_as_of: dt.date | None        # latest played match overall
    loaded_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    version: str | None = None            # the exported version read (time2bet.serving_snapshot_store); None: warehouse
    _names: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)   # country -> {name: team_id}
    # (division, home_team_id, away_team_id) -> MODEL_FEATURES row at REFERENCE_DATE (see feature_matrix)
    _rows: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict, repr=False)
    _date_dependent: bool = field(default=False, repr=False)   # see feature_matrix
    _table: TeamTable | None = field(default=None, init=False, repr=False)   # see team_table
    _table_checked: bool = field(default=False, init=False, repr=False)
    # the ratings of a team's next match (team_state + season_entry), as the rating run gives them
    next_match: NextMatchRatings = field(init=False, repr=False)
    # where feature_matrix reads teams' and pairs' features when not from this snapshot (bento_service.online_features)
    online: Any = field(default=None, repr=False)
    # the market-implied ratings as the played matches' odds left them (time2bet.features.market_ratings
    # .market_rating_state): a market-aware model's extra inputs, never a fixture's own odds; empty in an old export
    market_ratings: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def __post_init__(self):
        self.next_match = NextMatchRatings(self.team_state, self.season_entry, **RATING_PARAMS)
        for country, group in self.teams.groupby("country"):
            self._names[country] = dict(zip(group["team"], group["team_id"], strict=True))

    # --- loading ----------------------------------------------------------------------------------------

    @classmethod
    def load(cls, warehouse_url: str) -> Snapshot:
        """Read from the warehouse itself (the tables of time2bet.serving_snapshot_store.SNAPSHOT_QUERIES)."""
        return cls.from_tables(read_tables(Warehouse.from_url(warehouse_url)))

    @classmethod
    def load_export(cls, root: str | Path) -> Snapshot | None:
        """Read the version Dagster exported last under ``root`` (asset serving_snapshot), or None if none yet."""
        found = read_snapshot(root)
        if found is None:
            return None
        pointer, tables = found
        return cls.from_tables(tables, version=pointer["version"])

    @classmethod
    def from_tables(cls, tables: dict[str, pd.DataFrame], version: str | None = None) -> Snapshot:
        teams = tables["teams"]
        divisions = dict(teams[["division", "country"]].drop_duplicates().itertuples(index=False, name=None))
        teams = teams[["country", "team", "team_id"]].drop_duplicates().sort_values(["country", "team"])
        form = tables["form"].set_index("team_id")
        h2h = tables["head_to_head"].set_index(["team_a_id", "team_b_id"])
        state = tables["team_state"]
        predictions = tables["predictions"].copy()
        predictions["match_date"] = pd.to_datetime(predictions["match_date"]).dt.date
        last = pd.to_datetime(form["previous_match_date"]).dropna()
        snapshot = cls(
            divisions=divisions, teams=teams.reset_index(drop=True), form=form, head_to_head=h2h, team_state=state,
            season_entry=tables["season_entry"],
            predictions=predictions, last_played={k: v.date() for k, v in last.items()},
            features_as_of=features_as_of(tables), version=version,
            market_ratings=tables.get("market_ratings", pd.DataFrame()),
        )
        snapshot.team_table()   # built and checked now, not by the first request
        return snapshot

    # --- lookups ----------------------------------------------------------------------------------------

    def age_seconds(self) -> float:
        return (dt.datetime.now(dt.UTC) - self.loaded_at).total_seconds()

    def default_kickoff(self, home_id: str, away_id: str) -> dt.date:
        """Today, or the day after either team's latest match if the data is newer than today."""
        latest = max((self.last_played.get(t) for t in (home_id, away_id) if t in self.last_played),
                     default=None)
        today = dt.datetime.now(dt.UTC).date()
        return max(today, latest + dt.timedelta(days=1)) if latest else today

    def team_id(self, division: str, name: str) -> str:
        if division not in self.divisions:
            raise RequestError("unknown_division", f"unknown division {division!r}",
                               known_divisions=sorted(self.divisions))
        names = self._names.get(self.divisions[division], {})
        if name in names:
            return names[name]
        folded = {n.casefold(): n for n in names}
        if name.casefold() in folded:
            return names[folded[name.casefold()]]
        close = difflib.get_close_matches(name, list(names), n=5, cutoff=0.5)
        raise RequestError("unknown_team", f"unknown team {name!r} in division {division}'s country",
                           team=name, closest=close)

    # --- features ---------------------------------------------------------------------------------------

    def resolve(self, home_team: str, away_team: str, division: str, kickoff: dt.date | None) -> dict:
        """A request as a fixture row (ids, date), validated; raises RequestError."""
        home_id, away_id = self.team_id(division, home_team), self.team_id(division, away_team)
        if home_id == away_id:
            raise RequestError("same_team", f"home and away are the same team ({home_team!r})")
        kickoff = kickoff or self.default_kickoff(home_id, away_id)
        for name, team in ((home_team, home_id), (away_team, away_id)):
            last = self.last_played.get(team)
            if last is not None and kickoff <= last:
                raise RequestError("kickoff_not_after_latest_match",
                                   f"kickoff_date {kickoff} is not after {name}'s latest played match ({last}); "
                                   "the serving snapshot only holds each team's latest state",
                                   latest_played=last.isoformat())
        return {"match_id": match_id(division, kickoff, home_id, away_id), "division": division,
                "match_date": kickoff, "home_team": home_team, "away_team": away_team,
                "home_team_id": home_id, "away_team_id": away_id}

    def features(self, fixtures: pd.DataFrame) -> pd.DataFrame:
        """ID columns + MODEL_FEATURES for fixtures (match_id, division, match_date, home/away team + ids), in
        the batch path's layout: upcoming_match_features columns, then the fixture_ratings columns."""
        fixtures = fixtures.reset_index(drop=True)
        date = pd.to_datetime(fixtures["match_date"])
        home = self.form.reindex(fixtures["home_team_id"]).reset_index(drop=True)
        away = self.form.reindex(fixtures["away_team_id"]).reset_index(drop=True)
        pair = pd.MultiIndex.from_arrays([
            np.minimum(fixtures["home_team_id"], fixtures["away_team_id"]),
            np.maximum(fixtures["home_team_id"], fixtures["away_team_id"]),
        ])
        h2h = self.head_to_head.reindex(pair).reset_index()
        h2h.columns = ["team_a_id", "team_b_id", *h2h.columns[2:]]
        h2h.loc[h2h["meetings_last5"].isna(), ["team_a_id", "team_b_id"]] = None   # left join: no pair row
        ids = fixtures.reindex(columns=list(ID_COLUMNS))
        out = pd.concat([ids, _side_columns(home, "home", date), _side_columns(away, "away", date),
                         _head_to_head_columns(h2h, fixtures["home_team_id"])], axis=1)
        ratings = self.next_match.frame(fixtures).reset_index(drop=True)
        for column in RATING_FEATURES:
            out[column] = ratings[column].to_numpy()
        market = self._market_frame(fixtures)
        for column in MARKET_RATING_FEATURES:   # a market-aware model's; the others never read them
            out[column] = market[column].to_numpy()
        return out

    def _market_frame(self, fixtures: pd.DataFrame) -> pd.DataFrame:
        """MARKET_RATING_FEATURES of fixtures (division, home/away team ids): the teams' ratings in the snapshot's
        state, as time2bet.features.market_ratings rates a match after the played ones; NaN without a state."""
        if not len(self.market_ratings):
            return pd.DataFrame(np.nan, index=fixtures.index, columns=list(MARKET_RATING_FEATURES))
        return next_match_market_ratings(self.market_ratings, fixtures)

    def model_matrix(self, fixtures: Fixtures, features: Sequence[str] = MODEL_FEATURES) -> np.ndarray:
        """(n, len(features)) rows of resolved fixtures in a model's own input order (``ServedModel.input_features``):
        ``feature_matrix`` itself for MODEL_FEATURES (the independent family), else its columns and
        ``market_matrix``'s (a market-aware model) picked by name; a name neither has is an error."""
        features = tuple(features)
        if features == MODEL_FEATURES:
            return self.feature_matrix(fixtures)
        names = [*MODEL_FEATURES, *MARKET_RATING_FEATURES]
        unknown = [f for f in features if f not in names]
        if unknown:
            raise KeyError(f"the serving snapshot has no feature {unknown}")
        both = np.column_stack([self.feature_matrix(fixtures), self.market_matrix(fixtures)])
        return both[:, [names.index(f) for f in features]]

    def market_matrix(self, fixtures: Fixtures) -> np.ndarray:
        """(n, len(MARKET_RATING_FEATURES)) rows of resolved fixtures, equal to ``features()``'s market columns: what
        a market-aware model reads beside ``feature_matrix``'s MODEL_FEATURES (they do not depend on the date: the
        state is the played matches', and no fixture's odds move it). Computed once per distinct pair."""
        pairs = pd.DataFrame(fixtures.ids, columns=["division", "home_team_id", "away_team_id"])
        return self._market_frame(pairs).to_numpy(dtype="float64")[fixtures.codes]

    # --- the fast path: many requests at once, numpy rows ----------------------------------------------

    def resolve_many(self, matches: MatchColumns | Sequence) -> Fixtures:
        """Requests (MatchColumns, or objects with home_team, away_team, division, kickoff_date) resolved like
        :meth:`resolve`, row for row, but grouped: each distinct (division, home, away) is looked up once and the
        date rule is checked on arrays. On any refusal the requests go through :meth:`resolve` one by one, so the
        error raised is exactly the one the first refused request gets there (with its ``index`` when there are
        several)."""
        columns = MatchColumns.of(matches)
        try:
            return self._resolve_grouped(columns)
        except RequestError as grouped:
            for i, request in enumerate(zip(columns.home_team, columns.away_team, columns.division,
                                            columns.kickoff_date)):
                try:
                    self.resolve(*request)
                except RequestError as exc:
                    if len(columns) > 1:
                        exc.detail["index"] = i
                    raise
            raise grouped   # noqa: TRY201  # pragma: no cover - the grouped check refused what resolve() accepts

    def _resolve_grouped(self, columns: MatchColumns) -> Fixtures:
        pairs: dict[tuple[str, str, str], int] = {}
        keys = zip(columns.division, columns.home_team, columns.away_team)
        codes = np.fromiter((pairs.setdefault(k, len(pairs)) for k in keys), dtype=np.intp, count=len(columns))
        kickoffs: list[dt.date | None] = list(columns.kickoff_date)
        ids, latest, default = [], [], []
        never = dt.date.min.toordinal()
        teams: dict[tuple[str, str], tuple[str, int]] = {}   # (division, name) -> (team id, latest match ordinal)
        for division, home, away in pairs:
            sides = []
            for name in (home, away):   # each distinct team looked up once, however many pairs it is in
                team = teams.get((division, name))
                if team is None:
                    team_id = self.team_id(division, name)
                    played = self.last_played.get(team_id)
                    team = teams[(division, name)] = (team_id, played.toordinal() if played is not None else never)
                sides.append(team)
            (home_id, home_latest), (away_id, away_latest) = sides
            if home_id == away_id:
                raise RequestError("same_team", f"home and away are the same team ({home!r})")
            ids.append((division, home_id, away_id))
            latest.append(max(home_latest, away_latest))
            default.append(None)
        for i in [i for i, k in enumerate(kickoffs) if k is None]:   # the pair's default date, once per pair
            c = codes[i]
            if default[c] is None:
                default[c] = self.default_kickoff(*ids[c][1:])
            kickoffs[i] = default[c]
        ordinals = np.fromiter((k.toordinal() for k in kickoffs), dtype=np.int64, count=len(kickoffs))
        if (ordinals <= np.asarray(latest, dtype=np.int64)[codes]).any():
            raise RequestError("kickoff_not_after_latest_match", "kickoff_date is not after a team's latest match")
        return Fixtures(pairs=list(pairs), ids=ids, codes=codes, kickoffs=kickoffs, ordinals=ordinals)

    def feature_matrix(self, fixtures: Fixtures) -> np.ndarray:
        """(n, len(MODEL_FEATURES)) float64 feature rows of resolved fixtures, equal to ``features()``'s.

        Each distinct (division, home, away) gets one row for REFERENCE_DATE, from the precomputed team table
        (:meth:`team_table`; from :meth:`features`, the pandas code the skew test compares with the batch path, if
        the table failed its check), cached per pair. The match date enters the features only through the rest
        days, ``(match_date - previous_match_date).days``, a whole number of days, so the row for any date is that
        row plus ``(date - REFERENCE_DATE).days`` in the two rest-day columns (exact in float64; a missing previous
        match stays NaN), capped as model_input caps them. That is checked whenever rows come from features()
        (built for the day after too): should any other feature ever depend on the date, this logs an error and
        computes every row with :meth:`features` for its own date instead (slow, never skewed). The one planned
        exception is a season start: a row whose date lies in a later season than a team's latest match gets its
        ratings from NextMatchRatings for that date (:meth:`_season_starts`), as features() does."""
        if self.online is not None:   # TIME2BET_FEATURES=feast: the rows of Feast's online store
            return self.online.feature_matrix(self, fixtures)
        table = self.team_table()
        if self._date_dependent:
            return self._rows_for_dates(fixtures)
        rows = self._rows
        missing = [k for k in dict.fromkeys(fixtures.ids) if k not in rows]
        if missing:
            if table is not None:   # a gather from the team table: microseconds, whatever the pair
                built = table.rows(missing)
            else:   # features() for both dates in one call (its fixed cost is ~10 ms)
                n = len(missing)
                both = self._build(missing * 2, [REFERENCE_DATE] * n + [REFERENCE_DATE + dt.timedelta(days=1)] * n)
                if not self._only_rest_days_move(both[:n], both[n:]):
                    return self._rows_for_dates(fixtures)
                built = both[:n]
            if len(rows) + len(missing) > MAX_CACHED_PAIRS:
                rows.clear()
            # each cached row ends with the pair's earliest latest season (see _season_starts)
            rows.update(zip(missing, np.column_stack([built, self._latest_seasons(missing)])))
        return self.dated_rows(fixtures, np.stack([rows[k] for k in fixtures.ids]))

    def dated_rows(self, fixtures: Fixtures, unique: np.ndarray) -> np.ndarray:
        """Each request's row from its pair's REFERENCE_DATE row (``unique``, one per ``fixtures.ids``, ending with
        the pair's earliest latest season): rest days moved to its date and capped, season starts rated."""
        out = unique[fixtures.codes, :-1]
        shift = (fixtures.ordinals - REFERENCE_DATE.toordinal()).astype(np.float64)
        out[:, _REST_COLUMNS] = np.minimum(out[:, _REST_COLUMNS] + shift[:, None], REST_DAYS_CAP)  # as model_input
        self._season_starts(fixtures, out, unique[:, -1])
        return out

    def _latest_seasons(self, ids: Sequence[tuple[str, str, str]]) -> np.ndarray:
        """Per (division, home, away): the start year of the earlier of the two teams' latest seasons."""
        last = self._last_year
        return np.array([min(last.get(h, NO_SEASON), last.get(a, NO_SEASON)) for _, h, a in ids], dtype=np.float64)

    @functools.cached_property
    def _last_year(self) -> dict[str, int]:
        state = self.team_state
        if "last_season" not in state:   # a team state from before seasons were kept: never a season start
            return {t: 9999 for t in state["team_id"]}
        return {t: int(str(s)[:4]) for t, s in zip(state["team_id"], state["last_season"])}

    def _season_starts(self, fixtures: Fixtures, out: np.ndarray, latest: np.ndarray) -> None:
        """Replace the rating columns of rows dated in a later season than a team's latest match (or with a team
        that has none) by NextMatchRatings' for that date and pair: the entry rule and the season regression
        move a team's Elo at its first match of a season. Other rows keep the cached current ratings."""
        ordinals, back = np.unique(fixtures.ordinals, return_inverse=True)
        years = np.array([_season_year(o) for o in ordinals.tolist()], dtype=np.float64)[back]
        rows = np.flatnonzero(years > latest[fixtures.codes])
        if not len(rows):
            return
        ids = [fixtures.ids[c] for c in fixtures.codes[rows].tolist()]
        season = {o: season_of(k) for o, k in dict(zip(fixtures.ordinals[rows].tolist(),
                                                       [fixtures.kickoffs[i] for i in rows.tolist()])).items()}
        ratings = self.next_match.columns([i[0] for i in ids], [i[1] for i in ids], [i[2] for i in ids],
                                          [season[o] for o in fixtures.ordinals[rows].tolist()])
        out[np.ix_(rows, _SLICES["ratings"])] = np.column_stack([ratings[c] for c in RATING_FEATURES])

    def team_table(self) -> TeamTable | None:
        """The precomputed :class:`TeamTable`, built and checked once: its rows must equal ``features()``'s on
        sample pairs (every stored fixture and CHECKED_PAIRS random pairs of teams of one country), and
        ``features()`` must depend on the date only through the rest days (else every row is built for its own
        date, see feature_matrix). None if a check fails: then rows come from ``features()``, cached per pair."""
        if self._table_checked:
            return self._table
        self._table_checked = True
        table = TeamTable.build(self.teams["team_id"], self.form, self.head_to_head, self.team_state)
        sample = self._sample_pairs()
        if not sample:
            self._table = table
            return table
        n = len(sample)
        both = self._build(sample * 2, [REFERENCE_DATE] * n + [REFERENCE_DATE + dt.timedelta(days=1)] * n)
        if not self._only_rest_days_move(both[:n], both[n:]):
            return None
        if np.array_equal(table.rows(sample), both[:n], equal_nan=True):
            self._table = table
        else:
            logger.error("the precomputed team table differs from features() on sample pairs: feature rows are "
                         "built per pair instead (see Snapshot.team_table)")
        return self._table

    def _sample_pairs(self) -> list[tuple[str, str, str]]:
        """Stored fixtures' pairs, then random pairs of teams of one country (seeded: the same every load)."""
        pairs = [(d, self.team_id(d, h), self.team_id(d, a)) for d, h, a in zip(
            self.predictions["division"], self.predictions["home_team"], self.predictions["away_team"])
            if d in self.divisions and h in self._names.get(self.divisions[d], {})
            and a in self._names.get(self.divisions[d], {})]
        rng = np.random.default_rng(0)
        by_country = {country: division for division, country in sorted(self.divisions.items())}
        countries = sorted(c for c in by_country if len(self._names.get(c, {})) > 1)
        for _ in range(CHECKED_PAIRS if countries else 0):
            country = countries[rng.integers(len(countries))]
            ids = sorted(set(self._names[country].values()))
            home, away = rng.choice(len(ids), size=2, replace=False)
            pairs.append((by_country[country], ids[home], ids[away]))
        return list(dict.fromkeys(pairs))

    def _only_rest_days_move(self, day: np.ndarray, next_day: np.ndarray) -> bool:
        """Whether rows a day apart differ by one rest day and nothing else; if not, log it and build every row for
        its own date from now on."""
        step = next_day - day
        expected = np.zeros(step.shape[1])
        expected[_REST_COLUMNS] = 1.0   # a day later: one more rest day, nothing else changes (NaN stays NaN)
        if np.array_equal(np.isnan(day), np.isnan(next_day)) and np.all((step == expected) | np.isnan(step)):
            return True
        logger.error("a feature other than the rest days depends on the match date: feature rows are no "
                     "longer cached (see Snapshot.feature_matrix)")
        self._date_dependent = True
        return False

    def _build(self, ids: list[tuple[str, str, str]], date: dt.date | list[dt.date]) -> np.ndarray:
        frame = pd.DataFrame(ids, columns=["division", "home_team_id", "away_team_id"])
        frame["match_id"], frame["match_date"] = None, date
        return model_input(self.features(frame), MODEL_FEATURES).to_numpy()

    def _rows_for_dates(self, fixtures: Fixtures) -> np.ndarray:
        return self._build([fixtures.ids[c] for c in fixtures.codes], list(fixtures.kickoffs))

    # --- stored predictions -----------------------------------------------------------------------------

    def stored(self, variant: str = "champion") -> pd.DataFrame:
        return self.predictions[self.predictions["variant"] == variant]
