"""Train/serve parity at a season start, end to end on the sample site: the platform is built the day before the
first round of a new season, when the fixture list holds that round (promoted teams included); the service's
snapshot (the export it loads) and the batch path rate those fixtures. Then the round is played, ingested and
the features rebuilt from scratch: what training now sees for those matches (``fct_match_features``) equals what
serving used, feature for feature, ratings included (the entry rule and the season regression)."""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd

from time2bet.football import parse_match_date, season_code

SEASON = "2024-25"


def _teams_and_first_day(site: Path, division: str, season: str) -> tuple[set[str], dt.date]:
    with open(site / "mmz4281" / season_code(season) / f"{division}.csv", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    return {r["HomeTeam"] for r in rows}, min(parse_match_date(r["Date"]) for r in rows)


def _build(env: dict[str, str], site: Path, as_of: dt.date) -> None:
    """Ingest the site as of ``as_of``, then the platform's build_features job (ratings, dbt, snapshot export)."""
    import dagster as dg

    from time2bet.cli.main import prepare_dagster_home, run_ingest
    from time2bet.settings import Settings
    from time2bet.source.mirror import ReplayServer
    from time2bet_assets.definitions import build_definitions

    saved = dict(os.environ)
    try:
        with ReplayServer(site, as_of=as_of) as server:
            os.environ.update(env)
            os.environ["TIME2BET_SOURCE_URL"] = server.url
            settings = Settings.from_env()
            assert run_ingest(settings, None, None, True)
            prepare_dagster_home(settings)
            result = build_definitions(settings).resolve_job_def("build_features").execute_in_process(
                instance=dg.DagsterInstance.get(), raise_on_error=False)
            assert result.success
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_a_promoted_teams_first_match_is_served_as_training_then_sees_it(tmp_path):
    from bento_service.snapshot import Snapshot
    from time2bet.cli.sample_platform import env_for
    from time2bet.serving_contract import MODEL_FEATURES, model_input
    from time2bet.settings import Settings
    from time2bet.source.sample_site import generate_sample_site
    from time2bet.warehouse.client import Warehouse
    from time2bet_assets.defs.ml.assets import PLAYED_MATCHES_SQL, UPCOMING_FIXTURES_SQL

    site = tmp_path / "site"
    generate_sample_site(site)
    previous = f"{int(SEASON[:4]) - 1}-{SEASON[2:4]}"
    top_now, first_day = _teams_and_first_day(site, "E0", SEASON)
    top_before, _ = _teams_and_first_day(site, "E0", previous)
    promoted = top_now - top_before
    assert promoted, "the sample site promotes teams into E0 between seasons"
    env = env_for(tmp_path)

    _build(env, site, first_day - dt.timedelta(days=1))
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        settings = Settings.from_env()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    warehouse = Warehouse.from_url(settings.warehouse_url)
    batch = warehouse.read_sql(UPCOMING_FIXTURES_SQL)
    opening = batch[(batch["division"] == "E0") & (pd.to_datetime(batch["match_date"]).dt.date == first_day)
                    & (batch["home_team"].isin(promoted) | batch["away_team"].isin(promoted))]
    assert len(opening), f"no first-round fixture of a promoted team ({sorted(promoted)}) in the fixture list"
    state = warehouse.read_sql("SELECT team_id, elo FROM ratings.team_state").set_index("team_id")["elo"]

    served = Snapshot.load_export(settings.serving_snapshot_dir)   # what the service loads
    assert served is not None and served.features_as_of < first_day
    fixtures = served.resolve_many([
        type("Request", (), {"home_team": h, "away_team": a, "division": "E0", "kickoff_date": first_day})()
        for h, a in zip(opening["home_team"], opening["away_team"])])
    service_rows = served.feature_matrix(fixtures)
    pandas_rows = model_input(served.features(pd.DataFrame({
        "match_id": opening["match_id"].to_numpy(), "division": "E0", "match_date": first_day,
        "home_team_id": opening["home_team_id"].to_numpy(), "away_team_id": opening["away_team_id"].to_numpy()})),
        MODEL_FEATURES).to_numpy()
    batch_rows = model_input(opening, MODEL_FEATURES).to_numpy()
    # a promoted side enters at the relegated sides' level, regressed: not the rating it ended E1 with
    promoted_ids = np.where(opening["home_team"].isin(promoted), opening["home_team_id"], opening["away_team_id"])
    promoted_elo = np.where(opening["home_team"].isin(promoted), service_rows[:, MODEL_FEATURES.index("home_elo")],
                            service_rows[:, MODEL_FEATURES.index("away_elo")])
    assert not np.any(promoted_elo == state.reindex(promoted_ids).to_numpy())

    _build(env, site, first_day + dt.timedelta(days=1))   # the round is played; everything rebuilt
    trained = warehouse.read_sql(PLAYED_MATCHES_SQL).set_index("match_id").loc[opening["match_id"]]
    training_rows = model_input(trained.reset_index(), MODEL_FEATURES).to_numpy()

    for name, rows in (("service (team table)", service_rows), ("service (pandas)", pandas_rows),
                       ("batch path", batch_rows)):
        differs = [c for i, c in enumerate(MODEL_FEATURES)
                   if not np.array_equal(rows[:, i], training_rows[:, i], equal_nan=True)]
        assert not differs, f"{name} differs from training on {differs}"
