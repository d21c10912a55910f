"""The batch_predictions asset seals what it predicts in the prediction ledger: every row of
predictions.upcoming_matches is a ledger prediction (same model, version, variant and probabilities, to the bit),
on the run's own hash chain, which verifies; each record names its model family."""

from __future__ import annotations

import pandas as pd


def test_every_batch_prediction_is_in_the_ledger(settings):
    from time2bet.ledger import read_records, verify
    from time2bet.warehouse.client import Warehouse

    table = Warehouse.from_url(settings.warehouse_url).read_sql("SELECT * FROM predictions.upcoming_matches")
    assert len(table) > 0
    ledger = read_records(settings.ledger_dir)
    batch = ledger[ledger["source"] == "dagster:batch_predictions"]
    latest = batch[batch["created_at"] == batch["created_at"].max()]   # the run that wrote the table
    joined = table.merge(latest, on=["match_id", "variant"], suffixes=("", "_ledger"), validate="one_to_one")
    assert len(joined) == len(table) == len(latest)
    for column in ("p_home", "p_draw", "p_away"):
        assert (joined[column] == joined[f"{column}_ledger"]).all(), column
    assert (joined["model_version"].astype(str) == joined["model_version_ledger"].astype(str)).all()
    assert (latest["model_family"] == "independent").all()   # the configured family's versions (its tag `family`)
    assert (pd.to_datetime(joined["kickoff_date"]).dt.date == pd.to_datetime(joined["match_date"]).dt.date).all()
    assert (pd.to_datetime(latest["as_of"]) == pd.to_datetime(latest["created_at"])).all()   # the wall clock
    report = verify(settings.ledger_dir, {})
    assert report.ok, report.listing()
