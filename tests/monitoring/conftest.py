"""Played matches and ledger records for the monitoring core's tests (real ledger files, written by LedgerWriter)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from time2bet.ledger import LedgerRecord, LedgerWriter, match_key, new_prediction_id

DAYS = (dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2025, 3, 8))
UTC = dt.UTC


def played_matches(n_per_day: int = 6, seed: int = 1) -> pd.DataFrame:
    """Matches of DAYS in E0 and D1: results from goals, odds (a margin of about 5%; one match without odds)."""
    rng = np.random.default_rng(seed)
    rows = []
    for day in DAYS:
        for i in range(n_per_day):
            home_goals, away_goals = int(rng.poisson(1.5)), int(rng.poisson(1.1))
            p = rng.dirichlet([4, 2.5, 3])
            odds = 1 / (p * 1.05)
            rows.append({
                "match_id": f"m{day:%m%d}{i}", "division": "E0" if i % 2 else "D1", "season": "2024-25",
                "match_date": pd.Timestamp(day), "home_team": f"Home {day:%d}{i}", "away_team": f"Away {day:%d}{i}",
                "home_goals": home_goals, "away_goals": away_goals,
                "result": "H" if home_goals > away_goals else "A" if home_goals < away_goals else "D",
                "market_odds_home": odds[0], "market_odds_draw": odds[1], "market_odds_away": odds[2],
            })
    frame = pd.DataFrame(rows)
    frame.loc[3, ["market_odds_home", "market_odds_draw", "market_odds_away"]] = np.nan
    return frame


def record(matches: pd.DataFrame, *, as_of: dt.datetime, version: str = "3", variant: str = "champion",
           p: np.ndarray | None = None, with_ids: bool = True, seed: int = 0) -> LedgerRecord:
    """One ledger record predicting ``matches`` (probabilities ``p`` or random ones) as of ``as_of``."""
    if p is None:
        p = np.random.default_rng(seed).dirichlet([4, 2.5, 3], size=len(matches))
    days = [pd.Timestamp(d).date() for d in matches["match_date"]]
    return LedgerRecord(
        prediction_id=new_prediction_id(), created_at=dt.datetime.now(UTC), as_of=as_of, source="test",
        model_name="match_outcome", model_version=version, model_alias=variant, variant=variant,
        data_version="d" * 64, features_as_of=None,
        match_key=[match_key(d, day, h, a) for d, day, h, a in zip(matches["division"], days, matches["home_team"],
                                                                    matches["away_team"])],
        match_id=list(matches["match_id"]) if with_ids else [None] * len(matches), kickoff_date=days,
        p_home=p[:, 0].tolist(), p_draw=p[:, 1].tolist(), p_away=p[:, 2].tolist())


def write(ledger_dir: Path, writer: str, records: list[LedgerRecord]) -> LedgerWriter:
    w = LedgerWriter(ledger_dir, writer, autostart=False)
    for r in records:
        assert w.append(r)
    w.close()
    return w


@pytest.fixture
def matches() -> pd.DataFrame:
    return played_matches()
