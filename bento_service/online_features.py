"""Feature rows from Feast's online store (TIME2BET_FEATURES=feast) instead of the snapshot's own tables.

The snapshot still resolves a request (team names, divisions, the date rule) and holds the league tables a
season start is rated from (``ratings.season_entry``); the teams' form and ratings and the pair's head-to-head
are read from Feast for every request (time2bet.features.feature_store: the same rows the snapshot export
holds), and turned into model rows by the snapshot's own code (:class:`TeamTable`, ``Snapshot.dated_rows``), so
both paths give the same float64 rows and the same probabilities.
"""

from __future__ import annotations

import time

import numpy as np

from bento_service.snapshot import NO_SEASON, Fixtures, Snapshot, TeamTable
from time2bet.features import feature_store


class FeastFeatures:
    """``Snapshot.feature_matrix`` for teams and pairs read from a Feast online store (one lookup for the
    teams, one for the pairs, per call). ``last_lookup_s``: the last call's time in Feast (bench/serve.py)."""

    def __init__(self, store):
        self.store = store
        self.last_lookup_s = 0.0

    @classmethod
    def from_settings(cls, settings) -> FeastFeatures | None:
        """The reader TIME2BET_FEATURES asks for (None: the snapshot's own tables)."""
        if settings.features != "feast":
            return None
        return cls(feature_store.open_store(settings))

    def feature_matrix(self, snapshot: Snapshot, fixtures: Fixtures) -> np.ndarray:
        teams = list(dict.fromkeys(t for _, home, away in fixtures.ids for t in (home, away)))
        pairs = list(dict.fromkeys(feature_store.pair_id(home, away) for _, home, away in fixtures.ids))
        started = time.perf_counter()
        state = feature_store.online_state(self.store, teams, pairs)
        self.last_lookup_s = time.perf_counter() - started
        table = TeamTable.build(teams, state["form"], state["head_to_head"], state["team_state"])
        seasons = {t: int(str(s)[:4]) for t, s in zip(state["team_state"]["team_id"], state["team_state"]["last_season"])
                   if s is not None}
        latest = np.array([min(seasons.get(h, NO_SEASON), seasons.get(a, NO_SEASON)) for _, h, a in fixtures.ids],
                          dtype=np.float64)
        return snapshot.dated_rows(fixtures, np.column_stack([table.rows(fixtures.ids), latest]))
