"""The ledger as a table: one row per prediction (a batch record exploded into its rows, its match keys and ids
spelled out when it was written by pair), for the loading asset."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pandas as pd

from time2bet.ledger.chain import iter_lines, relative_segment, segments
from time2bet.ledger.record import KEY_SEPARATOR, RECORD_FIELDS, ROW_CLOCKS, ROW_FIELDS, keys_and_ids

# chain position, the record's fields, the row's index and fields, then what the match key says
COLUMNS = ["writer", "seq", "segment", "day", *RECORD_FIELDS, "row", *ROW_FIELDS,
           "division", "home_team", "away_team"]


def read_records(ledger_dir: Path | str, day: dt.date | str | None = None) -> pd.DataFrame:
    """Every complete record under ``ledger_dir`` (only the segments of ``day``, a UTC day, when given), one row per
    prediction: :data:`COLUMNS`. ``created_at``/``as_of`` are UTC timestamps, ``kickoff_date``/``features_as_of``
    dates. A torn tail is skipped (it is not a record); any other unreadable line raises ValueError naming it.
    This does not verify the chains: :func:`time2bet.ledger.verify.verify` does."""
    root = Path(ledger_dir)
    wanted = day.isoformat() if isinstance(day, dt.date) else day
    columns: dict[str, list] = {name: [] for name in COLUMNS[:-3]}
    for writer, paths in segments(root, wanted).items():
        for path in paths:
            segment = relative_segment(root, path)
            for number, raw, complete in iter_lines(path):
                if not complete:
                    continue
                try:
                    obj = orjson.loads(raw)
                    record, rows, seq = obj["record"], obj["record"]["rows"], int(obj["seq"])
                    n = len(rows["p_home"])
                    if "pair" in rows:   # written by pair (record.PAIR_FIELDS): the keys and ids follow
                        rows["match_key"], rows["match_id"] = keys_and_ids(rows)
                    values = {name: rows[name] for name in ROW_FIELDS}
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
                    raise ValueError(f"{path}:{number}: not a ledger line ({type(exc).__name__}: {exc})") from exc
                if any(len(v) != n for v in values.values()):
                    raise ValueError(f"{path}:{number}: rows of unequal length")
                columns["writer"] += [writer] * n
                columns["seq"] += [seq] * n
                columns["segment"] += [segment] * n
                columns["day"] += [path.parent.name] * n
                for name in RECORD_FIELDS:
                    if name in ROW_CLOCKS and name in rows:   # a record gathering requests: each row's own clock
                        if len(rows[name]) != n:
                            raise ValueError(f"{path}:{number}: rows of unequal length")
                        columns[name] += rows[name]
                    else:
                        columns[name] += [record.get(name)] * n
                columns["row"] += range(n)
                for name in ROW_FIELDS:
                    columns[name] += values[name]
    frame = pd.DataFrame(columns, columns=COLUMNS[:-3])
    for name in ("created_at", "as_of"):
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    for name in ("kickoff_date", "features_as_of", "day"):
        frame[name] = pd.to_datetime(frame[name], format="ISO8601").dt.date
    for name in ("seq", "row"):
        frame[name] = frame[name].astype("int64")
    for name in ("p_home", "p_draw", "p_away"):
        frame[name] = frame[name].astype("float64")
    parts = [str(key).split(KEY_SEPARATOR, 3) if key is not None else [] for key in frame["match_key"]]
    for position, name in ((0, "division"), (2, "home_team"), (3, "away_team")):
        frame[name] = pd.Series([p[position] if len(p) == 4 else None for p in parts], index=frame.index,
                                dtype=object)
    return frame[COLUMNS]
