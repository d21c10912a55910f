"""Model families and the features each may read, beyond the dbt marts' (serving_contract.MODEL_FEATURES).

- ``independent`` (default): results-derived features only, plus the Dixon-Coles goals model's walk-forward
  outputs (expected goals, its 1X2 and over/under 2.5); never any odds. Users looking for value against the
  market need a model that has not read it.
- ``market-aware``: the same, plus team ratings fitted to the de-margined odds of earlier matches
  (:mod:`time2bet.features.market_ratings`); a match's own odds never reach its features.

Both sets are computed from a frame of played matches (and, for the predicted rows, the same frame: every
feature of a row reads earlier dates only), so a training window, its walk-forward folds and a later test
window see what was known at each kickoff.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from time2bet.features.market_ratings import MARKET_RATING_FEATURES, market_ratings
from time2bet.ml.goals import GOALS_FEATURES, walk_forward_goals
from time2bet.serving_contract import DEFAULT_FAMILY, MODEL_FEATURES, check_family

GOALS_DETAIL = ("goals_rho",)  # with goals_exp_*, rebuilds a row's score matrix (markets); not a model input


def family_features(base: Sequence[str], family: str = DEFAULT_FAMILY, *, goals: bool = True) -> list[str]:
    """The model inputs of ``family``: ``base`` and the goals model's outputs (unless ``goals`` is False), plus
    the market-implied ratings for the market-aware family."""
    check_family(family)
    extra = list(GOALS_FEATURES) if goals else []
    if family == "market-aware":
        extra += list(MARKET_RATING_FEATURES)
    return [*base, *extra]


def with_family_columns(frame: pd.DataFrame, family: str = DEFAULT_FAMILY) -> pd.DataFrame:
    """``frame`` (played matches, market_prob_* where odds exist) with the goals model's walk-forward columns and,
    for the market-aware family, the market-implied ratings."""
    check_family(family)
    parts = [frame, walk_forward_goals(frame)]
    if family == "market-aware":
        parts.append(market_ratings(frame))
    return pd.concat(parts, axis=1)


def platform_features(family: str = DEFAULT_FAMILY) -> list[str]:
    """The inputs of the platform's own models (Dagster training, `time2bet train`, serving) of ``family``: the dbt
    marts' MODEL_FEATURES, plus the market-implied ratings for the market-aware family. The goals model's outputs
    (:func:`family_features` with ``goals``) are not among them: the platform's independent family keeps the
    features it is served with."""
    return family_features(MODEL_FEATURES, check_family(family), goals=False)


def with_platform_columns(frame: pd.DataFrame, family: str = DEFAULT_FAMILY) -> pd.DataFrame:
    """``frame`` (played matches of the marts, market_prob_* where odds exist) with the columns
    :func:`platform_features` adds for ``family``: the market-implied ratings, each row's from earlier dates only."""
    if check_family(family) != "market-aware":
        return frame
    return pd.concat([frame.drop(columns=list(MARKET_RATING_FEATURES), errors="ignore"), market_ratings(frame)], axis=1)
