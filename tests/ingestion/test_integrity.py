"""A new version of a season file against the matches already loaded (time2bet/ingestion/integrity.py)."""

from __future__ import annotations

import pandas as pd

from time2bet.ingestion.integrity import check_rewrite


def _matches(*rows) -> pd.DataFrame:
    return pd.DataFrame([(pd.Timestamp(d), h, a, hg, ag) for d, h, a, hg, ag in rows],
                        columns=["match_date", "home_team", "away_team", "home_goals", "away_goals"])


LOADED = _matches(("2019-08-09", "Liverpool", "Norwich", 4, 1), ("2019-08-10", "West Ham", "Man City", 0, 5),
                  ("2019-08-10", "Burnley", "Southampton", 3, 0))


def test_the_same_matches_with_more_after_them_are_safe():
    grown = pd.concat([LOADED, _matches(("2019-08-17", "Norwich", "Newcastle", 3, 1))])
    result = check_rewrite(LOADED, grown.iloc[::-1])
    assert result.safe and result.describe() == "keeps every loaded match"


def test_a_shorter_version_names_the_dropped_matches():
    result = check_rewrite(LOADED, LOADED.head(1))
    assert not result.safe
    assert result.dropped == ("2019-08-10 Burnley 3-0 Southampton", "2019-08-10 West Ham 0-5 Man City")
    assert result.describe().startswith("1 matches where 3 are loaded; drops 2 loaded match(es)")


def test_a_changed_score_or_date_is_a_change_of_that_match():
    changed = LOADED.copy()
    changed.loc[0, "home_goals"] = 2
    changed.loc[2, "match_date"] = pd.Timestamp("2019-08-11")
    result = check_rewrite(LOADED, changed)
    assert result.changed == ("2019-08-09 Liverpool 4-1 Norwich -> 2019-08-09 Liverpool 2-1 Norwich",
                              "2019-08-10 Burnley 3-0 Southampton -> 2019-08-11 Burnley 3-0 Southampton")
    assert not result.dropped


def test_a_renamed_team_drops_its_matches():
    renamed = LOADED.replace({"Man City": "Manchester City"})
    result = check_rewrite(LOADED, renamed)
    assert result.dropped == ("2019-08-10 West Ham 0-5 Man City",)


def test_a_pair_that_meets_twice_is_matched_one_to_one():
    twice = _matches(("2019-08-09", "Celtic", "Rangers", 1, 0), ("2020-01-02", "Celtic", "Rangers", 2, 2))
    result = check_rewrite(twice, twice.head(1))
    assert result.dropped == ("2020-01-02 Celtic 2-2 Rangers",)
    assert check_rewrite(twice, twice.iloc[::-1]).safe
