"""A small, deterministic stand-in for football-data.co.uk, for tests and demos without the real data.

``generate_sample_site`` writes ``dest/mmz4281/<YYZZ>/<DIV>.csv`` files whose quirks are the live site's:
the oldest season uses the older conventions (``dd/mm/yy`` dates, no ``Time``, ``BbAv*``/``BbMx*`` market
odds, no closing odds), newer ones the 2019-20+ layout (``Time``, ``Avg*``/``Max*``, closing odds);
only English and Scottish files carry a ``Referee``; seasons from ``bom_from`` on start with a UTF-8 BOM;
team names include non-ASCII ones (``Llanfair Môn``, ``Mönchengrund``) so encodings matter.

Matches come from a seeded team-strength model (attack, defence, home advantage, Poisson goals) and the
odds from the model's own probabilities plus bookmaker noise and margin, so a model trained on the site
can learn something, and the market is good but beatable only by luck. Same arguments, same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from time2bet.football import DIVISIONS, format_match_date, season_file_path, season_start_year

DEFAULT_AS_OF = dt.date(2025, 3, 1)
"""A Saturday inside the last default season: part of it is played and a round falls in the week after."""
DEFAULT_DIVISIONS = ("E0", "E1", "D1")
DEFAULT_SEASONS = ("2020-21", "2021-22", "2022-23", "2023-24", "2024-25")  # enough for walk-forward CV + a held-out season

_STATS = ["HS", "AS", "HST", "AST", "HF", "AF", "HC", "AC", "HY", "AY", "HR", "AR"]
_RESULTS = ["FTHG", "FTAG", "FTR", "HTHG", "HTAG", "HTR"]
_HDA = "HDA"
# Simulated bookmakers (code, margin); only B365 and PS get their own columns, all feed Avg/Max.
_BOOKS = (("B365", 0.055), ("PS", 0.03), ("BW", 0.06), ("IW", 0.07), ("WH", 0.06), ("VC", 0.05))
_OU_MARGIN = 0.06


def _columns(*, old: bool, referee: bool) -> list[str]:
    head = ["Div", "Date"] + ([] if old else ["Time"]) + ["HomeTeam", "AwayTeam"] + _RESULTS
    head += (["Referee"] if referee else []) + _STATS
    odds = [f"{b}{x}" for b in ("B365", "PS") for x in _HDA]
    if old:
        odds += ["Bb1X2"] + [f"Bb{k}{x}" for x in _HDA for k in ("Mx", "Av")]
        odds += ["BbOU", "BbMx>2.5", "BbAv>2.5", "BbMx<2.5", "BbAv<2.5"]
    else:
        odds += [f"{b}{x}" for b in ("Max", "Avg") for x in _HDA] + ["B365>2.5", "B365<2.5"]
        odds += [f"{b}C{x}" for b in ("B365", "PS", "Max", "Avg") for x in _HDA] + ["B365C>2.5", "B365C<2.5"]
    return head + odds


# Invented names: (always-included anchor, place names, name templates). Anchors are non-ASCII on purpose.
_NAMES: dict[str, tuple[str | None, list[str], list[str]]] = {
    "England": ("Llanfair Môn", [
        "Northbridge", "Eastwick", "Ashford Vale", "Kingsmere", "Redhaven", "Stonebury", "Wexham", "Harrowgate",
        "Millbrook", "Oakhurst", "Fenwick", "Castlemoor", "Brackley Heath", "Dunmore", "Elmstead", "Foxley",
        "Greyford", "Hollinwood", "Ironbridge", "Kettlebury", "Langmoor", "Marlow Cross", "Netherby", "Oldcastle",
        "Pembury", "Queensford", "Rivington", "Saltmarsh", "Thornbury", "Whitcombe", "Blackwater", "Fairhaven"],
        ["{}", "{}", "{}", "{} Utd", "{} City", "{} Town", "{} Rovers", "{} Athletic", "{} Albion", "{} Wanderers"]),
    "Scotland": (None, [
        "Inverbrae", "Kilmory", "Dunsleat", "Glenross", "Ardmuir", "Balnagar", "Craigowan", "Strathdee",
        "Lochend", "Auchterlee", "Port Calder", "Kinbrace"], ["{}", "{}", "{} Thistle", "{} Academicals", "{} FC"]),
    "Germany": ("Mönchengrund", [
        "Großfelden", "Würzau", "Düsselheim", "Eisenfeld", "Bad Lindau", "Hohenstein", "Neukirchen", "Rheinau",
        "Waldeck", "Oberstadt", "Kaltenbach", "Fürstenberg", "Altmühl", "Brückhausen", "Steinhagen", "Tannheim",
        "Wolfsau", "Lindenfurt", "Emsbrück", "Hagenwald"], ["{}", "{}", "FC {}", "SV {}", "Ein {}", "VfB {}"]),
    "Spain": ("Deportivo Añora", [
        "Valdemora", "Castillejo", "Sierra Alta", "Puerto Lumbre", "Villafranca", "Montejar", "Robledo",
        "Alcaraz", "Torrevieja Sur", "Olivares"], ["{}", "Real {}", "Atletico {}", "CD {}", "{} CF"]),
    "Italy": ("Virtus Città Alta", [
        "Forlano", "Castelvetro", "Montalba", "Pievebella", "San Lucido", "Rocca Nera", "Valdoria", "Borgomare",
        "Trevisella", "Aquilonia"], ["{}", "{}", "AC {}", "Sporting {}", "{} Calcio"]),
    "France": ("Étoile Bréhat", [
        "Montclair", "Valmont", "Saint-Aubin", "Rochefort-Mer", "Beaulac", "Châtelneuf", "Pontvieux", "Lorville",
        "Marsanne", "Aubervale"], ["{}", "{}", "AS {}", "Olympique {}", "Stade {}", "FC {}"]),
}
_SYLLABLES = ["var", "del", "ko", "mir", "an", "tas", "ber", "lo", "sen", "dra", "ve", "nik", "hol", "ru", "ta"]
_REFEREES = [
    "J Ashworth", "P Bramley", "S Cotter", "D Everell", "K Farrant", "M Gilchrist", "R Halloway", "T Inskip",
    "L Jessop", "C Kearsley", "N Lathom", "G Merriott", "A Pennick", "O Rudd"]
# Kickoff slots (UK time) by weekday: Saturday, Sunday.
_SLOTS = {
    "England": (["12:30", "15:00", "15:00", "15:00", "17:30"], ["14:00", "16:30"]),
    "Germany": (["14:30", "14:30", "14:30", "17:30"], ["14:30", "16:30"]),
}
_DEFAULT_SLOTS = (["15:00", "17:00", "19:00"], ["13:00", "15:00", "19:30"])
_FACT = np.array([math.factorial(k) for k in range(11)], dtype=float)
_UNDER_2_5 = np.add.outer(np.arange(11), np.arange(11)) <= 2


@dataclass
class _Team:
    name: str
    attack: float
    defence: float


def _team_names(country: str, count: int, rng: np.random.Generator) -> list[str]:
    anchor, bases, templates = _NAMES.get(country, (None, [], ["{}", "FC {}", "Sporting {}", "{} City"]))
    bases = [bases[i] for i in rng.permutation(len(bases))]
    names = [anchor] if anchor else []
    while len(names) < count:
        if bases:
            base = bases.pop()
        else:  # more teams than invented places: make up a place name
            base = "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 4)))).capitalize()
        name = templates[int(rng.integers(len(templates)))].format(base)
        if name not in names:
            names.append(name)
    return names[:count]


def _round_dates(start_year: int, country: str, n_rounds: int) -> list[dt.date]:
    """Saturdays from August to mid-May, evenly spread; the round nearest the first Saturday of March is
    moved onto it, so an as-of date on that weekend (like DEFAULT_AS_OF) always has fixtures."""
    first = dt.date(start_year, 8, 16 if country == "Germany" else 5)
    first += dt.timedelta(days=(5 - first.weekday()) % 7)
    last = dt.date(start_year + 1, 5, 17)
    last -= dt.timedelta(days=(last.weekday() - 5) % 7)
    weeks = (last - first).days // 7
    dates = [first + dt.timedelta(weeks=round(r * weeks / max(1, n_rounds - 1))) for r in range(n_rounds)]
    march = dt.date(start_year + 1, 3, 1)
    march += dt.timedelta(days=(5 - march.weekday()) % 7)
    nearest = min(range(n_rounds), key=lambda r: abs((dates[r] - march).days))
    if abs((dates[nearest] - march).days) <= 14 and march not in dates:
        dates[nearest] = march
    return dates


def _double_round_robin(n: int, rng: np.random.Generator) -> list[list[tuple[int, int]]]:
    """Circle method; the second half repeats the first with home and away swapped."""
    idx: list[int | None] = [int(i) for i in rng.permutation(n)] + ([None] if n % 2 else [])
    m = len(idx)
    rounds = []
    for r in range(m - 1):
        pairs = []
        for i in range(m // 2):
            a, b = idx[i], idx[m - 1 - i]
            if a is not None and b is not None:
                pairs.append((a, b) if (r + i) % 2 == 0 else (b, a))
        rounds.append(pairs)
        idx = [idx[0], idx[-1], *idx[1:-1]]
    return rounds + [[(b, a) for a, b in pairs] for pairs in rounds]


def _probabilities(lam_h: float, lam_a: float) -> tuple[np.ndarray, np.ndarray]:
    """True 1X2 and over/under-2.5 probabilities from independent Poisson goals (score matrix 0..10)."""
    k = np.arange(11)
    score = np.outer(np.exp(-lam_h) * lam_h**k / _FACT, np.exp(-lam_a) * lam_a**k / _FACT)
    score /= score.sum()
    hda = np.array([np.tril(score, -1).sum(), np.trace(score), np.triu(score, 1).sum()])
    under = score[_UNDER_2_5].sum()
    return hda, np.array([1.0 - under, under])


def _market(p: np.ndarray, rng: np.random.Generator, common_sd: float, own_sd: float,
            margin: float | None = None) -> np.ndarray:
    """Decimal odds (bookmaker x outcome) of all simulated bookmakers: the truth perturbed in log space by
    a shared market error plus each bookmaker's own, then a proportional margin."""
    margins = np.array([margin or m for _, m in _BOOKS]) + rng.uniform(-0.003, 0.003, len(_BOOKS))
    q = p * np.exp(rng.normal(0.0, common_sd, len(p)) + rng.normal(0.0, own_sd, (len(_BOOKS), len(p))))
    q /= q.sum(axis=1, keepdims=True)
    return np.clip(np.round(1.0 / (q * (1.0 + margins[:, None])), 2), 1.01, 51.0)


