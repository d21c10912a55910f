"""The serving contract (time2bet/serving_contract.py): what every model reads, the same in training, batch
predictions and serving."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from time2bet.serving_contract import (
    CHALLENGER,
    CHAMPION,
    FEATURE_COLUMNS,
    MODEL_FEATURES,
    RATING_FEATURES,
    REST_DAYS_CAP,
    VARIANTS,
    model_input,
)


def _frame(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame({c: np.arange(n, dtype="int64") for c in MODEL_FEATURES})
    for name, values in columns.items():
        frame[name] = values
    return frame


def test_model_input_caps_rest_days_and_keeps_missing_ones():
    frame = _frame(home_rest_days=[3.0, 30.0, 7749.0, np.nan], away_rest_days=[-5.0, 31.0, 6.0, 90.0])
    x = model_input(frame, MODEL_FEATURES)
    assert x["home_rest_days"].tolist()[:3] == [3.0, 30.0, REST_DAYS_CAP]
    assert np.isnan(x["home_rest_days"].iloc[3])
    assert x["away_rest_days"].tolist() == [-5.0, 30.0, 6.0, 30.0]
    assert frame["home_rest_days"].iloc[2] == 7749.0   # the caller's frame is left as it was


def test_model_input_is_float64_in_the_given_order():
    frame = _frame(home_rest_days=[1, 2])
    order = list(reversed(MODEL_FEATURES))
    x = model_input(frame.assign(extra=["a", "b"]), order)
    assert list(x.columns) == order
    assert set(x.dtypes) == {np.dtype("float64")}


def test_model_input_names_the_missing_columns():
    with pytest.raises(KeyError, match="elo_diff"):
        model_input(_frame(home_rest_days=[1]).drop(columns=["elo_diff"]), MODEL_FEATURES)


def test_the_model_reads_the_marts_columns_then_the_ratings_each_once():
    assert MODEL_FEATURES == (*FEATURE_COLUMNS, *RATING_FEATURES)
    assert len(set(MODEL_FEATURES)) == len(MODEL_FEATURES)
    assert VARIANTS == (CHAMPION, CHALLENGER)
