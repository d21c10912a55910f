"""Parse football-data.co.uk CSV files into frames with exactly the canonical schema columns.

A file is either loaded whole or rejected with a message a person can act on: the warehouse replaces whole
partitions, so partial data would silently lose matches. Key fields (date, teams, goals, results) are
checked strictly; other values that cannot be typed (odds like '3.53.75', attendance 'NA') become null and
keep their raw text in ``extra``, so nothing in a file is lost and one stray cell does not block a season.

Output dtypes: text -> object (str or None), date -> datetime64[ns] (midnight), int -> Int64,
double -> float64.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from time2bet.football import DIVISION_CODE_RE, parse_match_date, season_code, season_of, season_start_year
from time2bet.warehouse.schema import (
    BOOKMAKERS,
    FIXTURE_COLUMNS,
    MATCH_COLUMNS,
    REQUIRED_FIXTURE_SOURCES,
    REQUIRED_MATCH_SOURCES,
    SOURCE_COLUMNS,
)

MAX_GOALS = 30  # more than any real professional league score; above it the cell is garbage
SEASON_END_MARGIN = dt.timedelta(days=21)  # late play-offs after 30 June
# Seasons that really ran long: 2019-20 restarted after the COVID-19 break and ended in July/August 2020.
SEASON_END_OVERRIDES = {"2019-20": dt.date(2020, 8, 31)}

# Rows of the real data whose result letter disagrees with the goals (source errors, checked by hand):
# (division, season, ISO date, home team, away team). Loaded as published; staging should trust the goals.
KNOWN_RESULT_QUIRKS = frozenset(
    {
        ("EC", "2005-06", "2006-04-25", "Exeter", "Crawley Town"),  # 4-0 (HT 3-0), FTR and HTR 'D'
        ("EC", "2005-06", "2006-04-25", "Halifax", "Gravesend"),  # 2-0, FTR 'D'
        ("EC", "2005-06", "2006-04-25", "Woking", "Forest Green"),  # 2-1, FTR 'D'
        ("EC", "2005-06", "2006-04-25", "Burton", "Dag and Red"),  # HT 2-1, HTR 'D'
        ("EC", "2007-08", "2007-11-17", "Oxford", "Ebbsfleet"),  # HT 0-0, HTR 'A'
    }
)

_LISTED = 5  # offending lines quoted per problem
_WHOLE_NUMBER_RE = re.compile(r"[0-9]+(?:\.0*)?")  # '2' and '2.0' (one real file writes goals as floats)
_TIME = re.compile(r"^([0-9]{1,2}):([0-5][0-9])(?::[0-5][0-9])?$")  # 'H:MM', 'HH:MM', 'HH:MM:SS' -> 'HH:MM'
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The same characters as bytes: they are ASCII, so a byte test on the raw data (utf-8 or cp1252) is exact and
# much faster than the regex over the decoded text, which then only runs to place the message.
_CONTROL_BYTES = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_SPACE = re.compile(r"\s")
_NOT_DIGITS = re.compile(r"[^0-9.]")
_JSON_ESCAPE = re.compile(r'["\\\x00-\x1f]')
_GOALS = ("home_goals", "away_goals", "ht_home_goals", "ht_away_goals")


class RejectedFile(ValueError):
    """A source file that cannot be loaded. The message says what is wrong and where (file-level reason or
    the first few offending line numbers and values), so a Dagster run can show it to a person."""


class TruncatedFile(RejectedFile):
    """A row with fewer values than the header: a publication or download cut short. The ingestion quarantines
    such a file even on a first load (none of the 488 real files has such a row)."""


# --- decoding and reading -------------------------------------------------------------------------------


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM), else cp1252 (what the live site served before 2024-25)."""
    if not data:
        raise RejectedFile("empty file (0 bytes)")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise RejectedFile("file is UTF-16 encoded (byte-order mark found); expected UTF-8 or cp1252 CSV text")
    if b"\x00" in data:
        at = data.index(b"\x00")
        raise RejectedFile(f"file contains NUL bytes (first at byte {at}): binary or UTF-16 data, not CSV text")
    if data.startswith(b"\xef\xbb\xbf"):
        text = _decode(data[3:], "utf-8")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _decode(data, "cp1252")
    bad = _CONTROL.search(text) if len(data.translate(None, _CONTROL_BYTES)) < len(data) else None
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise RejectedFile(f"file contains control character {bad.group()!r} on line {line}: binary data, not CSV text")
    return text


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise RejectedFile(
            f"file is neither UTF-8 nor cp1252 text (byte {data[exc.start]:#04x} at offset {exc.start}): binary data?"
        ) from exc


