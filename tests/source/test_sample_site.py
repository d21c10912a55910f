"""The sample site: deterministic, laid out like football-data.co.uk, and statistically plausible."""

from __future__ import annotations

import csv
import datetime as dt
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from time2bet.football import parse_match_date, season_of
from time2bet.source.sample_site import DEFAULT_AS_OF, generate_sample_site

STATS = ["HS", "AS", "HST", "AST", "HF", "AF", "HC", "AC", "HY", "AY", "HR", "AR"]
NEW_HEAD = ["Div", "Date", "Time", "HomeTeam", "AwayTeam", "FTHG", "FTAG", "FTR", "HTHG", "HTAG", "HTR"]

THREE_SEASONS = ("2022-23", "2023-24", "2024-25")  # the fixtures below reason about these three


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames), list(reader)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("sample") / "site"
    return root, generate_sample_site(root, seasons=THREE_SEASONS)


@pytest.fixture(scope="module")
def matches(site) -> list[dict[str, str]]:
    root, summary = site
    rows = []
    for rel in summary["files"]:
        rows += [r | {"_file": rel} for r in read_rows(root / rel)[1]]
    return rows


def test_same_arguments_give_byte_identical_files(site, tmp_path):
    root, summary = site
    again = generate_sample_site(tmp_path / "again", seasons=THREE_SEASONS)
    assert again["files"] == summary["files"]
    for rel in summary["files"]:
        assert (tmp_path / "again" / rel).read_bytes() == (root / rel).read_bytes(), rel
    other = generate_sample_site(tmp_path / "other", seed=8, seasons=THREE_SEASONS)
    assert any((tmp_path / "other" / rel).read_bytes() != (root / rel).read_bytes() for rel in other["files"])


def test_generation_is_fast(tmp_path):
    start = time.perf_counter()
    generate_sample_site(tmp_path / "timed")
    assert time.perf_counter() - start < 3.0  # ~0.5 s alone; slack for a shared machine


def test_layout_and_summary(site):
    root, summary = site
    expected = [f"mmz4281/{s}/{d}.csv" for s in ("2223", "2324", "2425") for d in ("D1", "E0", "E1")]
    assert summary["files"] == expected
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.csv")) == expected
    assert summary["matches"] == 9 * 90 == sum(summary["matches_per_file"].values())
    assert summary["date_range"][0].startswith("2022-08") and summary["date_range"][1].startswith("2025-05")


def test_new_seasons_use_the_2019_20_layout(site):
    root, _ = site
    header, rows = read_rows(root / "mmz4281/2324/E0.csv")
    assert header[:24] == NEW_HEAD + ["Referee"] + STATS
    for col in ["B365H", "PSA", "AvgH", "MaxD", "PSCH", "AvgCA", "B365>2.5", "B365<2.5"]:
        assert col in header
    assert header.index("PSH") < header.index("PSCH")
    assert all(re.fullmatch(r"\d\d/\d\d/\d{4}", r["Date"]) and re.fullmatch(r"\d\d:\d\d", r["Time"]) for r in rows)
    # only English and Scottish files name the referee, as on the real site
    assert read_rows(root / "mmz4281/2324/D1.csv")[0][:23] == NEW_HEAD + STATS


def test_oldest_season_uses_the_older_conventions(site):
    root, _ = site
    header, rows = read_rows(root / "mmz4281/2223/E0.csv")
    assert "Time" not in header and header[:3] == ["Div", "Date", "HomeTeam"]
    assert {"BbAvH", "BbAvD", "BbAvA", "BbMxH"} <= set(header)
    assert not {"AvgH", "MaxH"} & set(header)
    assert not [c for c in header if re.match(r"^(PS|Avg|B365|Max)C", c)]  # no closing odds
    assert all(re.fullmatch(r"\d\d/\d\d/\d\d", r["Date"]) for r in rows)
    assert all(season_of(parse_match_date(r["Date"])) == "2022-23" for r in rows)


def test_latest_season_starts_with_a_bom_and_names_are_not_ascii(site, matches):
    root, _ = site
    assert (root / "mmz4281/2425/E0.csv").read_bytes().startswith(b"\xef\xbb\xbfDiv,")
    assert (root / "mmz4281/2324/E0.csv").read_bytes().startswith(b"Div,")
    names = {r["HomeTeam"] for r in matches}
    assert {"Mönchengrund", "Llanfair Môn"} <= names


