"""The batch response body (scoring.Scored.predictions_json) is byte for byte pydantic's JSON of the Prediction
models, whatever the rows: many distinct pairs, repeated pairs, two variants, names JSON must escape, dates close
together or years apart, one row. No platform needed: the pieces are built from the resolved requests alone."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pytest

from bento_service import scoring
from bento_service.schemas import Prediction
from bento_service.snapshot import Fixtures
from time2bet.serving_contract import CHALLENGER, CHAMPION

NAMES = ["Arsenal", "Bayern München", 'Quote "FC"', "Back\\slash", "Tab\tTown", "Ünïcödé 足球", "Ctrl\x01City",
         "Emoji 🏟", "Slash/United", "Newline\nRovers", "x" * 64]
LOADED_AT = dt.datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=dt.UTC)


def _model(alias: str, version: str, family: str):
    return SimpleNamespace(name="match_outcome", version=version, alias=alias, data_version='dv "7"', family=family)


def _scored(n: int, *, variants: list[str], days: list[int], seed: int = 0,
            features_as_of: dt.date | None = dt.date(2025, 2, 28)) -> scoring.Scored:
    rng = np.random.default_rng(seed)
    pairs = list(dict.fromkeys((division, NAMES[h], NAMES[a]) for division, h, a in zip(
        rng.choice(["E0", "SP1", "G1"], 4 * n), rng.integers(len(NAMES), size=4 * n),
        rng.integers(len(NAMES), size=4 * n)) if h != a))
    codes = rng.integers(len(pairs), size=n)
    first = dt.date(2025, 3, 1).toordinal()
    ordinals = first + rng.choice(days, size=n)
    probs = rng.dirichlet([2.0, 1.0, 1.5], size=n)
    probs[: min(n, 3)] = [[1e-7, 0.5, 0.4999999], [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]][: min(n, 3)]
    fixtures = Fixtures(pairs=pairs, ids=pairs, codes=codes.astype(np.intp),
                        kickoffs=[dt.date.fromordinal(int(o)) for o in ordinals], ordinals=ordinals.astype(np.int64))
    chosen = [variants[i] for i in rng.integers(len(variants), size=n)]
    models = {CHAMPION: _model(CHAMPION, "3", "independent"), CHALLENGER: _model(CHALLENGER, "4", "market-aware")}
    snapshot = SimpleNamespace(features_as_of=features_as_of, loaded_at=LOADED_AT)
    return scoring.Scored(fixtures, chosen, {v: models[v] for v in set(chosen)}, probs, snapshot)


def _pydantic(scored: scoring.Scored) -> bytes:
    rows = []
    for code, variant, kickoff, p in zip(scored.fixtures.codes, scored.variants, scored.fixtures.kickoffs,
                                         scored.probs, strict=True):
        division, home, away = scored.fixtures.pairs[code]
        model = scored.models[variant]
        rows.append(Prediction(
            variant=variant, home_team=home, away_team=away, division=division, kickoff_date=kickoff,
            probabilities={"home": p[0], "draw": p[1], "away": p[2]},
            model={"name": model.name, "version": model.version, "alias": model.alias,
                   "data_version": model.data_version, "family": model.family},
            features_as_of=scored.snapshot.features_as_of, snapshot_loaded_at=scored.snapshot.loaded_at,
        ).model_dump_json(exclude_unset=True))   # markets and goals_model: absent unless asked
    return ("[" + ",".join(rows) + "]").encode()


@pytest.mark.parametrize("n, variants, days", [
    (1, [CHAMPION], [0]),
    (2, [CHAMPION], [0, 40_000]),                 # dates years apart: one piece per distinct date
    (500, [CHAMPION], list(range(90))),           # dates close together: one piece per day of their span
    (2_000, [CHAMPION, CHALLENGER], list(range(90))),
    (300, [CHALLENGER], [5, 5_000, 9_000]),
])
def test_predictions_json_is_pydantics_json(n, variants, days):
    scored = _scored(n, variants=variants, days=days)
    assert scored.predictions_json() == _pydantic(scored)


def test_predictions_json_without_features_date_and_empty():
    scored = _scored(50, variants=[CHAMPION, CHALLENGER], days=[1, 2], features_as_of=None)
    assert scored.predictions_json() == _pydantic(scored)
    empty = _scored(1, variants=[CHAMPION], days=[0])
    empty.probs = empty.probs[:0]
    assert empty.predictions_json() == b"[]"


def test_heads_are_indexed_by_pair_then_variant():
    pairs = [("E0", "A", "B"), ("SP1", 'Q"', "C\n")]
    heads = scoring._heads(pairs, ["champion", "challenger"])
    assert heads == [
        b'{"variant":"champion","home_team":"A","away_team":"B","division":"E0","kickoff_date":"',
        b'{"variant":"challenger","home_team":"A","away_team":"B","division":"E0","kickoff_date":"',
        b'{"variant":"champion","home_team":"Q\\"","away_team":"C\\n","division":"SP1","kickoff_date":"',
        b'{"variant":"challenger","home_team":"Q\\"","away_team":"C\\n","division":"SP1","kickoff_date":"',
    ]
