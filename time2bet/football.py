"""The vocabulary of football-data.co.uk: divisions, season codes and match dates.

Shared by the source side (sample site, replay server) and ingestion (spider, parser), so both agree on
what a season code or a date means.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Division:
    code: str
    country: str
    name: str

    @property
    def country_page(self) -> str:
        """The site's index page that links this country's season files, e.g. ``englandm.php``."""
        return f"{self.country.lower()}m.php"


DIVISIONS: dict[str, Division] = {
    d.code: d
    for d in [
        Division("E0", "England", "Premier League"),
        Division("E1", "England", "Championship"),
        Division("E2", "England", "League One"),
        Division("E3", "England", "League Two"),
        Division("EC", "England", "National League"),
        Division("SC0", "Scotland", "Premiership"),
        Division("SC1", "Scotland", "Championship"),
        Division("SC2", "Scotland", "League One"),
        Division("SC3", "Scotland", "League Two"),
        Division("D1", "Germany", "Bundesliga 1"),
        Division("D2", "Germany", "Bundesliga 2"),
        Division("SP1", "Spain", "La Liga Primera Division"),
        Division("SP2", "Spain", "La Liga Segunda Division"),
        Division("I1", "Italy", "Serie A"),
        Division("I2", "Italy", "Serie B"),
        Division("F1", "France", "Le Championnat"),
        Division("F2", "France", "Division 2"),
        Division("N1", "Netherlands", "Eredivisie"),
        Division("B1", "Belgium", "Jupiler League"),
        Division("P1", "Portugal", "Liga I"),
        Division("T1", "Turkey", "Futbol Ligi 1"),
        Division("G1", "Greece", "Ethniki Katigoria"),
    ]
}

DIVISION_CODE_RE = re.compile(r"^[A-Z]{1,3}\d?$")
SEASON_CODE_RE = re.compile(r"^\d{4}$")
SEASON_LABEL_RE = re.compile(r"^(\d{4})-(\d{2})$")


def season_label(code: str) -> str:
    """``'1920'`` -> ``'2019-20'``; ``'9900'`` -> ``'1999-00'``. Labels sort chronologically, codes do not."""
    if not SEASON_CODE_RE.match(code):
        raise ValueError(f"not a season code (YYZZ): {code!r}")
    first = int(code[:2])
    century = 1900 if first >= 90 else 2000
    start = century + first
    if (start + 1) % 100 != int(code[2:]):
        raise ValueError(f"season code {code!r} does not span two consecutive years")
    return f"{start}-{code[2:]}"


def season_code(label: str) -> str:
    """``'2019-20'`` -> ``'1920'``."""
    m = SEASON_LABEL_RE.match(label)
    if not m or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
        raise ValueError(f"not a season label (YYYY-YY): {label!r}")
    return m.group(1)[2:] + m.group(2)


def season_start_year(label: str) -> int:
    return int(season_code(label)[:2]) + (1900 if int(label[:4]) < 2000 else 2000)


def season_of(date: dt.date) -> str:
    """The season a match date belongs to; seasons turn over on 1 July."""
    start = date.year if date.month >= 7 else date.year - 1
    return f"{start}-{(start + 1) % 100:02d}"


def season_file_path(division: str, season: str) -> str:
    """Site path of a season file: ``mmz4281/1920/E0.csv`` for (``E0``, ``2019-20``)."""
    return f"mmz4281/{season_code(season)}/{division}.csv"


_DATE_RE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})\s*$")


def parse_match_date(text: str) -> dt.date:
    """Parse the site's ``dd/mm/yy`` (older files) or ``dd/mm/yyyy`` (newer files) dates.

    Two-digit years are read in the site's window: 90-99 -> 1990s, 00-89 -> 2000s.
    """
    m = _DATE_RE.match(text)
    if not m:
        raise ValueError(f"unparseable match date {text!r} (expected dd/mm/yy or dd/mm/yyyy)")
    day, month, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if len(m.group(3)) == 2:
        year += 1900 if year >= 90 else 2000
    return dt.date(year, month, day)


def format_match_date(date: dt.date, *, four_digit_year: bool = True) -> str:
    return date.strftime("%d/%m/%Y" if four_digit_year else "%d/%m/%y")