def _num(x: float) -> str:
    """Numbers as the site writes them: 2.5, 10, 1.14."""
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _play(home: _Team, away: _Team, home_adv: float, rng: np.random.Generator) -> dict[str, str]:
    lam_h = math.exp(0.12 + home_adv + home.attack - away.defence)
    lam_a = math.exp(0.12 + away.attack - home.defence)
    fthg, ftag = (int(min(10, g)) for g in rng.poisson([lam_h, lam_a]))
    hthg, htag = int(rng.binomial(fthg, 0.45)), int(rng.binomial(ftag, 0.45))
    row = {"FTHG": fthg, "FTAG": ftag, "HTHG": hthg, "HTAG": htag,
           "FTR": "H" if fthg > ftag else "A" if fthg < ftag else "D",
           "HTR": "H" if hthg > htag else "A" if hthg < htag else "D"}
    for side, goals, lam, edge in (("H", fthg, lam_h, lam_h - lam_a), ("A", ftag, lam_a, lam_a - lam_h)):
        shots = goals + int(rng.poisson(6.0 + 3.5 * lam))
        fouls = int(rng.poisson(max(4.0, 11.0 - 1.2 * edge)))  # the side under pressure fouls more
        yellow = int(rng.poisson(0.3 + 0.11 * fouls))
        row |= {f"{side}S": shots, f"{side}ST": goals + int(rng.binomial(shots - goals, 0.25)),
                f"{side}F": fouls, f"{side}C": int(rng.poisson(1.5 + 0.3 * shots)), f"{side}Y": yellow,
                f"{side}R": int(rng.random() < 0.03 + 0.01 * yellow)}
    out = {k: str(v) for k, v in row.items()}

    hda, ou = _probabilities(lam_h, lam_a)
    pre, pre_ou = _market(hda, rng, 0.08, 0.03), _market(ou, rng, 0.06, 0.03, _OU_MARGIN)
    close, close_ou = _market(hda, rng, 0.035, 0.012), _market(ou, rng, 0.03, 0.012, _OU_MARGIN)
    for prefix, quotes in (("", pre), ("C", close)):
        for i, x in enumerate(_HDA):
            col = quotes[:, i]
            out[f"B365{prefix}{x}"], out[f"PS{prefix}{x}"] = _num(col[0]), _num(col[1])
            out[f"Max{prefix}{x}"], out[f"Avg{prefix}{x}"] = _num(col.max()), _num(col.mean())
    out["BbMxH"], out["BbMxD"], out["BbMxA"] = out["MaxH"], out["MaxD"], out["MaxA"]
    out["BbAvH"], out["BbAvD"], out["BbAvA"] = out["AvgH"], out["AvgD"], out["AvgA"]
    out["Bb1X2"], out["BbOU"] = str(int(rng.integers(36, 46))), str(int(rng.integers(30, 40)))
    for i, side in enumerate((">2.5", "<2.5")):
        out[f"B365{side}"], out[f"B365C{side}"] = _num(pre_ou[0][i]), _num(close_ou[0][i])
        out[f"BbMx{side}"], out[f"BbAv{side}"] = _num(pre_ou[:, i].max()), _num(pre_ou[:, i].mean())
    return out


