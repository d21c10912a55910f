"""What the ledger records: :class:`LedgerRecord`, predictions of one model that share their context.

A record carries the context once (ids, clocks, where it came from, the model and the data it used) and
its predictions as columns (``match_key``, ``match_id``, ``kickoff_date``, ``p_home``, ``p_draw``, ``p_away``), one
entry per predicted match: a batch request (or the batch asset's run over the fixtures) is one record carrying all
its rows; the service's single ``POST /predict`` answers of one flush are one record per model, each row with its
own clocks (``ROW_CLOCKS``). A batch whose matches were answered by two models (A/B
by match id) is one record per model, sharing ``request_id``. A prediction is identified by
``(prediction_id, row)``; :func:`time2bet.ledger.reader.read_records` explodes records into one row per prediction.

"Before kickoff" is judged on ``as_of`` (the platform's clock: the wall clock in production, the replay date under
``time2bet simulate``), never on ``created_at`` (the wall clock, UTC, always).

Constructing a record is the only work on the request path (a few microseconds); converting it to JSON happens in
the writer's background thread (:func:`record_to_dict`). A batch's keys, match ids and kickoff dates can be given as
:class:`PairText` and :class:`KickoffDays`: its distinct pairs and two integer arrays; such a record is written by
pair (:data:`PAIR_FIELDS`) and its keys and ids are spelled out by the reader.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

try:   # CPython's own md5 (HACL*): half the cost of OpenSSL's per call on these short texts, the same digests
    from _md5 import md5
except ImportError:   # an interpreter built without it
    from hashlib import md5

ROW_FIELDS = ("match_key", "match_id", "kickoff_date", "p_home", "p_draw", "p_away")
# optional per-row clocks: a record that gathers several requests (the service's single-row answers of one flush)
# keeps each prediction's own created_at and as_of; the record-level ones are then its newest row's
ROW_CLOCKS = ("created_at", "as_of")
RECORD_FIELDS = ("prediction_id", "created_at", "as_of", "source", "request_id", "model_name", "model_version",
                 "model_alias", "variant", "model_family", "data_version", "features_as_of")
KEY_SEPARATOR = "|"
# how rows of PairText keys and ids are written (record_to_dict): instead of match_key and match_id, the record's
# distinct (division, home, away) as asked, their (division, home id, away id), and each row's index into them;
# keys and ids follow (keys_and_ids, what read_records gives). Per row that is an integer instead of a key and an
# md5: a 10,000-row batch record costs its writer ~3.5 ms of the interpreter lock instead of ~20 (the md5s were a
# third of it, building the keys and ids another third).
PAIR_FIELDS = ("pairs", "pair_ids", "pair")


def match_key(division: str, kickoff_date: dt.date | str, home_team: str, away_team: str) -> str:
    """``division|YYYY-MM-DD|home|away``: the readable key of a match (what ``GET /predict/{match_id}`` also
    accepts); :func:`~time2bet.ledger.reader.read_records` splits it back into division and teams."""
    day = kickoff_date if isinstance(kickoff_date, str) else kickoff_date.isoformat()
    return f"{division}{KEY_SEPARATOR}{day}{KEY_SEPARATOR}{home_team}{KEY_SEPARATOR}{away_team}"


def match_id(division: str, kickoff_date: dt.date | str, home_team_id: str, away_team_id: str) -> str:
    """The warehouse's match id (dbt macro ``match_id``): md5 of ``division|YYYY-MM-DD|home id|away id``; a fixture
    keeps it once played."""
    day = kickoff_date if isinstance(kickoff_date, str) else kickoff_date.isoformat()
    return md5(f"{division}{KEY_SEPARATOR}{day}{KEY_SEPARATOR}{home_team_id}{KEY_SEPARATOR}{away_team_id}".encode()
               ).hexdigest()


class PairText:
    """Per-row ``a|YYYY-MM-DD|b|c`` of the rows of a batch, from its distinct triples ``pairs[code] = (a, b, c)``
    (tuples of three strings) and each row's ``codes`` and date ``ordinals`` (``hashed``: the md5 hex digest of that
    text, as :func:`match_id`). With (division, home, away) as asked it is the rows' :func:`match_key`; with
    (division, home id, away id), their :func:`match_id`.

    Nothing is spelled out until :meth:`tolist`: a record whose keys and ids are both PairText of the same rows is
    written by pair (:data:`PAIR_FIELDS`) and never spells them out at all; the reader does."""

    __slots__ = ("codes", "hashed", "ordinals", "pairs")

    def __init__(self, pairs: Sequence[tuple[str, str, str]], codes: Any, ordinals: Any, *, hashed: bool = False):
        if len(codes) != len(ordinals):
            raise ValueError(f"codes ({len(codes)}) and ordinals ({len(ordinals)}) differ in length")
        self.pairs, self.codes, self.ordinals, self.hashed = pairs, codes, ordinals, hashed

    def __len__(self) -> int:
        return len(self.codes)

    def tolist(self) -> list[str]:
        return pair_text(self.pairs, self.codes, _days_of(self.ordinals), hashed=self.hashed)


def pair_text(pairs: Sequence[Sequence[str]], codes: Any, days: Sequence[str], *, hashed: bool = False) -> list[str]:
    """``a|day|b|c`` for each row (``pairs[code] = (a, b, c)``), or its md5 hex digest (``hashed``)."""
    sep = KEY_SEPARATOR
    around = [(f"{a}{sep}", f"{sep}{b}{sep}{c}") for a, b, c in pairs]   # once per pair
    text = (around[c][0] + day + around[c][1] for c, day in zip(_ints(codes), days, strict=True))
    if hashed:
        return [md5(t.encode()).hexdigest() for t in text]
    return list(text)


def paired(record: LedgerRecord) -> bool:
    """Are the record's keys and match ids :class:`PairText` of the same rows (written as :data:`PAIR_FIELDS`)?"""
    keys, ids = record.match_key, record.match_id
    return (type(keys) is PairText and type(ids) is PairText and not keys.hashed and ids.hashed
            and keys.codes is ids.codes and keys.ordinals is ids.ordinals and len(keys.pairs) == len(ids.pairs))