def test_results_are_consistent_with_goals(matches):
    def result(h, a):
        return "H" if h > a else "A" if h < a else "D"

    for r in matches:
        fthg, ftag, hthg, htag = (int(r[c]) for c in ("FTHG", "FTAG", "HTHG", "HTAG"))
        assert 0 <= fthg <= 10 and 0 <= ftag <= 10
        assert hthg <= fthg and htag <= ftag
        assert r["FTR"] == result(fthg, ftag) and r["HTR"] == result(hthg, htag)
        assert fthg <= int(r["HST"]) <= int(r["HS"]) and ftag <= int(r["AST"]) <= int(r["AS"])
        assert r["HomeTeam"] != r["AwayTeam"]


def test_outcomes_and_odds_are_plausible(matches):
    ftr = Counter(r["FTR"] for r in matches)
    assert 0.38 <= ftr["H"] / len(matches) <= 0.55
    assert 0.18 <= ftr["D"] / len(matches) <= 0.32
    goals = sum(int(r["FTHG"]) + int(r["FTAG"]) for r in matches) / len(matches)
    assert 2.2 <= goals <= 3.2
    for r in matches:
        books = [b for b in ("B365", "PS", "Avg", "BbAv", "B365C", "PSC", "AvgC") if r.get(f"{b}H")]
        assert len(books) in (3, 6)  # old: B365, PS, BbAv; new: B365, PS, Avg and their closing odds
        for b in books:
            odds = [float(r[f"{b}{x}"]) for x in "HDA"]
            assert all(o > 1.0 for o in odds)
            assert 1.02 <= sum(1 / o for o in odds) <= 1.10, (b, r)
        best = "Max" if r.get("MaxH") else "BbMx"
        for x in "HDA":
            assert float(r[f"{best}{x}"]) >= max(float(r[f"B365{x}"]), float(r[f"PS{x}"]))
        over = "B365" if r.get("B365>2.5") else "BbAv"
        assert 1.02 <= 1 / float(r[f"{over}>2.5"]) + 1 / float(r[f"{over}<2.5"]) <= 1.10


def test_odds_favour_the_stronger_side(matches):
    """The market knows the model: favourites (PS odds < 2) win far more often than long shots (> 4)."""
    fav = [r["FTR"] == "H" for r in matches if float(r["PSH"]) < 2.0]
    longshot = [r["FTR"] == "H" for r in matches if float(r["PSH"]) > 4.0]
    assert len(fav) > 50 and len(longshot) > 20
    assert sum(fav) / len(fav) > 0.5 > sum(longshot) / len(longshot)


def test_double_round_robin_on_weekends_from_august_to_may(matches):
    by_file: dict[str, list[dict]] = {}
    for r in matches:
        by_file.setdefault(r["_file"], []).append(r)
    for rel, rows in by_file.items():
        pairs = Counter((r["HomeTeam"], r["AwayTeam"]) for r in rows)
        teams = {t for pair in pairs for t in pair}
        assert len(teams) == 10 and len(pairs) == 90 and set(pairs.values()) == {1}, rel
        dates = [parse_match_date(r["Date"]) for r in rows]
        assert all(d.weekday() in (5, 6) for d in dates)
        assert all(d.month in (8, 9, 10, 11, 12, 1, 2, 3, 4, 5) for d in dates)
        assert dates == sorted(dates)


def test_promotion_and_relegation_between_e0_and_e1(site):
    root, _ = site
    teams = {}
    for s in ("2223", "2324"):
        for d in ("E0", "E1"):
            teams[s, d] = {r["HomeTeam"] for r in read_rows(root / f"mmz4281/{s}/{d}.csv")[1]}
    down, up = teams["2223", "E0"] - teams["2324", "E0"], teams["2324", "E0"] - teams["2223", "E0"]
    assert len(down) == len(up) == 2
    assert down <= teams["2324", "E1"] and up <= teams["2223", "E1"]


def test_default_as_of_splits_the_last_season(matches):
    last = [parse_match_date(r["Date"]) for r in matches if r["_file"].startswith("mmz4281/2425/")]
    assert season_of(DEFAULT_AS_OF) == "2024-25"
    played = [d for d in last if d < DEFAULT_AS_OF]
    upcoming = [d for d in last if DEFAULT_AS_OF <= d < DEFAULT_AS_OF + dt.timedelta(days=7)]
    assert 0 < len(played) < len(last)
    assert len(upcoming) >= 10  # every division has a round on the as-of weekend


def test_rejects_unknown_divisions(tmp_path):
    with pytest.raises(ValueError):
        generate_sample_site(tmp_path, divisions=("XX9",))
    with pytest.raises(ValueError):
        generate_sample_site(tmp_path, seasons=("2022-24",))
