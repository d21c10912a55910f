"""Canonical schema of the warehouse raw tables, and how football-data.co.uk headers map onto it.

Kept as plain data so the parser, the DDL and the tests all read the same column list. Logical types
are one of "text", "date", "int", "double"; dict order is the table's column order.

Odds headers follow the site's rule <bookmaker><C if closing><H|D|A or >2.5|<2.5>, e.g. B365H, PSCH,
AvgC>2.5, so the mapping is generated from the bookmaker lists below rather than typed out. Headers not
mapped (Asian handicap, Bb1X2 counts, bookmakers added later) are kept in the `extra` JSON column.
"""

from __future__ import annotations

LOGICAL_TYPES = ("text", "date", "int", "double")

# Source bookmaker prefix -> canonical name, in the column order used by the tables.
BOOKMAKERS: dict[str, str] = {
    "B365": "b365",
    "BW": "bw",
    "IW": "iw",
    "LB": "lb",
    "PS": "pinnacle",
    "WH": "wh",
    "SJ": "sj",
    "VC": "vc",
    "GB": "gb",
    "BS": "bs",
    "SO": "so",
    "SB": "sb",
    "SY": "sy",
    "Avg": "avg",
    "Max": "max",
    "BbAv": "bb_avg",
    "BbMx": "bb_max",
}
# Bookmakers that also publish closing 1X2 odds (source "<prefix>C<H|D|A>", e.g. PSCH, AvgCH).
CLOSING_BOOKMAKERS = ("B365", "BW", "IW", "PS", "WH", "VC", "Avg", "Max")

# Over/under 2.5 goals: the site uses "P", not "PS", for Pinnacle here ("P>2.5", closing "PC>2.5").
OVER_UNDER_BOOKMAKERS: dict[str, str] = {
    "B365": "b365",
    "P": "pinnacle",
    "GB": "gb",
    "Avg": "avg",
    "Max": "max",
    "BbAv": "bb_avg",
    "BbMx": "bb_max",
}
OVER_UNDER_CLOSING_BOOKMAKERS = ("B365", "P", "Avg", "Max")

OUTCOMES = {"H": "home", "D": "draw", "A": "away"}
OVER_UNDER = {">2.5": "over_2_5", "<2.5": "under_2_5"}

# Source header -> (canonical name, logical type) for everything that is not odds.
_BASE: list[tuple[str, str, str]] = [
    ("Div", "division", "text"),
    ("Date", "match_date", "date"),
    ("Time", "kickoff_time", "text"),
    ("HomeTeam", "home_team", "text"),
    ("AwayTeam", "away_team", "text"),
    ("FTHG", "home_goals", "int"),
    ("FTAG", "away_goals", "int"),
    ("FTR", "result", "text"),
    ("HTHG", "ht_home_goals", "int"),
    ("HTAG", "ht_away_goals", "int"),
    ("HTR", "ht_result", "text"),
    ("Referee", "referee", "text"),
    ("Attendance", "attendance", "int"),
    ("HS", "home_shots", "int"),
    ("AS", "away_shots", "int"),
    ("HST", "home_shots_on_target", "int"),
    ("AST", "away_shots_on_target", "int"),
    ("HHW", "home_hit_woodwork", "int"),
    ("AHW", "away_hit_woodwork", "int"),
    ("HF", "home_fouls", "int"),
    ("AF", "away_fouls", "int"),
    ("HC", "home_corners", "int"),
    ("AC", "away_corners", "int"),
    ("HO", "home_offsides", "int"),
    ("AO", "away_offsides", "int"),
    ("HY", "home_yellow_cards", "int"),
    ("AY", "away_yellow_cards", "int"),
    ("HR", "home_red_cards", "int"),
    ("AR", "away_red_cards", "int"),
    ("HBP", "home_booking_points", "int"),
    ("ABP", "away_booking_points", "int"),
]

# Older Greek files say HT/AT for HomeTeam/AwayTeam.
HEADER_ALIASES: dict[str, str] = {"HT": "HomeTeam", "AT": "AwayTeam"}


def _odds_1x2() -> list[tuple[str, str]]:
    return [
        (f"{src}{o}", f"odds_{book}_{outcome}")
        for src, book in BOOKMAKERS.items()
        for o, outcome in OUTCOMES.items()
    ]


def _odds_1x2_closing() -> list[tuple[str, str]]:
    return [
        (f"{src}C{o}", f"odds_{BOOKMAKERS[src]}_close_{outcome}")
        for src in CLOSING_BOOKMAKERS
        for o, outcome in OUTCOMES.items()
    ]


def _odds_over_under() -> list[tuple[str, str]]:
    pre = [
        (f"{src}{ou}", f"odds_{book}_{side}")
        for src, book in OVER_UNDER_BOOKMAKERS.items()
        for ou, side in OVER_UNDER.items()
    ]
    close = [
        (f"{src}C{ou}", f"odds_{OVER_UNDER_BOOKMAKERS[src]}_close_{side}")
        for src in OVER_UNDER_CLOSING_BOOKMAKERS
        for ou, side in OVER_UNDER.items()
    ]
    return pre + close


ODDS_1X2_SOURCES = dict(_odds_1x2())
ODDS_SOURCES: dict[str, str] = ODDS_1X2_SOURCES | dict(_odds_1x2_closing()) | dict(_odds_over_under())

# Source header -> canonical column. Headers not listed here go to `extra`.
SOURCE_COLUMNS: dict[str, str] = {src: name for src, name, _ in _BASE} | ODDS_SOURCES
SOURCE_COLUMNS |= {alias: SOURCE_COLUMNS[target] for alias, target in HEADER_ALIASES.items()}

MATCH_COLUMNS: dict[str, str] = (
    {"division": "text", "season": "text"}
    | {name: typ for src, name, typ in _BASE if src != "Div"}
    | {name: "double" for name in ODDS_SOURCES.values()}
    | {"extra": "text", "source_row": "int"}
)

FIXTURE_COLUMNS: dict[str, str] = (
    {
        name: MATCH_COLUMNS[name]
        for name in ("division", "season", "match_date", "kickoff_time", "home_team", "away_team", "referee")
    }
    | {name: "double" for name in ODDS_1X2_SOURCES.values()}
    | {"extra": "text", "source_row": "int"}
)

# Source headers a season file cannot do without (HT/AT count for HomeTeam/AwayTeam).
REQUIRED_MATCH_SOURCES = ("Date", "HomeTeam", "AwayTeam", "FTHG", "FTAG")
REQUIRED_FIXTURE_SOURCES = ("Div", "Date", "HomeTeam", "AwayTeam")

assert len(set(SOURCE_COLUMNS.values())) == len(SOURCE_COLUMNS) - len(HEADER_ALIASES), "two sources, one column"
assert len(MATCH_COLUMNS) == 2 + len(_BASE) - 1 + len(ODDS_SOURCES) + 2
assert set(MATCH_COLUMNS.values()) <= set(LOGICAL_TYPES)
assert set(FIXTURE_COLUMNS) <= set(MATCH_COLUMNS) | {"extra", "source_row"}