def keys_and_ids(rows: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(match keys, match ids) of rows written by pair (:data:`PAIR_FIELDS`); IndexError, TypeError or ValueError
    when they do not fit together."""
    pairs, ids, codes, days = rows["pairs"], rows["pair_ids"], rows["pair"], rows["kickoff_date"]
    if len(pairs) != len(ids) or any(type(c) is not int or not 0 <= c < len(pairs) for c in codes):
        raise ValueError("pair codes outside the record's pairs")
    return pair_text(pairs, codes, days), pair_text(ids, codes, days, hashed=True)


class KickoffDays:
    """Per-row YYYY-MM-DD of date ``ordinals`` (``datetime.date.toordinal``), formatted when serialized."""

    __slots__ = ("ordinals",)

    def __init__(self, ordinals: Any):
        self.ordinals = ordinals

    def __len__(self) -> int:
        return len(self.ordinals)

    def tolist(self) -> list[str]:
        return _days_of(self.ordinals)


def _ints(values: Any) -> list[int]:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _days_of(ordinals: Any) -> list[str]:
    """Each ordinal as YYYY-MM-DD, formatted once per distinct date (a batch has few)."""
    ordinals = _ints(ordinals)
    text = {o: dt.date.fromordinal(o).isoformat() for o in set(ordinals)}
    return [text[o] for o in ordinals]


def new_prediction_id() -> str:
    """A fresh prediction id: 128 random bits as 32 hex digits (like a uuid4's hex, a quarter of its cost: the
    random module is seeded from the OS and reseeded in a forked child, so workers do not repeat each other)."""
    return f"{random.getrandbits(128):032x}"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """One prediction request answered by one model; the rows are parallel sequences of equal length >= 1.

    Any sequence works for the rows (lists, tuples, numpy arrays, pandas Series): they are converted when the
    writer's thread serializes the record, so the caller must not mutate them after :meth:`LedgerWriter.append`.
    """

    prediction_id: str
    created_at: dt.datetime              # wall clock, UTC (a naive value is taken as UTC)
    as_of: dt.datetime                   # the platform's clock: == created_at in production, the replay date in simulate
    source: str                          # where the request came from, e.g. "service:/predict", "dagster:batch_predictions"
    model_name: str
    model_version: str
    model_alias: str                     # the registry alias the model was loaded by (champion, challenger)
    variant: str                         # the A/B arm that answered
    data_version: str | None             # the training data version of the model
    features_as_of: dt.date | None       # the latest played match the features knew
    match_key: Sequence[str]             # per row: division|kickoff|home|away (see match_key())
    match_id: Sequence[str | None]       # per row: the warehouse's match id (md5 of division|date|home|away ids)
    kickoff_date: Sequence[dt.date | str]
    p_home: Sequence[float]
    p_draw: Sequence[float]
    p_away: Sequence[float]
    model_family: str | None = None      # its registry version's family tag (serving_contract.FAMILIES)
    request_id: str | None = None        # ties together the records of one request answered by several models
    # per row, when the rows were answered at different times (ROW_CLOCKS); None: every row at created_at/as_of
    row_created_at: Sequence[dt.datetime] | None = None
    row_as_of: Sequence[dt.datetime] | None = None
    n: int = field(init=False, repr=False, compare=False)   # number of rows (predictions)

    def __post_init__(self) -> None:
        n = len(self.match_key)
        if n < 1 or not (len(self.match_id) == len(self.kickoff_date) == len(self.p_home) == len(self.p_draw)
                         == len(self.p_away) == n):
            raise ValueError("a ledger record needs at least one row and rows of equal length "
                             f"(match_key {n}, match_id {len(self.match_id)}, kickoff_date {len(self.kickoff_date)}, "
                             f"p_home {len(self.p_home)}, p_draw {len(self.p_draw)}, p_away {len(self.p_away)})")
        if (self.row_created_at is None) != (self.row_as_of is None) or (
                self.row_created_at is not None and not len(self.row_created_at) == len(self.row_as_of) == n):
            raise ValueError(f"per-row clocks need both created_at and as_of, one per row ({n})")
        object.__setattr__(self, "n", n)

    @classmethod
    def single(cls, *, prediction_id: str, created_at: dt.datetime, as_of: dt.datetime, source: str, model_name: str,
               model_version: str, model_alias: str, variant: str, data_version: str | None,
               features_as_of: dt.date | None, match_key: str, match_id: str | None, kickoff_date: dt.date | str,
               p_home: float, p_draw: float, p_away: float, model_family: str | None = None,
               request_id: str | None = None) -> LedgerRecord:
        """A record of one prediction (each row field a single value)."""
        return cls(prediction_id, created_at, as_of, source, model_name, model_version, model_alias, variant,
                   data_version, features_as_of, (match_key,), (match_id,), (kickoff_date,), (p_home,), (p_draw,),
                   (p_away,), model_family, request_id)


def _timestamp(value: Any) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not dt.UTC:
            value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        return value.isoformat(timespec="microseconds")
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a datetime, got {value!r}")


def _day(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "isoformat"):          # other date-like scalars
        return str(value.isoformat())[:10]
    if type(value).__name__ == "datetime64":
        return str(value)[:10]
    raise TypeError(f"expected a date, got {value!r}")


def _plain(values: Sequence[Any]) -> Sequence[Any]:
    return values.tolist() if hasattr(values, "tolist") else values   # numpy arrays, pandas Series


def _floats(values: Sequence[Any]) -> list[float]:
    if getattr(getattr(values, "dtype", None), "kind", None) == "f":
        return values.tolist()                 # a float array: Python floats already, no per-value conversion
    return [float(v) for v in _plain(values)]


def _strings(values: Sequence[Any], nullable: bool = False) -> list[str | None]:
    values = _plain(values)
    if type(values) is list and all(type(v) is str for v in values):
        return values                          # the usual case (the service's keys and ids): checked, not copied
    return [None if nullable and v is None else str(v) for v in values]


def record_to_dict(record: LedgerRecord) -> dict[str, Any]:
    """The JSON form of a record (strings, floats, lists): what is hashed and written. Off the request path."""
    created = _timestamp(record.created_at)
    kickoffs = _plain(record.kickoff_date)
    if paired(record):
        keys = record.match_key
        identity = {"pairs": keys.pairs, "pair_ids": record.match_id.pairs, "pair": _ints(keys.codes)}
    else:
        identity = {"match_key": _strings(record.match_key), "match_id": _strings(record.match_id, nullable=True)}
    rows = {
        **identity,
        "kickoff_date": kickoffs if type(record.kickoff_date) is KickoffDays else [
            v if isinstance(v, str) else _day(v) for v in kickoffs],
        "p_home": _floats(record.p_home),
        "p_draw": _floats(record.p_draw),
        "p_away": _floats(record.p_away),
    }
    if record.row_created_at is not None:
        rows["created_at"] = [_timestamp(v) for v in record.row_created_at]
        rows["as_of"] = rows["created_at"] if record.row_as_of is record.row_created_at else [
            _timestamp(v) for v in record.row_as_of]
    return {
        "prediction_id": record.prediction_id,
        "created_at": created,
        "as_of": created if record.as_of is record.created_at else _timestamp(record.as_of),
        "source": record.source,
        "request_id": record.request_id,
        "model_name": record.model_name,
        "model_version": str(record.model_version),
        "model_alias": record.model_alias,
        "variant": record.variant,
        "model_family": record.model_family,
        "data_version": record.data_version,
        "features_as_of": _day(record.features_as_of),
        "rows": rows,
    }


def record_day(record: LedgerRecord) -> str:
    """The UTC day of the record's wall clock (``created_at``): which day's segment it belongs to."""
    created = record.created_at
    if isinstance(created, dt.datetime) and created.tzinfo is not None:
        created = created.astimezone(dt.UTC)
    return created.date().isoformat() if isinstance(created, dt.datetime) else str(created)[:10]
