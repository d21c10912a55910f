"""Tests for the season-file and fixtures parser: accepted variety, every rejection, properties, real data."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from time2bet.football import format_match_date, season_of
from time2bet.ingestion.parsing import RejectedFile, TruncatedFile, decode_csv, parse_fixtures, parse_season_file
from time2bet.warehouse.schema import FIXTURE_COLUMNS, LOGICAL_TYPES, MATCH_COLUMNS, SOURCE_COLUMNS

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "football-data"

HEADER = ["Div", "Date", "HomeTeam", "AwayTeam", "FTHG", "FTAG", "FTR", "HTHG", "HTAG", "HTR"]
GOOD = [
    ["E0", "09/08/2019", "Liverpool", "Norwich", "4", "1", "H", "4", "0", "H"],
    ["E0", "10/08/2019", "West Ham", "Man City", "0", "5", "A", "0", "1", "A"],
    ["E0", "10/08/2019", "Burnley", "Southampton", "3", "0", "H", "0", "0", "D"],
]
PANDAS_DTYPES = {"text": "object", "date": "datetime64[ns]", "int": "Int64", "double": "float64"}
QUICK = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def to_csv(rows: list[list[str]], header: list[str] = HEADER, *, encoding: str = "utf-8", eol: str = "\n") -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator=eol).writerows([header, *rows])
    return out.getvalue().encode(encoding)


def parse(data: bytes, division: str = "E0", season: str = "2019-20") -> pd.DataFrame:
    return parse_season_file(data, division=division, season=season)


def rejected(data: bytes, *needles: str, division: str = "E0", season: str = "2019-20") -> str:
    with pytest.raises(RejectedFile) as info:
        parse(data, division, season)
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


def with_cell(row: int, column: str, value: str, rows: list[list[str]] | None = None) -> bytes:
    """GOOD with one cell changed (row is 0-based among data rows, i.e. file line row + 2)."""
    rows = [list(r) for r in (rows or GOOD)]
    rows[row][HEADER.index(column)] = value
    return to_csv(rows)


# --- schema -------------------------------------------------------------------------------------------


def test_schema_columns_and_types():
    names = list(MATCH_COLUMNS)
    assert names[:6] == ["division", "season", "match_date", "kickoff_time", "home_team", "away_team"]
    assert names[-2:] == ["extra", "source_row"]
    assert set(MATCH_COLUMNS.values()) <= set(LOGICAL_TYPES)
    for name in ["home_goals", "away_booking_points", "attendance", "source_row"]:
        assert MATCH_COLUMNS[name] == "int"
    assert MATCH_COLUMNS["match_date"] == "date"
    assert list(FIXTURE_COLUMNS)[:7] == [
        "division", "season", "match_date", "kickoff_time", "home_team", "away_team", "referee"
    ]
    assert all(MATCH_COLUMNS[c] == t for c, t in FIXTURE_COLUMNS.items())
    assert not any("close" in c or "2_5" in c for c in FIXTURE_COLUMNS)


@pytest.mark.parametrize(
    "source, canonical",
    [
        ("HT", "home_team"), ("AT", "away_team"), ("B365H", "odds_b365_home"), ("PSD", "odds_pinnacle_draw"),
        ("PSCH", "odds_pinnacle_close_home"), ("AvgCH", "odds_avg_close_home"), ("MaxCA", "odds_max_close_away"),
        ("B365CD", "odds_b365_close_draw"), ("VCCH", "odds_vc_close_home"), ("BbAvA", "odds_bb_avg_away"),
        ("BbMxH", "odds_bb_max_home"), ("P>2.5", "odds_pinnacle_over_2_5"), ("PC<2.5", "odds_pinnacle_close_under_2_5"),
        ("BbMx>2.5", "odds_bb_max_over_2_5"), ("GB>2.5", "odds_gb_over_2_5"), ("AvgC>2.5", "odds_avg_close_over_2_5"),
        ("HBP", "home_booking_points"), ("HHW", "home_hit_woodwork"), ("AO", "away_offsides"),
    ],
)
def test_source_mapping(source, canonical):
    assert SOURCE_COLUMNS[source] == canonical
    assert canonical in MATCH_COLUMNS


# --- decoding -----------------------------------------------------------------------------------------


def test_decode_utf8_bom_and_cp1252():
    text = "Div,HomeTeam\nD1,Köln\n"
    assert decode_csv(text.encode("utf-8")) == text
    assert decode_csv(text.encode("utf-8-sig")) == text
    assert decode_csv(text.encode("cp1252")) == text
    assert decode_csv("Div,HomeTeam\nT1,Ankaragücü – Š\n".encode("cp1252")).endswith("Ankaragücü – Š\n")


@pytest.mark.parametrize(
    "data, needle",
    [
        (b"", "empty file (0 bytes)"),
        ("Div,Date\n".encode("utf-16"), "UTF-16"),
        ("Div,Date\n".encode("utf-16-le"), "NUL"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL"),
        (b"PK\x03\x04\x14\x06garbage", "control character"),
        (b"Div,Date\nE0,\x81\x8d\x8f\x90\n", "neither UTF-8 nor cp1252"),
    ],
)
def test_decode_rejects_non_text(data, needle):
    with pytest.raises(RejectedFile, match=re.escape(needle)):
        decode_csv(data)


# --- what is accepted -----------------------------------------------------------------------------------


def test_minimal_file_types_and_values():
    frame = parse(to_csv(GOOD))
    assert list(frame.columns) == list(MATCH_COLUMNS)
    assert {c: str(t) for c, t in frame.dtypes.items()} == {c: PANDAS_DTYPES[t] for c, t in MATCH_COLUMNS.items()}
    first = frame.iloc[0]
    assert (first.division, first.season, first.home_team, first.away_team) == ("E0", "2019-20", "Liverpool", "Norwich")
    assert first.match_date == pd.Timestamp("2019-08-09")
    assert (first.home_goals, first.away_goals, first.result) == (4, 1, "H")
    assert first.kickoff_time is None and first.referee is None and pd.isna(first.attendance)
    assert np.isnan(first.odds_b365_home)
    assert list(frame.source_row) == [2, 3, 4]
    assert set(frame.extra) == {"{}"}


def test_real_variety_is_accepted():
    header = ["Div", "Date", "Time", "HT", "AT", "FTHG", "FTAG", "FTR", "Referee", "Attendance", "HS", "AS",
              "LB", "LB", "LB", "PSCH", "AvgC>2.5", "AHh", "", ""]
    rows = [
        ["  E0 ", " 9/8/19", "20:00", " Liverpool ", "Norwich\xa0", " 4", "1 ", "H", "M Oliver ", "53,333",
         "15.0", " ", "2.25", "3.2", "2.75", "1.14", "1.3", "-2.25", "", "", "", ""],
        ["E0", "10/08/2019", "9:30", "Bournemouth", "Sheffield United", "1", "1", "D", "", "NA",
         "", "c", "", "", "", "", "", "-0.5", "Abandoned", ""],
        [""] * 20,
        [" ", "", "  "],
        [],
    ]
    text = to_csv(rows, header, eol="\r\n").decode()
    frame = parse(text.encode("cp1252"))
    assert len(frame) == 2
    assert frame.home_team.tolist() == ["Liverpool", "Bournemouth"]
    assert frame.away_team.tolist() == ["Norwich", "Sheffield United"]
    assert frame.match_date.tolist() == [pd.Timestamp("2019-08-09"), pd.Timestamp("2019-08-10")]
    assert frame.kickoff_time.tolist() == ["20:00", "09:30"]
    assert frame.referee.tolist() == ["M Oliver", None]
    assert frame.home_shots.tolist() == [15, pd.NA] and frame.away_shots.isna().all()
    assert frame.odds_lb_home.tolist()[0] == 2.25 and frame.odds_lb_away.tolist()[0] == 2.75
    assert frame.odds_pinnacle_close_home.tolist()[0] == 1.14
    assert frame.odds_avg_close_over_2_5.tolist()[0] == 1.3
    first, second = (json.loads(e) for e in frame.extra)
    assert first == {"Attendance": "53,333", "AHh": "-2.25"}  # attendance with a comma is not a number
    assert second == {"Attendance": "NA", "AS": "c", "AHh": "-0.5", "column_19": "Abandoned"}
    assert frame.source_row.tolist() == [2, 3]


def test_blank_rows_are_dropped_and_lines_kept():
    data = (b"Div,Date,HomeTeam,AwayTeam,FTHG,FTAG\n\nE0,09/08/2019,A,B,1,0\n,,,,,\n \n"
            b"E0,10/08/2019,C,D,0,0\n,,,,,\n,,,,,\n")
    frame = parse(data)
    assert frame.source_row.tolist() == [3, 6]
    assert frame.result.isna().all()


def test_goals_written_as_floats_and_missing_half_time():
    rows = [list(r) for r in GOOD]
    rows[0][4:10] = ["4.0", "1.0", "H", "", "", ""]
    frame = parse(to_csv(rows))
    assert frame.home_goals.tolist()[0] == 4
    assert frame.ht_home_goals.isna().tolist() == [True, False, False]


def test_late_season_and_covid_restart_windows():
    late = with_cell(0, "Date", "20/07/2019", [[*GOOD[0]]])
    assert len(parse(late, season="2018-19")) == 1  # play-offs a few weeks after 30 June
    august = with_cell(0, "Date", "02/08/2020", [[*GOOD[0]]])
    assert len(parse(august, season="2019-20")) == 1  # 2019-20 resumed after the COVID-19 break
    rejected(with_cell(0, "Date", "02/08/2019", [[*GOOD[0]]]), "outside season 2018-19", season="2018-19")


def test_known_result_quirk_loads_only_for_that_match():
    row = ["EC", "25/04/06", "Exeter", "Crawley Town", "4", "0", "D", "3", "0", "D"]
    frame = parse(to_csv([row]), division="EC", season="2005-06")
    assert frame.result.tolist() == ["D"]  # loaded as published; staging should trust the goals
    other = [row[:2] + ["Exeter", "Woking"] + row[4:]]
    rejected(to_csv(other), "result disagrees with the goals on line 2", division="EC", season="2005-06")


# --- rejections: file level --------------------------------------------------------------------------------


def test_reject_empty_file():
    rejected(b"", "empty file")


def test_reject_header_only():
    rejected(to_csv([]), "no match rows")
    rejected(to_csv([]) + b",,,,,,,,,\n\n", "no match rows")


def test_reject_html_page():
    page = b"<!DOCTYPE html>\n<html><head><title>Football-Data</title></head><body>Not found</body></html>"
    rejected(page, "HTML page")
    rejected(b"\n  <html><body>maintenance</body></html>", "HTML page")


def test_reject_missing_required_columns():
    header = ["Div", "Date", "HomeTeam", "AwayTeam", "FTR"]
    message = rejected(to_csv([["E0", "09/08/2019", "A", "B", "H"]], header), "missing required column(s)")
    assert "FTHG, FTAG" in message
    rejected(b"Not Found\n", "Date, HomeTeam, AwayTeam, FTHG, FTAG")


@pytest.mark.parametrize(
    "data, needles",
    [
        (b'Div,Date,HomeTeam,AwayTeam,FTHG,FTAG\nE0,09/08/2019,"A,B,1,0\nE0,10/08/2019,C,D,0,0\n',
         ["malformed CSV", "line 2"]),
        (b'Div,Date,HomeTeam,AwayTeam,FTHG,FTAG\nE0,09/08/2019,"A"x,B,1,0\n', ["malformed CSV in the row starting on line 2"]),
        (b"Div,Date,HomeTeam,AwayTeam,FTHG,FTAG\nE0,09/08/2019,A,B,1,0\nE0,10/08/2019,C,D,0,0,7,1\n",
         ["malformed CSV", "line 3 has 8 values", "['7', '1']"]),
        (b"Div,Date,HomeTeam,AwayTeam,FTHG,FTAG\nE0,09/08/2019,A,B,1,0\nE0,10/08/2019,C,D\n",
         ["truncated file", "line 3 has 4 values"]),
        (b"Div,Date,HomeTeam,AwayTeam,FTHG,FTAG,FTHG\nE0,09/08/2019,A,B,1,0,1\n", ["'FTHG' appears twice"]),
        (b"Div,Date,HomeTeam,HT,AwayTeam,FTHG,FTAG\nE0,09/08/2019,A,A,B,1,0\n", ["'HomeTeam' and 'HT'"]),
    ],
    ids=["unbalanced-quote", "stray-quote", "values-beyond-header", "short-row", "duplicate-header", "alias-clash"],
)
def test_reject_malformed_csv(data, needles):
    rejected(data, *needles)


def test_a_row_shorter_than_the_header_means_a_truncated_file():
    cut = to_csv(GOOD).rstrip(b"\n")
    cut = cut[: cut.rindex(b",H,")]   # the last row ends inside its values
    with pytest.raises(TruncatedFile, match="truncated file: line 4 has 6 values but the header has 10"):
        parse(cut)


def test_a_match_of_a_team_against_itself_is_rejected_naming_the_line():
    rejected(with_cell(1, "AwayTeam", "West Ham"), "same team at home and away on line 3 ('West Ham')")


# --- rejections: row level -------------------------------------------------------------------------------


def test_reject_other_division():
    rejected(with_cell(1, "Div", "E1"), "division is not 'E0' on line 3 ('E1')")


def test_reject_unparseable_dates():
    rows = [list(r) for r in GOOD]
    rows[0][1], rows[2][1] = "31/02/2020", "2019-08-10"
    rejected(to_csv(rows), "unparseable match date on line 2 ('31/02/2020'), line 4 ('2019-08-10')")
    rejected(with_cell(1, "Date", ""), "unparseable match date on line 3 ('')")


@pytest.mark.parametrize("bad", ["1.5", "-1", "x", "", "1e1", "٣"])
def test_reject_scores_that_are_not_whole_numbers(bad):
    rejected(with_cell(2, "FTAG", bad), f"away_goals is not a non-negative whole number on line 4 ({bad!r})")
    if bad:  # blank half-time goals are allowed (unknown for some old matches), garbage is not
        rejected(with_cell(2, "HTHG", bad), "ht_home_goals is not a non-negative whole number on line 4")


def test_reject_impossible_scores():
    rejected(with_cell(0, "FTHG", "31"), "home_goals above 30 (impossible) on line 2 ('31')")
    rejected(with_cell(1, "HTAG", "6"), "ht_away_goals above away_goals on line 3 ('6', '5')")


def test_reject_result_inconsistent_with_goals():
    rejected(with_cell(0, "FTR", "A"), "result disagrees with the goals on line 2 ('A', '4', '1')")
    rejected(with_cell(2, "HTR", "H"), "ht_result disagrees with the goals on line 4 ('H', '0', '0')")
    rejected(with_cell(1, "FTR", "W"), "result is not H, D or A on line 3 ('W')")
    rejected(with_cell(1, "FTR", ""), "result is not H, D or A on line 3 ('')")  # e.g. a truncated last row
    assert parse(with_cell(1, "HTR", "")).ht_result.tolist() == ["H", None, "D"]  # half-time may be unknown


def test_reject_duplicate_matches():
    rows = [list(r) for r in GOOD] + [list(GOOD[1])]
    rows[-1][1] = "10/08/19"  # same day, other spelling
    rejected(to_csv(rows), "duplicate match", "line 3 ('10/08/2019', 'West Ham', 'Man City'), line 5")


def test_reject_blank_team_names():
    rejected(with_cell(1, "HomeTeam", "  "), "blank home team on line 3")
    rejected(with_cell(2, "AwayTeam", ""), "blank away team on line 4")


def test_reject_season_mismatch():
    message = rejected(to_csv(GOOD), "date outside season 2018-19 (2018-07-01 to 2019-07-21)", season="2018-19")
    assert "line 2 ('09/08/2019'), line 3 ('10/08/2019'), line 4" in message


def test_reject_lists_several_problems_and_counts_the_rest():
    rows = [[*GOOD[0][:1], f"{d}/13/2019", *GOOD[0][2:]] for d in range(1, 9)]
    rows = [[*r[:2], f"Home {i}", *r[3:]] for i, r in enumerate(rows)]
    rows.append(["E1", "11/08/2019", "X", "Y", "1", "1", "D", "", "", ""])
    message = rejected(to_csv(rows), "2 problem(s)", "line 6 ('5/13/2019') and 3 more", "division is not 'E0' on line 10")
    assert "line 7" not in message


def test_caller_errors_are_not_file_rejections():
    with pytest.raises(ValueError, match="season label"):
        parse_season_file(to_csv(GOOD), division="E0", season="2019")
    with pytest.raises(ValueError, match="division code"):
        parse_season_file(to_csv(GOOD), division="e0!", season="2019-20")


# --- fixtures -------------------------------------------------------------------------------------------

FIXTURE_HEADER = ["Div", "Date", "Time", "HomeTeam", "AwayTeam", "Referee", "B365H", "B365D", "B365A", "PSCH"]


def test_fixtures_parse_with_season_from_date():
    rows = [
        ["E0", "30/06/2020", "19:00", "Man City", "Liverpool", "", "2.1", "3.5", "3.4", ""],
        ["SP1", "01/07/2020", "", "Real Madrid", "Getafe", "", "1.4", "4.5", "8", "1.5"],
    ]
    frame = parse_fixtures(to_csv(rows, FIXTURE_HEADER, encoding="utf-8-sig"))
    assert list(frame.columns) == list(FIXTURE_COLUMNS)
    assert {c: str(t) for c, t in frame.dtypes.items()} == {c: PANDAS_DTYPES[t] for c, t in FIXTURE_COLUMNS.items()}
    assert frame.season.tolist() == ["2019-20", "2020-21"]
    assert frame.division.tolist() == ["E0", "SP1"]
    assert frame.kickoff_time.tolist() == ["19:00", None]
    assert frame.odds_b365_home.tolist() == [2.1, 1.4]
    assert [json.loads(e) for e in frame.extra] == [{}, {"PSCH": "1.5"}]


def test_fixtures_header_only_is_an_empty_list():
    frame = parse_fixtures(to_csv([], FIXTURE_HEADER))
    assert frame.empty and list(frame.columns) == list(FIXTURE_COLUMNS)


@pytest.mark.parametrize(
    "row, needle",
    [
        (["", "01/08/2020", "", "A", "B", "", "", "", "", ""], "not a division code on line 3 ('')"),
        (["E0", "01/08/2020", "", "A", "", "", "", "", "", ""], "blank away team on line 3"),
        (["E0", "1 Aug 2020", "", "A", "B", "", "", "", "", ""], "unparseable match date on line 3 ('1 Aug 2020')"),
        (["E0", "30/06/2020", "", "Man City", "Liverpool", "", "", "", "", ""], "duplicate match"),
    ],
)
def test_fixtures_rejections(row, needle):
    first = ["E0", "30/06/2020", "19:00", "Man City", "Liverpool", "", "2.1", "3.5", "3.4", ""]
    with pytest.raises(RejectedFile, match=re.escape(needle)):
        parse_fixtures(to_csv([first, row], FIXTURE_HEADER))


def test_fixtures_file_level_rejections():
    with pytest.raises(RejectedFile, match="empty file"):
        parse_fixtures(b"")
    with pytest.raises(RejectedFile, match="missing required column"):
        parse_fixtures(b"Date,HomeTeam,AwayTeam\n01/08/2020,A,B\n")
    with pytest.raises(RejectedFile, match="HTML"):
        parse_fixtures(b"<html></html>")


# --- properties -----------------------------------------------------------------------------------------


@QUICK
@given(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2089, 12, 31)))
def test_dates_round_trip_in_both_formats(date):
    season = season_of(date)
    rows = [
        ["E0", format_match_date(date, four_digit_year=True), "A", "B", "1", "0", "H", "", "", ""],
        ["E0", format_match_date(date, four_digit_year=False), "C", "D", "1", "0", "H", "", "", ""],
        ["E0", f"{date.day}/{date.month}/{date.year}", "E", "F", "1", "0", "H", "", "", ""],
    ]
    frame = parse(to_csv(rows), season=season)
    assert frame.match_date.dt.date.tolist() == [date] * 3


spaces = st.text(alphabet=" \t\xa0", max_size=3)


@QUICK
@given(
    goals=st.tuples(st.integers(0, 30), st.integers(0, 30)),
    as_float=st.booleans(),
    stat=st.one_of(st.none(), st.integers(0, 10**6)),
    odds=st.one_of(st.none(), st.floats(1.0, 1000.0, allow_nan=False)),
    pad=st.tuples(spaces, spaces),
)
def test_numbers_with_whitespace_and_blanks(goals, as_float, stat, odds, pad):
    def cell(value):
        if value is None:
            return ""
        return pad[0] + (f"{value}.0" if as_float and isinstance(value, int) else str(value)) + pad[1]

    header = ["Div", "Date", "HomeTeam", "AwayTeam", "FTHG", "FTAG", "HS", "B365H"]
    row = ["E0", "09/08/2019", "A", "B", cell(goals[0]), cell(goals[1]), cell(stat), cell(odds)]
    frame = parse(to_csv([row], header))
    row = frame.iloc[0]
    assert (row.home_goals, row.away_goals) == goals
    assert (pd.isna(row.home_shots) if stat is None else row.home_shots == stat)
    assert (np.isnan(row.odds_b365_home) if odds is None else row.odds_b365_home == odds)
    assert row.extra == "{}"


def _not_whole_number(text: str) -> bool:
    return re.fullmatch(r"[0-9]+(?:\.0*)?", text.strip()) is None


@QUICK
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=8).filter(_not_whole_number))
def test_garbage_scores_are_rejected(garbage):
    with pytest.raises(RejectedFile):
        parse(with_cell(0, "FTHG", garbage))


team_names = st.text(
    st.characters(whitelist_categories=("Lu", "Ll"), max_codepoint=0x17F) | st.sampled_from(" .'-&"),
    min_size=1,
    max_size=20,
).filter(lambda s: s.strip() != "")


@QUICK
@given(st.lists(st.tuples(team_names, team_names).filter(lambda p: p[0].strip() != p[1].strip()), min_size=1,
                max_size=8))
def test_encodings_give_the_same_frame(pairs):
    rows = [
        ["E0", (dt.date(2019, 8, 1) + dt.timedelta(days=i)).strftime("%d/%m/%Y"), home, away, "1", "1", "D", "", "", ""]
        for i, (home, away) in enumerate(pairs)
    ]
    expected = parse(to_csv(rows))
    assert expected.home_team.tolist() == [h.strip() for h, _ in pairs]
    pd.testing.assert_frame_equal(parse(to_csv(rows, encoding="utf-8-sig")), expected)
    try:
        latin = to_csv(rows, encoding="cp1252")
    except UnicodeEncodeError:
        return
    # cp1252 bytes that also happen to be valid UTF-8 (e.g. 'Ãµ') are read as UTF-8: an accepted ambiguity
    assume(latin.isascii() or not _is_utf8(latin))
    pd.testing.assert_frame_equal(parse(latin), expected)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


cells = st.sampled_from(["", " ", "E0", "E1", "0", "2.0", "H", "D", "09/08/2019", "9/8/19", "1.5", "x", '"', ",", "\n"])


@QUICK
@given(st.lists(st.lists(cells | st.text(max_size=3), max_size=12), max_size=5), st.booleans())
def test_any_input_gives_a_whole_frame_or_rejected_file(rows, fixtures):
    header = ["Div", "Date", "HomeTeam", "AwayTeam", "FTHG", "FTAG", "FTR", "HTHG", "HTAG", "B365H", ""]
    data = to_csv(rows, header, encoding="utf-8")
    try:
        frame = parse_fixtures(data) if fixtures else parse(data)
    except RejectedFile:
        return
    assert list(frame.columns) == list(FIXTURE_COLUMNS if fixtures else MATCH_COLUMNS)
    assert len(frame) == sum(1 for r in rows if "".join(r).strip())


plain_cells = st.sampled_from(
    ["", " ", "E0", "E1", "0", "1", "3 ", " 2.0", "2.25", "1.", "-1", "1e1", "nan", "x", "\xa0y", "a\tb", "50%"]
)
plain_rows = st.tuples(st.sampled_from([*GOOD, None]), st.lists(plain_cells, max_size=6), st.integers(-1, 2))


@QUICK
@given(
    st.lists(plain_rows, max_size=5),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
)
def test_quote_free_files_read_as_csv_reader_reads_them(rows, eol, fixtures):
    """Files without quotes are split on commas directly, others go through csv.reader: same result."""
    header = ["Div", "Date", "HomeTeam", "AwayTeam", "FTHG", "FTAG", "FTR", "B365H", "AHh", "HS", "", "Referee"]
    lines = []
    for match, cells, extra in rows:
        if match is None:
            lines.append(cells)  # blank, or garbage of the wrong width
        else:
            lines.append((match[:7] + cells + [""] * len(header))[: len(header) + extra])  # -1: truncated
    plain = eol.join(",".join(row) for row in [header, *lines]) + eol
    quoted = io.StringIO()
    csv.writer(quoted, quoting=csv.QUOTE_ALL, lineterminator=eol).writerows([header, *lines])
    read = parse_fixtures if fixtures else parse

    def outcome(data: bytes) -> pd.DataFrame | str:
        try:
            return read(data)
        except RejectedFile as exc:
            return str(exc)

    expected, got = outcome(quoted.getvalue().encode()), outcome(plain.encode())
    if isinstance(expected, str):
        assert got == expected
    else:
        pd.testing.assert_frame_equal(got, expected)


# --- real data ------------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_all_real_files_parse_with_manifest_row_counts():
    if not (DATA / "MANIFEST.csv").exists():
        pytest.skip(f"real football-data files not found at {DATA} (expected next to the repo in ../shared)")
    manifest = pd.read_csv(DATA / "MANIFEST.csv")
    assert len(manifest) == 488
    started, total, frames = time.perf_counter(), 0, {}
    for entry in manifest.itertuples():
        frame = parse_season_file((DATA / entry.path).read_bytes(), division=entry.division, season=entry.season)
        assert len(frame) == entry.rows, entry.path
        assert str(frame.match_date.min().date()) == entry.first_date, entry.path
        assert str(frame.match_date.max().date()) == entry.last_date, entry.path
        total += len(frame)
        frames[entry.path] = frame
    print(f"parsed {len(manifest)} files, {total} rows in {time.perf_counter() - started:.1f} s")
    assert total == 173_240

    first = frames["mmz4281/1920/E0.csv"].iloc[0]
    assert (first.home_team, first.away_team, first.home_goals, first.away_goals) == ("Liverpool", "Norwich", 4, 1)
    assert first.match_date == pd.Timestamp("2019-08-09") and first.kickoff_time == "20:00"
    assert first.odds_pinnacle_close_home == 1.14 and first.odds_pinnacle_over_2_5 == 1.4
    assert json.loads(first.extra)["AHh"] == "-2.25"
    ladbrokes = frames["mmz4281/0405/D2.csv"].iloc[0]  # header 'LB,LB,LB'
    assert (ladbrokes.odds_lb_home, ladbrokes.odds_lb_draw, ladbrokes.odds_lb_away) == (2.25, 3.2, 2.75)
    greek = frames["mmz4281/0001/G1.csv"].iloc[0]  # HT/AT headers
    assert (greek.home_team, greek.away_team) == ("Olympiakos", "Eth Asteras")
    awarded = frames["mmz4281/0607/T1.csv"].set_index("source_row").loc[224]  # data in unnamed columns
    assert json.loads(awarded.extra)["column_63"] == "Abandoned"
    assert frames["mmz4281/0001/D1.csv"].referee.iloc[0] == "Jörg Kessler"


def test_fixture_dates_with_impossible_years_are_rejected_not_wrapped_around():
    data = b"Div,Date,Time,HomeTeam,AwayTeam\nE0,01/01/0001,15:00,Arsenal,Chelsea\n"
    with pytest.raises(RejectedFile, match="0001"):
        parse_fixtures(data)