@dataclass
class _Table:
    """Stripped string cells of the non-blank rows, keyed by source header, with their line numbers."""

    columns: dict[str, np.ndarray]
    lines: np.ndarray
    header: list[str]


def _read_table(text: str) -> _Table:
    _reject_html(text)
    plain = _plain_lines(text)
    if plain is not None:  # the usual file: no quotes, so no need for csv.reader's cell-by-cell parsing
        header, lines_text, lines = plain
        names = _header_names(header)
        cells = _split_lines(lines_text, len(header), lines)
    else:
        header, rows, lines = _csv_rows(text)
        names = _header_names(header)
        cells = _cell_matrix(rows, len(header), lines)
    cells = np.ascontiguousarray(cells.T)  # one row per column: everything after works column by column
    columns: dict[str, np.ndarray] = {}
    strip = _has_padded_cells(text)
    for j, name in enumerate(names):
        values = _strip(cells[j]) if strip else cells[j]
        if name.startswith("column_") and not any(values):
            continue  # an unnamed, empty column from trailing commas
        columns[name] = values
    return _Table(columns, np.array(lines, dtype=np.int64), [n for n in names if n in columns])


def _cell_matrix(rows: list[list[str]], width: int, lines: list[int]) -> np.ndarray:
    """csv.reader rows as a (rows, width) cell matrix; _fit_row trims or rejects rows off the header's width."""
    rows = [row if len(row) == width else _fit_row(row, width, line) for row, line in zip(rows, lines)]
    cells = np.empty((len(rows), width), dtype=object)
    if rows:
        cells[:] = rows
    return cells


def _plain_lines(text: str) -> tuple[list[str], list[str], list[int]] | None:
    """Fast path for the usual file: no quote character, lines ending in '\n' or '\r\n', no line longer
    than the csv module's field size limit. Then each physical line is one record and its cells are
    exactly line.split(','), as csv.reader gives them. None: read the file with csv.reader (_csv_rows).

    Returns the header cells, the data lines that are not blank (unsplit) and their 1-based line numbers."""
    if '"' in text:
        return None
    if "\r" in text:
        if text.count("\r") != text.count("\r\n"):
            return None  # a bare '\r' also ends a line for csv.reader
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final line break
    if not lines or _blank(lines[0]) or max(map(len, lines)) > csv.field_size_limit():
        return None  # csv.reader gives the messages for these
    rows, numbers = [], []
    for number, line in enumerate(lines[1:], start=2):
        first = line[:1]
        if (not first or first == "," or first.isspace()) and _blank(line):
            continue  # blank rows: real files end with some
        rows.append(line)
        numbers.append(number)
    return lines[0].split(","), rows, numbers


def _blank(line: str) -> bool:
    """A quote-free line whose cells are all empty or whitespace."""
    return not line.replace(",", "").strip()


def _split_lines(rows: list[str], width: int, lines: list[int]) -> np.ndarray:
    """Quote-free lines as a (rows, width) cell matrix. Once _fit_row has trimmed or rejected the lines off
    the header's width, one str.split over all of them gives the cells, with no list per row."""
    for i, row in enumerate(rows):
        if row.count(",") != width - 1:
            rows[i] = ",".join(_fit_row(row.split(","), width, lines[i]))
    cells = ",".join(rows).split(",") if rows else []
    return np.fromiter(cells, dtype=object, count=len(cells)).reshape(len(rows), width)


