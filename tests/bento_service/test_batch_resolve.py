"""A large batch through the snapshot (Snapshot.resolve_many, feature_matrix), as POST /predict/batch sends it:
every pair of a division's teams, names in other spellings, dates given and not, repeated pairs; the result is the
one request-by-request resolve() and features() give, and stays so with batches scored on several threads at once
(the batch route, the jobs worker and the event loop share the snapshot's cached rows)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from bento_service.schemas import MatchRequest
from bento_service.snapshot import MODEL_FEATURES
from time2bet.serving_contract import model_input


def _batch(snapshot, teams: int = 8, days: int = 40) -> list[MatchRequest]:
    kickoff = max(snapshot.last_played.values()) + dt.timedelta(days=1)
    matches = []
    for k, (division, country) in enumerate(sorted(snapshot.divisions.items())):
        names = sorted(snapshot.teams.loc[snapshot.teams["country"] == country, "team"])[:teams]
        for i, (h, a) in enumerate((h, a) for h in names for a in names if h != a):
            home = h.upper() if (i + k) % 5 == 0 else h          # another spelling: resolved case-insensitively
            date = None if (i + k) % 7 == 0 else kickoff + dt.timedelta(days=(3 * i + k) % days)
            matches.append(MatchRequest(home_team=home, away_team=a, division=division, kickoff_date=date))
    return matches + matches[::3]   # pairs asked twice, same dates


def test_a_large_batch_resolves_as_each_request_does(snapshot):
    matches = _batch(snapshot)
    fixtures = snapshot.resolve_many(matches)
    one_by_one = [snapshot.resolve(m.home_team, m.away_team, m.division, m.kickoff_date) for m in matches]
    assert fixtures.match_ids() == [r["match_id"] for r in one_by_one]
    assert fixtures.kickoffs == [r["match_date"] for r in one_by_one]
    assert fixtures.ordinals.tolist() == [r["match_date"].toordinal() for r in one_by_one]
    assert [fixtures.pairs[c] for c in fixtures.codes] == [(m.division, m.home_team, m.away_team) for m in matches]
    reference = model_input(snapshot.features(pd.DataFrame(one_by_one)), MODEL_FEATURES).to_numpy()
    np.testing.assert_array_equal(snapshot.feature_matrix(fixtures), reference)


def test_batches_on_several_threads_get_their_own_rows(snapshot):
    fresh = dataclasses.replace(snapshot, _rows={})   # an empty cache, filled by the threads below
    matches = _batch(snapshot, teams=10, days=90)
    batches = [matches[i::4] for i in range(4)] * 3
    expected = [snapshot.feature_matrix(snapshot.resolve_many(b)) for b in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda b: fresh.feature_matrix(fresh.resolve_many(b)), batches))
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)
    np.testing.assert_array_equal(snapshot.feature_matrix(snapshot.resolve_many(matches)),
                                  fresh.feature_matrix(fresh.resolve_many(matches)))   # the copy left it alone
