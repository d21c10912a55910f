"""In-process: A/B assignment by match id and the model watcher's swap rules (fake registry and loader)."""

from __future__ import annotations

import datetime as dt

import pytest

from bento_service.model import (
    ModelSet,
    ModelWatcher,
    ServedModel,
    assign_variant,
)
from time2bet.serving_contract import CHALLENGER, CHAMPION
from time2bet.settings import parse_share

MATCHES = [f"E0|2025-03-{d:02d}|home{i}|away{i}" for i in range(10) for d in range(1, 21)]   # 200 distinct


def test_same_match_same_variant():
    for share in (0.1, 0.5, 0.9):
        assert [assign_variant(m, share) for m in MATCHES] == [assign_variant(m, share) for m in MATCHES]


def test_share_zero_is_all_champion_and_one_all_challenger():
    assert {assign_variant(m, 0.0) for m in MATCHES} == {CHAMPION}
    assert {assign_variant(m, 1.0) for m in MATCHES} == {CHALLENGER}


def test_share_half_uses_both_variants_in_about_that_proportion():
    n = sum(assign_variant(m, 0.5) == CHALLENGER for m in MATCHES)
    assert 60 <= n <= 140   # deterministic (sha256); binomial(200, 0.5) is within this 99.99% of the time


def test_larger_share_only_moves_matches_to_the_challenger():
    small = {m for m in MATCHES if assign_variant(m, 0.2) == CHALLENGER}
    large = {m for m in MATCHES if assign_variant(m, 0.6) == CHALLENGER}
    assert small <= large


@pytest.mark.parametrize("raw, share", [(None, 0.0), ("", 0.0), ("0", 0.0), ("0.25", 0.25), ("1", 1.0)])
def test_parse_share(raw, share):
    assert parse_share(raw) == share


@pytest.mark.parametrize("raw", ["-0.1", "1.5", "half"])
def test_parse_share_rejects(raw):
    with pytest.raises(ValueError):
        parse_share(raw)


def _model(version: str, alias: str = CHAMPION) -> ServedModel:
    return ServedModel(name="m", alias=alias, version=version, run_id=None, data_version="d", metrics={},
                       input_features=[], loaded_at=dt.datetime.now(dt.UTC), pyfunc=None)


def test_pick_is_champion_without_a_challenger():
    only = ModelSet(champion=_model("1"))
    assert {only.pick(m, 1.0)[0] for m in MATCHES} == {CHAMPION}
    both = ModelSet(champion=_model("1"), challenger=_model("2", CHALLENGER))
    picks = {(v, model.version) for v, model in (both.pick(m, 0.5) for m in MATCHES[:50])}
    assert picks == {(CHAMPION, "1"), (CHALLENGER, "2")}


class FakeRegistry:
    def __init__(self):
        self.aliases: dict[str, str] = {}
        self.broken: set[str] = set()
        self.loads: list[tuple[str, str]] = []
        self.events: list[tuple[str, str, str | None, str | None]] = []

    def load(self, version: str, alias: str) -> ServedModel:
        self.loads.append((version, alias))
        if version in self.broken:
            raise OSError(f"no artifacts for v{version}")
        return _model(version, alias)

    def watcher(self) -> ModelWatcher:
        def hook(variant, outcome, old, new):
            self.events.append((variant, outcome, old and old.version, new and new.version))
        return ModelWatcher("unused", "m", loader=self.load, aliases=lambda: dict(self.aliases), on_change=hook)


def test_watcher_swaps_atomically_and_keeps_the_old_set_for_its_holders():
    reg = FakeRegistry()
    reg.aliases = {CHAMPION: "1"}
    w = reg.watcher()
    first = w.refresh()
    assert first.champion.version == "1" and first.challenger is None
    assert w.refresh() is first and reg.loads == [("1", CHAMPION)]   # nothing moved: nothing loaded
    reg.aliases[CHAMPION] = "2"
    second = w.refresh()
    assert second.champion.version == "2" and w.models is second
    assert first.champion.version == "1"   # a request holding the old set still has its model
    assert reg.events[-1] == (CHAMPION, "success", "1", "2")


def test_failed_load_keeps_the_old_model_and_is_reported_then_retried():
    reg = FakeRegistry()
    reg.aliases = {CHAMPION: "1"}
    w = reg.watcher()
    before = w.refresh()
    reg.aliases[CHAMPION] = "2"
    reg.broken = {"2"}
    assert w.refresh() is before and w.models.champion.version == "1"
    assert reg.events[-1] == (CHAMPION, "failure", "1", None) and "v2" in w.last_error
    reg.broken = set()
    assert w.refresh().champion.version == "2" and w.last_error is None


def test_challenger_comes_goes_and_promotion_reuses_the_loaded_model():
    reg = FakeRegistry()
    reg.aliases = {CHAMPION: "1", CHALLENGER: "2"}
    w = reg.watcher()
    models = w.refresh()
    assert (models.champion.version, models.challenger.version) == ("1", "2")
    challenger = models.challenger
    reg.aliases = {CHAMPION: "2"}   # the challenger promoted (promote() drops its challenger alias)
    models = w.refresh()
    assert models.champion.version == "2" and models.challenger is None
    assert models.champion.pyfunc is challenger.pyfunc and models.champion.alias == CHAMPION
    assert challenger.alias == CHALLENGER   # the published object itself is never changed
    assert [v for v, _ in reg.loads] == ["1", "2"]   # no reload of v2
    assert (CHALLENGER, "removed", "2", None) in reg.events


def test_champion_alias_deleted_keeps_serving_the_champion():
    reg = FakeRegistry()
    reg.aliases = {CHAMPION: "1"}
    w = reg.watcher()
    w.refresh()
    reg.aliases = {}
    assert w.refresh().champion.version == "1"