def _reject_html(text: str) -> None:
    head = text[:2048].lstrip().lower()
    if head.startswith("<") or "<html" in head or "<!doctype" in head:
        first = text.lstrip()[:40].splitlines()[0] if text.strip() else ""
        raise RejectedFile(f"got an HTML page (starts {first!r}), not a CSV file")


def _csv_rows(text: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header and non-blank data rows with their 1-based physical line numbers (header = line 1)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows, lines = [], []
    last = 0
    try:
        for row in reader:
            start, last = last + 1, reader.line_num
            if last > start:
                raise RejectedFile(
                    f"malformed CSV: a quoted value spans lines {start}-{last} (unbalanced quote on line {start}?)"
                )
            if rows and not (row and row[0].strip()) and not "".join(row).strip():
                continue  # blank rows: real files end with some
            rows.append(row)
            lines.append(start)
    except csv.Error as exc:
        raise RejectedFile(f"malformed CSV in the row starting on line {last + 1}: {exc} (stray quote?)") from exc
    if not rows or not "".join(rows[0]).strip():
        raise RejectedFile("no header line: the file is blank")
    return rows[0], rows[1:], lines[1:]


def _fit_row(row: list[str], width: int, line: int) -> list[str]:
    """Rows may carry extra trailing commas; anything else off the header's width is malformed."""
    if len(row) > width and not "".join(row[width:]).strip():
        return row[:width]
    if len(row) > width:
        raise RejectedFile(
            f"malformed CSV: line {line} has {len(row)} values but the header has {width} columns "
            f"(values beyond the header: {[v for v in row[width:] if v.strip()][:_LISTED]})"
        )
    raise TruncatedFile(
        f"truncated file: line {line} has {len(row)} values but the header has {width} columns"
    )


def _header_names(header: list[str]) -> list[str]:
    """Stripped header names; unnamed columns become 'column_<n>' (1-based); duplicates are rejected."""
    names = _repair_bare_bookmaker(
        [h.strip().lstrip("\ufeff") or f"column_{i}" for i, h in enumerate(header, start=1)]
    )
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if name in seen:
            raise RejectedFile(f"malformed header: column {name!r} appears twice (columns {seen[name]} and {i})")
        seen[name] = i
    return names


def _repair_bare_bookmaker(names: list[str]) -> list[str]:
    """One real file (D2 2004-05) heads Ladbrokes' 1X2 odds 'LB,LB,LB' instead of 'LBH,LBD,LBA'."""
    out = list(names)
    for i in range(len(out) - 2):
        run = out[i : i + 3]
        if run[0] in BOOKMAKERS and run.count(run[0]) == 3 and out[i + 3 : i + 4] != [run[0]]:
            out[i : i + 3] = [run[0] + "H", run[0] + "D", run[0] + "A"]
    return out


_WHITESPACE = [c for c in map(chr, range(0x3001)) if c.isspace() and c not in "\r\n"]


def _has_padded_cells(text: str) -> bool:
    """Whether any cell may start or end with whitespace; most files have none, so skip the stripping.
    Plain substring tests run at memory speed, unlike a regex over the whole text."""
    if '"' in text:
        return True
    if text.isascii():
        return _has_padded_ascii(text)
    for c in _WHITESPACE:
        if c in text and (f"{c}," in text or f",{c}" in text or f"{c}\n" in text or f"{c}\r" in text
                          or f"\n{c}" in text or text.startswith(c) or text.endswith(c)):
            return True
    return False


def _byte_set(chars: str) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    table[[ord(c) for c in chars]] = True
    return table


_ASCII_WHITESPACE = _byte_set("".join(c for c in _WHITESPACE if c.isascii()))
_BEFORE_PADDING = _byte_set(",\n")  # what _has_padded_cells looks for before a whitespace character
_AFTER_PADDING = _byte_set(",\n\r")  # ... and after one


def _has_padded_ascii(text: str) -> bool:
    """_has_padded_cells for ASCII text (nearly every file) as byte tests: a space is in almost every file
    (team names), and the substring tests for ' ,', ', ' and so on then each scan the whole text."""
    codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    at = np.flatnonzero(codes <= 0x20)  # ASCII whitespace is the space and some control codes
    at = at[_ASCII_WHITESPACE[codes[at]]]
    if not len(at):
        return False
    if at[0] == 0 or at[-1] == len(codes) - 1:
        return True  # text.startswith / text.endswith
    return bool(_BEFORE_PADDING[codes[at - 1]].any() or _AFTER_PADDING[codes[at + 1]].any())


def _strip(values: np.ndarray) -> np.ndarray:
    """Strip whitespace (incl. non-breaking spaces) only where some cell needs it: most columns do not."""
    if _SPACE.search("".join(values)):
        values = np.array([v.strip() for v in values], dtype=object)
    return values


# --- typing cells ---------------------------------------------------------------------------------------


@dataclass
class _Typed:
    values: object  # array-like of the target dtype
    bad: np.ndarray  # non-empty cells that could not be typed


def _as_text(raw: np.ndarray) -> _Typed:
    return _Typed(np.where(raw == "", None, raw), np.zeros(len(raw), dtype=bool))


def _typed_numbers(table: _Table, sources: list[str], kinds: list[str]) -> dict[str, _Typed]:
    """All int and double columns of a file typed together, by distinct cell text: odds and counts repeat a
    lot, so each text is converted once and spread back by its code instead of converting every cell.

    The rules apply per column, exactly as when each column was typed on its own:
    - a cell is Python's float() of its text, NaN if empty; if some cell of a column is not a number at
      all, that whole column is read with pd.to_numeric(errors="coerce") instead;
    - double: non-finite values are bad (null, raw text kept in extra);
    - int: whole numbers only; '2.0' counts (one real file writes goals as floats), '2.5', '-1', '1e1'
      do not. The text must also look like one ([0-9]+ with optional '.000') if any cell of the column
      has a character other than digits and '.'."""
    if not sources:
        return {}
    block = np.stack([table.columns[s] for s in sources])  # one row per column
    codes, uniques = pd.factorize(block.ravel())  # cells are str, never NaN, so every code is >= 0
    codes = codes.reshape(block.shape)
    floats, unparseable = _unique_floats(uniques)
    numbers = floats[codes]
    if unparseable.any():
        for j in np.flatnonzero(unparseable[codes].any(axis=1)):
            numbers[j] = pd.to_numeric(pd.Series(block[j], dtype=object), errors="coerce").to_numpy(dtype=float)
    nonempty = (uniques != "")[codes]
    is_int = np.array([kind == "int" for kind in kinds])
    ok = np.isfinite(numbers)
    ok[is_int] &= _whole_numbers(numbers[is_int], codes[is_int], uniques)
    numbers[~ok] = np.nan
    typed = {}
    for j, source in enumerate(sources):
        values = numbers[j]
        if is_int[j]:
            values = pd.arrays.IntegerArray(np.where(ok[j], values, 0).astype(np.int64), ~ok[j])
        typed[source] = _Typed(values, ~ok[j] & nonempty[j])
    return typed


def _unique_floats(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float() of each text (NaN for ''), and which texts float() rejects. One numpy call when all parse."""
    try:
        return np.where(texts == "", "nan", texts).astype(float), np.zeros(len(texts), dtype=bool)
    except ValueError:
        floats, unparseable = np.full(len(texts), np.nan), np.zeros(len(texts), dtype=bool)
        for i, text in enumerate(texts):
            try:
                floats[i] = float(text) if text else np.nan
            except ValueError:
                unparseable[i] = True
        return floats, unparseable


def _whole_numbers(numbers: np.ndarray, codes: np.ndarray, uniques: np.ndarray) -> np.ndarray:
    """Which cells of int columns (rows of numbers / codes) hold a whole number, per _typed_numbers."""
    ok = (numbers >= 0) & (numbers == np.floor(numbers)) & (numbers < 2**53)
    used = np.unique(codes)
    if not _NOT_DIGITS.search("".join(uniques[used])):
        return ok  # the usual case: only digits and '.'
    not_digits = np.zeros(len(uniques), dtype=bool)
    looks_whole = np.zeros(len(uniques), dtype=bool)
    for i in used:
        not_digits[i] = _NOT_DIGITS.search(uniques[i]) is not None
        looks_whole[i] = _WHOLE_NUMBER_RE.fullmatch(uniques[i]) is not None
    checked = not_digits[codes].any(axis=1, keepdims=True)  # per column
    return ok & (looks_whole[codes] | ~checked)


def _as_time(raw: np.ndarray) -> _Typed:
    parts = pd.Series(raw, dtype=object).str.extract(_TIME)
    hour = pd.to_numeric(parts[0])
    ok = (hour < 24).to_numpy(dtype=bool)
    text = parts[0].str.zfill(2) + ":" + parts[1]
    return _Typed(np.where(ok, text.to_numpy(dtype=object), None), ~ok & (raw != ""))


def _as_date(raw: np.ndarray) -> _Typed:
    """Parse each distinct date string once with the shared football.parse_match_date."""
    codes, uniques = pd.factorize(raw)  # cells are str, never NaN, so every code is >= 0
    days = np.array([_day_number(u) for u in uniques], dtype=np.int64).view("datetime64[D]")
    values = days.astype("datetime64[ns]")[codes]
    return _Typed(values, np.isnat(values))


_EPOCH = dt.date(1970, 1, 1).toordinal()
_NAT = np.datetime64("NaT", "D").view(np.int64)


def _day_number(text: str) -> int:
    """Days since 1970-01-01 (NaT's integer if unparseable): ints convert to datetime64 in bulk, dates do not."""
    try:
        date = parse_match_date(text)
    except ValueError:
        return _NAT
    if not 1900 <= date.year <= 2199:  # no football-data date; nanosecond datetimes would also wrap around
        return _NAT
    return date.toordinal() - _EPOCH


def _type_column(name: str, kind: str, raw: np.ndarray) -> _Typed:
    if name == "kickoff_time":
        return _by_distinct_text(_as_time, raw)
    return {"text": _as_text, "date": _as_date}[kind](raw)


def _by_distinct_text(typer, raw: np.ndarray) -> _Typed:
    """typer (a cell-by-cell rule) run on the distinct cells only, then spread back: pandas' string methods
    cost far more per cell than a take."""
    codes, uniques = pd.factorize(raw)  # cells are str, never NaN, so every code is >= 0
    typed = typer(uniques)
    return _Typed(typed.values[codes], typed.bad[codes])


def _empty(kind: str, n: int) -> object:
    if kind == "int":
        return pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))
    if kind == "date":
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    return np.full(n, None, dtype=object)


# --- the extra column -----------------------------------------------------------------------------------


def _json_objects(parts: list[tuple[str, np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """One JSON object per row from (key, raw values, which rows carry it), keys in header order.

    Rows carrying the same keys share one %-template, so each row is a single C-level format call: most
    files have a handful of such patterns (e.g. every row has the Asian handicap columns)."""
    parts = [part for part in parts if part[2].any()]
    out = np.full(n, "{}", dtype=object)
    if not parts:
        return out
    fields, columns = [], []
    for key, values, mask in parts:
        key_json = json.dumps(key, ensure_ascii=False).replace("%", "%%")
        if _JSON_ESCAPE.search("".join(values[mask])):
            values = values.copy()
            values[mask] = [json.dumps(v, ensure_ascii=False) for v in values[mask]]
            fields.append(key_json + ":%s")
        else:
            fields.append(key_json + ':"%s"')
        columns.append(values)
    carried = np.stack([mask for _, _, mask in parts], axis=1)
    order = np.lexsort(carried.T)  # rows with the same keys become neighbours
    patterns = carried[order]
    starts = np.flatnonzero(np.r_[True, (patterns[1:] != patterns[:-1]).any(axis=1)])
    for start, end in zip(starts, [*starts[1:], n]):
        keys = np.flatnonzero(patterns[start])
        if not len(keys):
            continue
        rows = order[start:end]
        template = "{" + ",".join(fields[k] for k in keys) + "}"
        out[rows] = [template % cells for cells in zip(*(columns[k][rows] for k in keys))]
    return out


# --- building the frame ---------------------------------------------------------------------------------


@dataclass
class _Parsed:
    """Typed columns (numpy / pandas arrays) before they become a frame; checks read these."""

    cols: dict[str, object]
    raw: dict[str, np.ndarray]  # canonical name -> stripped source text, for messages
    lines: np.ndarray
    floats: dict[str, np.ndarray] = field(default_factory=dict)  # numbers() cache: checks read goals often

    def numbers(self, name: str) -> np.ndarray:
        """An int column as floats with NaN for missing (all NaN if the file lacks it)."""
        if name not in self.floats:
            values = self.cols.get(name)
            if values is None:
                self.floats[name] = np.full(len(self.lines), np.nan)
            else:
                self.floats[name] = values.to_numpy(dtype=float, na_value=np.nan)
        return self.floats[name]

    def text(self, name: str) -> np.ndarray:
        """Stripped source text of a column ('' where missing), for checks and messages."""
        values = self.raw.get(name)
        return values if values is not None else np.full(len(self.lines), "", dtype=object)


def _parse(table: _Table, target: dict[str, str], required: tuple[str, ...]) -> _Parsed:
    sources = _canonical_sources(table.header, target)
    missing = [name for name in required if SOURCE_COLUMNS[name] not in sources]
    if missing:
        shown = ", ".join(table.header[:12]) + (", ..." if len(table.header) > 12 else "")
        raise RejectedFile(f"missing required column(s) {', '.join(missing)} (header: {shown})")
    cols: dict[str, object] = {}
    raw: dict[str, np.ndarray] = {}
    extra_parts = []
    numeric = [(s, target[c]) for c, s in sources.items() if target[c] in ("int", "double")]
    numbers = _typed_numbers(table, [s for s, _ in numeric], [kind for _, kind in numeric])
    for source in table.header:
        values = table.columns[source]
        canonical = SOURCE_COLUMNS.get(source)
        if sources.get(canonical) != source:
            extra_parts.append((source, values, values != ""))
            continue
        typed = numbers[source] if source in numbers else _type_column(canonical, target[canonical], values)
        cols[canonical], raw[canonical] = typed.values, values
        extra_parts.append((source, values, typed.bad))
    cols["extra"] = _json_objects(extra_parts, len(table.lines))
    cols["source_row"] = pd.arrays.IntegerArray(table.lines.astype(np.int64), np.zeros(len(table.lines), bool))
    return _Parsed(cols, raw, table.lines)


def _canonical_sources(header: list[str], target: dict[str, str]) -> dict[str, str]:
    """canonical column -> the source header that fills it; two headers for one column is an error."""
    sources: dict[str, str] = {}
    for source in header:
        canonical = SOURCE_COLUMNS.get(source)
        if canonical not in target:
            continue
        if canonical in sources:
            raise RejectedFile(f"malformed header: columns {sources[canonical]!r} and {source!r} both give {canonical}")
        sources[canonical] = source
    return sources


def _frame(cols: dict[str, object], target: dict[str, str], n: int) -> pd.DataFrame:
    """The target columns in order. The odds (one contiguous run of doubles in both schemas, mostly absent
    from any one file) go in as a single float block: ~100 separate columns would dominate parse time."""
    names = list(target)
    doubles = [name for name in names if target[name] == "double"]
    first = names.index(doubles[0])
    assert names[first : first + len(doubles)] == doubles, "odds columns must be contiguous"
    block = np.full((n, len(doubles)), np.nan)
    for j, name in enumerate(doubles):
        if name in cols:
            block[:, j] = cols[name]

    def part(part_names: list[str]) -> pd.DataFrame:
        return pd.DataFrame({k: cols[k] if k in cols else _empty(target[k], n) for k in part_names}, copy=False)

    parts = [part(names[:first]), pd.DataFrame(block, columns=doubles, copy=False), part(names[first + len(doubles) :])]
    return pd.concat(parts, axis=1, copy=False)  # the arrays are ours and fresh: no need to copy them again


# --- row checks -----------------------------------------------------------------------------------------


def _where(what: str, mask: np.ndarray, lines: np.ndarray, *shown: np.ndarray) -> list[str]:
    """['<what> on line 5 ('x'), line 9 ('y') and 3 more'] for the rows in mask, or []."""
    idx = np.flatnonzero(mask)
    if not len(idx):
        return []
    quoted = []
    for i in idx[:_LISTED]:
        values = ", ".join(repr(s[i]) if isinstance(s[i], str) else str(s[i]) for s in shown)
        quoted.append(f"line {lines[i]}" + (f" ({values})" if shown else ""))
    more = f" and {len(idx) - _LISTED} more" if len(idx) > _LISTED else ""
    return [f"{what} on {', '.join(quoted)}{more}"]


def _check_rows(p: _Parsed) -> list[str]:
    """Teams and dates: what every match and fixture row needs."""
    problems = []
    for side in ("home_team", "away_team"):
        problems += _where(f"blank {side.replace('_', ' ')}", p.text(side) == "", p.lines)
    home, away = p.text("home_team"), p.text("away_team")
    problems += _where("same team at home and away", (home == away) & (home != ""), p.lines, home)
    problems += _where("unparseable match date", np.isnat(p.cols["match_date"]), p.lines, p.text("match_date"))
    return problems


def _check_duplicates(p: _Parsed, keys: list[str]) -> list[str]:
    """Same match twice: keyed on the parsed date, so '09/08/2019' and '9/8/19' are the same day."""
    rows = list(zip(*(p.cols["match_date"] if k == "match_date" else p.text(k) for k in keys)))
    counts = Counter(rows)
    dup = np.array([counts[r] > 1 for r in rows], dtype=bool) & ~np.isnat(p.cols["match_date"])
    for k in keys:
        dup &= p.text(k) != ""
    what = "duplicate match (same " + ", ".join(k.replace("_", " ") for k in keys) + ")"
    return _where(what, dup, p.lines, *(p.text(k) for k in keys if k != "division"))


def _check_division(p: _Parsed, division: str) -> list[str]:
    if "division" not in p.raw:
        return []
    div = p.raw["division"]
    return _where(f"division is not {division!r}", div != division, p.lines, div)


def season_window(season: str) -> tuple[dt.date, dt.date]:
    """First and last date a match of this season may have (1 July .. 30 June + margin for play-offs)."""
    start = season_start_year(season)
    return dt.date(start, 7, 1), SEASON_END_OVERRIDES.get(season, dt.date(start + 1, 6, 30) + SEASON_END_MARGIN)


def _check_season_window(p: _Parsed, season: str) -> list[str]:
    first, last = season_window(season)
    dates = p.cols["match_date"]
    outside = (dates < np.datetime64(first, "ns")) | (dates > np.datetime64(last, "ns"))
    return _where(f"date outside season {season} ({first} to {last})", outside, p.lines, p.text("match_date"))


def _check_goals(p: _Parsed) -> list[str]:
    problems = []
    for name in _GOALS:
        if name not in p.raw:
            continue
        cells, goals = p.raw[name], p.numbers(name)
        may_be_blank = name.startswith("ht_")  # half-time goals are unknown for some old matches
        bad = np.isnan(goals) & ((cells != "") | (not may_be_blank))
        problems += _where(f"{name} is not a non-negative whole number", bad, p.lines, cells)
        problems += _where(f"{name} above {MAX_GOALS} (impossible)", goals > MAX_GOALS, p.lines, cells)
    for half, full in (("ht_home_goals", "home_goals"), ("ht_away_goals", "away_goals")):
        over = p.numbers(half) > p.numbers(full)
        problems += _where(f"{half} above {full}", over, p.lines, p.text(half), p.text(full))
    return problems


def _check_results(p: _Parsed, division: str, season: str) -> list[str]:
    problems = []
    for letter, home, away in (("result", "home_goals", "away_goals"), ("ht_result", "ht_home_goals", "ht_away_goals")):
        if letter not in p.raw:
            continue
        cells = p.raw[letter]
        allowed = ["H", "D", "A"] if letter == "result" else ["H", "D", "A", ""]  # half-time may be unknown
        problems += _where(f"{letter} is not H, D or A", ~np.isin(cells, allowed), p.lines, cells)
        diff = p.numbers(home) - p.numbers(away)
        expected = np.select([diff > 0, diff < 0, diff == 0], ["H", "A", "D"], "")
        wrong = np.isin(cells, ["H", "D", "A"]) & (expected != "") & (cells != expected)
        if wrong.any():
            wrong &= ~_known_quirks(p, division, season)
        problems += _where(f"{letter} disagrees with the goals", wrong, p.lines, cells, p.text(home), p.text(away))
    return problems


def _known_quirks(p: _Parsed, division: str, season: str) -> np.ndarray:
    dates = np.datetime_as_string(p.cols["match_date"], unit="D")
    keys = zip(dates, p.text("home_team"), p.text("away_team"))
    return np.array([(division, season, *k) in KNOWN_RESULT_QUIRKS for k in keys], dtype=bool)


def _check_fixture_divisions(p: _Parsed) -> list[str]:
    div = p.text("division")
    bad = np.array([not DIVISION_CODE_RE.match(d) for d in div], dtype=bool)
    return _where("not a division code", bad, p.lines, div)


def _raise_if(problems: list[str]) -> None:
    if problems:
        raise RejectedFile(f"{len(problems)} problem(s): " + "; ".join(problems))


# --- public API -----------------------------------------------------------------------------------------


def parse_season_file(data: bytes, *, division: str, season: str) -> pd.DataFrame:
    """A season file (``mmz4281/<YYZZ>/<DIV>.csv``) as MATCH_COLUMNS, or RejectedFile; never partial."""
    if not DIVISION_CODE_RE.match(division):
        raise ValueError(f"not a division code: {division!r}")
    season_code(season)  # ValueError on a malformed label: a caller bug, not a bad file
    parsed = _parse(_read_table(decode_csv(data)), MATCH_COLUMNS, REQUIRED_MATCH_SOURCES)
    n = len(parsed.lines)
    if not n:
        raise RejectedFile("no match rows: the file has a header only")
    problems = _check_division(parsed, division) + _check_rows(parsed) + _check_season_window(parsed, season)
    problems += _check_goals(parsed) + _check_results(parsed, division, season)
    problems += _check_duplicates(parsed, ["match_date", "home_team", "away_team"])
    _raise_if(problems)
    parsed.cols["division"] = np.full(n, division, dtype=object)
    parsed.cols["season"] = np.full(n, season, dtype=object)
    return _frame(parsed.cols, MATCH_COLUMNS, n)


def parse_fixtures(data: bytes) -> pd.DataFrame:
    """The site's ``fixtures.csv`` (all divisions, no results) as FIXTURE_COLUMNS, or RejectedFile.

    A header-only file is a valid, empty fixture list (the summer break). The season comes from each date.
    """
    parsed = _parse(_read_table(decode_csv(data)), FIXTURE_COLUMNS, REQUIRED_FIXTURE_SOURCES)
    problems = _check_fixture_divisions(parsed) + _check_rows(parsed)
    problems += _check_duplicates(parsed, ["division", "match_date", "home_team", "away_team"])
    _raise_if(problems)
    dates = pd.DatetimeIndex(parsed.cols["match_date"])
    seasons = {d: season_of(d.date()) for d in dates.unique()}
    parsed.cols["season"] = np.array([seasons[d] for d in dates], dtype=object)
    return _frame(parsed.cols, FIXTURE_COLUMNS, len(parsed.lines))
