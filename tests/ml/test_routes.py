"""compare_routes: the walk-forward table a per-division route ships on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.ml.synthetic import synthetic_matches
from time2bet.ml.routes import compare_routes
from time2bet.serving_contract import MODEL_FEATURES

SEASONS = tuple(f"{y}-{(y + 1) % 100:02d}" for y in range(2014, 2024))


def _division(code: str, seasons: tuple[str, ...], seed: int) -> pd.DataFrame:
    frame = synthetic_matches(seasons, per_season=120, seed=seed)
    frame["division"] = code
    frame["match_id"] = code + "-" + frame["match_id"]
    rng = np.random.default_rng(seed)
    for column in MODEL_FEATURES:   # the columns the synthetic signal does not have: noise
        if column not in frame:
            frame[column] = rng.normal(0.0, 1.0, len(frame))
    return frame


def test_a_division_whose_data_stops_earlier_is_validated_on_its_own_last_seasons():
    """The mirror has divisions that stop years before the others (B1 and ten more end in 2013-14): the pooled
    model must be validated on those divisions' own last seasons (trained on every division's seasons before
    each), not on seasons they never played (that scored zero matches and raised)."""
    frame = pd.concat([_division("E0", SEASONS, 1), _division("B1", SEASONS[:7], 2)], ignore_index=True)
    table = compare_routes(frame, model_name="logreg", n_folds=2).set_index("division")

    assert set(table.index) == {"E0", "B1"}
    assert table.loc["B1", "seasons"] == "2019-20,2020-21" and table.loc["B1", "n"] == 240
    assert table.loc["E0", "seasons"] == "2021-22,2022-23" and table.loc["E0", "n"] == 240   # 2023-24: held out
    for division in table.index:
        assert np.isfinite(table.loc[division, ["division_log_loss", "pooled_log_loss"]].astype(float)).all()
        assert table.loc[division, "ships"] == (table.loc[division, "gain"] > 0)