def _table_order(teams: list[_Team], rows: list[dict]) -> list[_Team]:
    """League table: points, goal difference, goals scored, name."""
    pts = {t.name: [0, 0, 0] for t in teams}
    for r in rows:
        h, a, hg, ag = r["HomeTeam"], r["AwayTeam"], int(r["FTHG"]), int(r["FTAG"])
        for team, gf, ga in ((h, hg, ag), (a, ag, hg)):
            pts[team][0] += 3 if gf > ga else 1 if gf == ga else 0
            pts[team][1] += gf - ga
            pts[team][2] += gf
    return sorted(teams, key=lambda t: (-pts[t.name][0], -pts[t.name][1], -pts[t.name][2], t.name))


def generate_sample_site(
    dest: Path,
    *,
    seed: int = 7,
    divisions: tuple[str, ...] | list[str] = DEFAULT_DIVISIONS,
    seasons: tuple[str, ...] | list[str] = DEFAULT_SEASONS,
    teams_per_division: int = 10,
    bom_from: str | None = "2024-25",
) -> dict:
    """Write ``dest/mmz4281/<YYZZ>/<DIV>.csv`` for every division and season; return a summary.

    The chronologically first season uses the older conventions. Adjacent tiers of one country (E0/E1)
    exchange teams by promotion and relegation between seasons. Seasons from ``bom_from`` on (None: none)
    are written with a UTF-8 byte-order mark, as the live site does from 2024-25.
    Summary: root, seed, files (relative paths), matches, matches_per_file, date_range (ISO first, last).
    """
    divisions = list(dict.fromkeys(divisions))
    unknown = [d for d in divisions if d not in DIVISIONS]
    if unknown:
        raise ValueError(f"unknown division codes {unknown}; known: {sorted(DIVISIONS)}")
    if not 2 <= teams_per_division <= 40:
        raise ValueError("teams_per_division must be between 2 and 40")
    seasons = sorted(set(seasons), key=season_start_year)  # also validates the labels
    if not seasons or not divisions:
        raise ValueError("need at least one division and one season")
    rng = np.random.default_rng(seed)
    dest = Path(dest)

    order = list(DIVISIONS)
    countries: dict[str, list[str]] = {}
    for div in sorted(divisions, key=order.index):
        countries.setdefault(DIVISIONS[div].country, []).append(div)
    tiers: dict[str, list[_Team]] = {}
    for country, divs in countries.items():
        names = _team_names(country, teams_per_division * len(divs), rng)
        # each tier a notch weaker than the one above; a new team's strength is relative to the top tier
        strength = [rng.normal(-0.3 * (i // teams_per_division), 0.28) for i in range(len(names))]
        teams = [_Team(n, 0.8 * s + rng.normal(0, 0.08), 0.8 * s + rng.normal(0, 0.08))
                 for n, s in zip(names, strength)]
        for k, div in enumerate(divs):
            tiers[div] = teams[k * teams_per_division:(k + 1) * teams_per_division]
    home_adv = {div: float(rng.normal(0.25, 0.03)) for div in tiers}

    files: dict[str, int] = {}
    dates: list[dt.date] = []
    for s_index, season in enumerate(seasons):
        old = s_index == 0
        start_year = season_start_year(season)
        for country, divs in countries.items():
            results: dict[str, list[dict]] = {}
            for div in divs:
                teams = tiers[div]
                rounds = _double_round_robin(len(teams), rng)
                sat, sun = _SLOTS.get(country, _DEFAULT_SLOTS)
                rows = []
                for day, pairs in zip(_round_dates(start_year, country, len(rounds)), rounds):
                    for h, a in pairs:
                        sunday = rng.random() < 0.3
                        date = day + dt.timedelta(days=int(sunday))
                        row = {"Div": div, "Date": format_match_date(date, four_digit_year=not old),
                               "Time": str(rng.choice(sun if sunday else sat)),
                               "HomeTeam": teams[h].name, "AwayTeam": teams[a].name,
                               "Referee": str(rng.choice(_REFEREES)), "_date": date}
                        rows.append(row | _play(teams[h], teams[a], home_adv[div], rng))
                rows.sort(key=lambda r: (r["_date"], r["Time"], r["HomeTeam"]))
                results[div] = rows
                path = season_file_path(div, season)
                bom = bom_from is not None and season_start_year(season) >= season_start_year(bom_from)
                _write(dest / path, rows, _columns(old=old, referee=country in ("England", "Scotland")), bom)
                files[path] = len(rows)
                dates += [rows[0]["_date"], rows[-1]["_date"]]
            _promote(divs, tiers, results, max(1, teams_per_division // 5))
        for team in (t for ts in tiers.values() for t in ts):  # form drifts between seasons
            team.attack += float(rng.normal(0, 0.06))
            team.defence += float(rng.normal(0, 0.06))

    return {"root": str(dest), "seed": seed, "files": sorted(files), "matches": sum(files.values()),
            "matches_per_file": dict(sorted(files.items())),
            "date_range": (min(dates).isoformat(), max(dates).isoformat())}


def _promote(divs: list[str], tiers: dict[str, list[_Team]], results: dict[str, list[dict]], n: int) -> None:
    """Swap the bottom n of each tier with the top n of the tier below (both must be generated)."""
    order = list(DIVISIONS)
    for upper, lower in itertools.pairwise(divs):
        if order.index(lower) != order.index(upper) + 1:
            continue
        up, down = _table_order(tiers[upper], results[upper]), _table_order(tiers[lower], results[lower])
        tiers[upper], tiers[lower] = up[:-n] + down[:n], up[-n:] + down[n:]


def _write(path: Path, rows: list[dict], columns: list[str], bom: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([row.get(c, "") for c in columns] for row in rows)
