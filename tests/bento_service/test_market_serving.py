"""A market-aware model's inputs at serving time (issue 16): the serving snapshot rates every upcoming fixture of the
sample platform with its teams' market-implied ratings as the PLAYED matches' de-margined odds left them, the same
numbers the training rule (time2bet.features.market_ratings.market_ratings) gives a match dated after them, and a
fixture's own odds never change them, in the snapshot nor in the batch predictions' path."""

from __future__ import annotations

import numpy as np
import pandas as pd

from time2bet.features.market_ratings import MARKET_RATING_FEATURES, market_ratings
from time2bet.serving_contract import MARKET_COLUMNS, MODEL_FEATURES
from time2bet.serving_snapshot_store import MARKET_HISTORY_SQL, read_tables, write_snapshot
from time2bet.warehouse.client import Warehouse

PROBS = ["market_prob_home", "market_prob_draw", "market_prob_away"]


def _requests(frame: pd.DataFrame):
    return [(r.home_team, r.away_team, r.division, pd.Timestamp(r.match_date).date()) for r in frame.itertuples()]


def test_upcoming_fixtures_get_the_played_matches_market_ratings_never_their_own(snapshot, batch_features, settings,
                                                                                  tmp_path):
    from bento_service.schemas import MatchColumns
    from bento_service.snapshot import Snapshot
    from time2bet_assets.defs.ml.assets import _with_market_ratings

    warehouse = Warehouse.from_url(settings.warehouse_url)
    played = warehouse.read_sql(MARKET_HISTORY_SQL)
    served = snapshot.features(pd.DataFrame([snapshot.resolve(*r) for r in _requests(batch_features)]))
    ours = served[list(MARKET_RATING_FEATURES)].to_numpy(dtype="float64")
    assert np.isfinite(ours).all()

    # the training rule on the played matches followed by the fixtures, whose own odds it would read only for
    # later dates: blanked, as nothing about an unplayed match is known to the state
    fixtures = batch_features[["match_id", "match_date", "division", "home_team_id", "away_team_id"]].assign(
        **dict.fromkeys(PROBS, np.nan))
    training = market_ratings(pd.concat([played, fixtures], ignore_index=True)).iloc[len(played):]
    np.testing.assert_allclose(ours, training.to_numpy(), rtol=0, atol=1e-9)

    # the fast path's rows are the same
    resolved = snapshot.resolve_many(MatchColumns(*map(list, zip(*_requests(batch_features)))))
    np.testing.assert_array_equal(snapshot.market_matrix(resolved), ours)
    aware = snapshot.model_matrix(resolved, [*MODEL_FEATURES, *MARKET_RATING_FEATURES])   # a market-aware model's rows
    np.testing.assert_array_equal(aware, np.column_stack([snapshot.feature_matrix(resolved), ours]))
    np.testing.assert_array_equal(snapshot.model_matrix(resolved), snapshot.feature_matrix(resolved))   # independent

    # the batch predictions' path: the same numbers, whatever odds the fixtures carry
    odd = batch_features.copy()
    for column in MARKET_COLUMNS:
        odd[column] = {"market_prob_home": 0.97, "market_prob_draw": 0.02, "market_prob_away": 0.01}.get(column, 1.0)
    for frame in (batch_features, odd):
        batch = _with_market_ratings(warehouse, frame)[list(MARKET_RATING_FEATURES)].to_numpy(dtype="float64")
        np.testing.assert_array_equal(batch, ours)

    # the Parquet export carries the state: a service reading it rates the fixtures the same way
    write_snapshot(read_tables(warehouse), tmp_path)
    exported = Snapshot.load_export(tmp_path)
    again = exported.features(pd.DataFrame([exported.resolve(*r) for r in _requests(batch_features)]))
    np.testing.assert_array_equal(again[list(MARKET_RATING_FEATURES)].to_numpy(dtype="float64"), ours)
