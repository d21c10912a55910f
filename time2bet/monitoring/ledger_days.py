"""One UTC day of the prediction ledger, verified before it is loaded.

The ledger is verified as a whole (:func:`time2bet.ledger.verify`: every chain re-hashed and compared with every
anchor recorded so far), and a day is judged on the chains it concerns: the writers with a segment that day, and
the writers anchored in a segment of that day (a chain whose segment of the day was removed has no segment left to
find). A problem in one of those stops the day's load; problems in other chains are reported beside it. A chain
that spans several days is verified from its first record, so tampering with an earlier day also stops the later
days of the same writer, whose records hang on the broken chain.

The day's **heads** (the last complete record of each of its segments) are what the loading asset records as
anchors outside the ledger files, once the day verified.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from time2bet.ledger import Head, Problem, Report, segments, verify
from time2bet.ledger.chain import last_complete_line, relative_segment


@dataclass(frozen=True)
class DayVerification:
    day: str
    report: Report                      # the whole ledger's
    writers: tuple[str, ...]            # writers with a segment this day
    problems: tuple[Problem, ...]       # in the chains this day concerns: the day must not be loaded
    problems_elsewhere: tuple[Problem, ...]
    torn_tails: tuple[Problem, ...]     # of this day's segments (a crash mid-write: not a problem)
    heads: dict[str, Head]              # the last complete record of each of this day's segments

    @property
    def ok(self) -> bool:
        return not self.problems

    def listing(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def _anchor_lists(anchors: Mapping[str, Head | list[Head]]) -> dict[str, list[Head]]:
    return {w: (h if isinstance(h, list) else [h]) for w, h in anchors.items()}


def day_heads(ledger_dir: Path | str, day: str) -> dict[str, Head]:
    """writer -> the last complete record of its segment of ``day`` (read from the end of each file)."""
    root = Path(ledger_dir)
    found: dict[str, Head] = {}
    for writer, paths in segments(root, day).items():
        for path in paths:
            line, _start, _end = last_complete_line(path)
            if line is None:
                continue
            try:
                obj = orjson.loads(line)
                found[writer] = Head(int(obj["seq"]), str(obj["hash"]), relative_segment(root, path))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue   # verify() reports the line
    return found


def verify_day(ledger_dir: Path | str, day: str, anchors: Mapping[str, Head | list[Head]]) -> DayVerification:
    """Verify the ledger against ``anchors`` and judge ``day`` (see the module's docstring). The day's heads are
    read first, so every head returned was among the records verified (writers may append meanwhile)."""
    heads = day_heads(ledger_dir, day)
    report = verify(ledger_dir, anchors)
    writers = set(segments(ledger_dir, day))
    anchored_here = {w for w, anchored in _anchor_lists(anchors).items()
                     if any(str(h.segment).startswith(f"{day}/") for h in anchored)}
    concerned = writers | anchored_here
    problems = tuple(p for p in report.problems if p.writer in concerned)
    elsewhere = tuple(p for p in report.problems if p.writer not in concerned)
    torn = tuple(p for p in report.torn_tails if str(p.segment or "").startswith(f"{day}/"))
    return DayVerification(day, report, tuple(sorted(writers)), problems, elsewhere, torn,
                           heads if not problems else {})


def newest_record_time(ledger_dir: Path | str) -> dt.datetime | None:
    """``created_at`` of the newest complete record of any writer (the ledger's freshness), or None."""
    root = Path(ledger_dir)
    newest = None
    for paths in segments(root).values():
        for path in reversed(paths):
            line, _start, _end = last_complete_line(path)
            if line is None:
                continue
            try:
                created = dt.datetime.fromisoformat(orjson.loads(line)["record"]["created_at"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                break
            created = created if created.tzinfo else created.replace(tzinfo=dt.UTC)
            newest = created if newest is None or created > newest else newest
            break
    return newest
