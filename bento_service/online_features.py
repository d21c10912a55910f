"""Feature rows from Feast's online store (TIME2BET_FEATURES=feast) instead of the snapshot's own tables.

The snapshot still resolves a request (team names, divisions, the date rule) and holds the league tables a
season start is rated from (``ratings.season_entry``); the teams' form and ratings and the pair's head-to-head
are read from Feast for every request (time2bet.features.feature_store: the same rows the snapshot export
holds), and turned into model rows by the snapshot's own code (:class:`TeamTable`, ``Snapshot.dated_rows``), so
both paths give the same float64 rows and the same probabilities.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import numpy as np

from bento_service.snapshot import _AWAY_SIDE as AWAY_SIDE
from bento_service.snapshot import _HOME_SIDE as HOME_SIDE
from bento_service.snapshot import NO_SEASON, REFERENCE_DATE, Fixtures, Snapshot, TeamTable
from time2bet.features import feature_store
from time2bet.features.ratings import pi_goal_difference

MAX_COALESCED = 256   # requests sharing one lookup at most


class FeastFeatures:
    """``Snapshot.feature_matrix`` for teams and pairs read from a Feast online store: one lookup per call (the
    teams and the pairs of every request of it). :meth:`coalesced` is the event loop's way (POST /predict): the
    requests waiting share one lookup, as they share one model call (scoring.MicroBatcher), since a lookup's cost
    is mostly Feast's fixed Python work, not the rows. ``last_lookup_s``: the last lookup's time."""

    def __init__(self, store):
        self.store = store
        self.last_lookup_s = 0.0
        self.lookups = 0   # lookups made (coalesced requests share one)
        self._pending: list[tuple[Snapshot, Fixtures, asyncio.Future]] = []
        self._draining = False

    @classmethod
    def from_settings(cls, settings) -> FeastFeatures | None:
        """The reader TIME2BET_FEATURES asks for (None: the snapshot's own tables)."""
        if settings.features != "feast":
            return None
        return cls(feature_store.open_store(settings))

    def feature_matrix(self, snapshot: Snapshot, fixtures: Fixtures) -> np.ndarray:
        return self.feature_matrices([(snapshot, fixtures)])[0]

    def feature_matrices(self, requests: list[tuple[Snapshot, Fixtures]]) -> list[np.ndarray]:
        """The rows of several requests' fixtures from one lookup of all their teams and pairs."""
        ids = [i for _, fixtures in requests for i in fixtures.ids]
        teams = list(dict.fromkeys(t for _, home, away in ids for t in (home, away)))
        pairs = list(dict.fromkeys(feature_store.pair_id(home, away) for _, home, away in ids))
        started = time.perf_counter()
        team_columns, pair_columns = feature_store.online_columns(self.store, teams, pairs)
        self.last_lookup_s = time.perf_counter() - started
        self.lookups += 1
        table = team_table(teams, team_columns, pair_columns)
        seasons = {t: int(s[:4]) for t, s in zip(teams, team_columns["last_season"]) if s is not None}
        out = []
        for snapshot, fixtures in requests:
            latest = np.array([min(seasons.get(h, NO_SEASON), seasons.get(a, NO_SEASON)) for _, h, a in fixtures.ids],
                              dtype=np.float64)
            out.append(snapshot.dated_rows(fixtures, np.column_stack([table.rows(fixtures.ids), latest])))
        return out

    async def coalesced(self, snapshot: Snapshot, fixtures: Fixtures) -> np.ndarray:
        """:meth:`feature_matrix` in one lookup with every request waiting (on the event loop, like the model
        call: while it runs, new requests queue and join the next one)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((snapshot, fixtures, future))
        if not self._draining:
            self._draining = True
            loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_COALESCED], self._pending[MAX_COALESCED:]
                try:
                    rows = self.feature_matrices([(snapshot, fixtures) for snapshot, fixtures, _ in batch])
                except Exception as exc:  # noqa: BLE001 - every request of the lookup gets the error
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for (*_, future), x in zip(batch, rows, strict=True):
                        if not future.done():   # cancelled meanwhile (the client went away)
                            future.set_result(x)
                await asyncio.sleep(0)   # let the requests that arrived meanwhile queue up
        finally:
            self._draining = False


def team_table(teams: list[str], columns: dict[str, list], pairs: dict[str, list]) -> TeamTable:
    """:meth:`TeamTable.build` of Feast's columns, on arrays (no DataFrame: on the request path pandas cost more
    than the lookup): the same values through the same operations, so the same rows (the parity tests check it)."""
    def numbers(name: str) -> np.ndarray:
        return np.array(columns[name], dtype=np.float64)   # None (no row) -> NaN, as the snapshot's reindex

    reference = REFERENCE_DATE.toordinal()
    rest = np.array([np.nan if d is None else float(reference - dt.date.fromisoformat(d).toordinal())
                     for d in columns["previous_match_date"]])

    def side(role: str, names: list[str]) -> np.ndarray:   # as _side_columns(form, role, REFERENCE_DATE)
        out = []
        for name in names:
            column = name[len(role) + 1:]
            if column == "rest_days":
                out.append(rest)
            elif column in ("matches_played", "venue_matches_last5"):
                out.append(np.nan_to_num(numbers(column if column == "matches_played" else f"{role}_{column}"),
                                         nan=0.0))
            else:
                out.append(numbers(f"{role}_{column}" if column.startswith("venue_") else column))
        return np.column_stack(out)

    pi_home, pi_away = np.nan_to_num(numbers("pi_home"), nan=0.0), np.nan_to_num(numbers("pi_away"), nan=0.0)
    head_to_head = {tuple(p.split("|", 1)): r for p, r in zip(pairs["pair_id"], zip(
        *(np.array(pairs[c], dtype=np.float64).tolist() for c in feature_store.H2H_FEATURES)))}
    return TeamTable(codes={t: i for i, t in enumerate(teams)}, home=side("home", HOME_SIDE),
                     away=side("away", AWAY_SIDE), elo=numbers("elo"), pi_home=pi_home, pi_away=pi_away,
                     goal_diff_home=pi_goal_difference(pi_home), goal_diff_away=pi_goal_difference(pi_away),
                     head_to_head=head_to_head)
