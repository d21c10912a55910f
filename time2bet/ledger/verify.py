"""Anchors and verification of the ledger's hash chains.

An anchor is a writer's head (seq, hash, segment) recorded *outside* the ledger files: in an anchors file
(:func:`save_anchors`, ``time2bet ledger anchor --out FILE``) or in Dagster asset metadata (a JSON mapping,
:func:`anchors_from_mapping`). :func:`verify` re-hashes every chain and compares it with the anchors:

- ``edited``: a line's hash is not the hash of its content (a field was changed);
- ``broken_chain``: a seq gap, a seq out of order or a ``prev`` that is not the previous record's hash (a record
  removed or reordered, or an edited record whose hash was recomputed); also a chain whose first record present is
  not seq 0 (its oldest records or segment removed);
- ``truncated``: an anchored seq beyond the chain's last record (records or a segment removed after the anchor
  was taken), or a whole anchored chain missing;
- ``anchor_mismatch``: the record at an anchored seq has another hash (the chain was rewritten), or sits in another
  segment than anchored;
- ``malformed``: a complete line that is not a ledger line, or a line of another writer.

A partial line at the end of a writer's newest segment is a **torn tail** (a crash mid-write): listed, not a
problem. Records appended after the anchor are fine.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from time2bet.ledger.chain import (
    GENESIS,
    iter_lines,
    last_complete_line,
    rehash,
    relative_segment,
    segments,
)


class Head(NamedTuple):
    """A writer's newest record: its seq, its hash, its segment (relative to the ledger directory)."""

    seq: int
    hash: str
    segment: str


@dataclass(frozen=True)
class Problem:
    kind: str            # edited, broken_chain, truncated, anchor_mismatch, malformed, torn_tail
    writer: str
    segment: str | None
    line: int | None
    detail: str

    def __str__(self) -> str:
        where = f"{self.segment}:{self.line}" if self.segment and self.line else (self.segment or "-")
        return f"{self.kind:15} {self.writer}  {where}  {self.detail}"


@dataclass
class Report:
    chains: int = 0
    records: int = 0
    predictions: int = 0
    anchored: int = 0                       # chains checked against an anchor
    problems: list[Problem] = field(default_factory=list)
    torn_tails: list[Problem] = field(default_factory=list)
    heads: dict[str, Head] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        counts = f"{self.chains} chains, {self.records} records, {self.predictions} predictions"
        text = f"{counts}, all intact" if self.ok else f"{counts}, {len(self.problems)} problem(s)"
        if self.torn_tails:
            text += f"; {len(self.torn_tails)} torn tail(s) (a crash mid-write, not tampering)"
        text += f"; {self.anchored} of {self.chains} chains anchored" if self.chains else ""
        return text

    def listing(self) -> str:
        return "\n".join(str(p) for p in [*self.problems, *self.torn_tails])


def heads(ledger_dir: Path | str) -> dict[str, Head]:
    """Every writer's head, read from the end of its newest segment (cheap: no re-hashing)."""
    root = Path(ledger_dir)
    found: dict[str, Head] = {}
    for writer, paths in segments(root).items():
        for path in reversed(paths):
            line, _start, _end = last_complete_line(path)
            if line is None:
                continue
            try:
                obj = orjson.loads(line)
                found[writer] = Head(int(obj["seq"]), str(obj["hash"]), relative_segment(root, path))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue   # verify() reports it; the head is the last readable record before it
            break
    return found


def _anchor_lists(anchors: Mapping[str, Any] | None) -> dict[str, list[Head]]:
    out: dict[str, list[Head]] = {}
    for writer, value in (anchors or {}).items():
        if isinstance(value, Head):
            out[writer] = [value]
        elif isinstance(value, list) and value and isinstance(value[0], Head):
            out[writer] = list(value)
        else:
            out[writer] = [_head(value)]
    return out


def verify(ledger_dir: Path | str, anchors: Mapping[str, Head | list[Head]] | None = None) -> Report:
    """Re-hash every chain under ``ledger_dir`` and compare it with ``anchors`` (writer -> Head, or a list of
    Heads taken at different times); the :class:`Report`."""
    root = Path(ledger_dir)
    anchored = _anchor_lists(anchors)
    report = Report()
    chains = segments(root)
    for writer, paths in chains.items():
        report.chains += 1
        _verify_chain(root, writer, paths, anchored.get(writer, []), report)
    for writer, heads_of in anchored.items():
        if writer not in chains:
            newest = max(heads_of, key=lambda h: h.seq)
            report.problems.append(Problem("truncated", writer, newest.segment, None,
                                           f"anchored at seq {newest.seq} but no segment of this writer is left"))
    return report


def _verify_chain(root: Path, writer: str, paths: list[Path], anchors: list[Head], report: Report) -> None:
    expected_seq, expected_prev = 0, GENESIS
    at_anchor = {h.seq: h for h in anchors}
    seen_anchor: set[int] = set()
    last: Head | None = None
    for index, path in enumerate(paths):
        segment = relative_segment(root, path)
        for number, raw, complete in iter_lines(path):
            if not complete:
                newest = index == len(paths) - 1
                problem = Problem("torn_tail", writer, segment, number,
                                  f"{len(raw)} bytes of a record cut short by a crash (not counted)" if newest else
                                  "an incomplete line at the end of a segment that is not the writer's newest")
                (report.torn_tails if newest else report.problems).append(
                    problem if newest else Problem("malformed", writer, segment, number, problem.detail))
                continue
            try:
                obj = orjson.loads(raw)
                seq, prev, digest, record = int(obj["seq"]), str(obj["prev"]), str(obj["hash"]), obj["record"]
                predictions = len(record["rows"]["p_home"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                report.problems.append(Problem("malformed", writer, segment, number,
                                               f"not a ledger line ({type(exc).__name__})"))
                continue
            if obj.get("writer") != writer:
                report.problems.append(Problem("malformed", writer, segment, number,
                                               f"a line of writer {obj.get('writer')!r} in this writer's segment"))
            if rehash(obj) != digest:
                report.problems.append(Problem("edited", writer, segment, number,
                                               f"seq {seq}: its content does not match its hash"))
            if seq != expected_seq:
                what = ("the oldest records of the chain are missing" if expected_seq == 0 else
                        f"seq {expected_seq} missing (removed)" if seq == expected_seq + 1 else
                        f"seq {expected_seq}..{seq - 1} missing (removed)" if seq > expected_seq else
                        f"seq {seq} after seq {expected_seq - 1} (reordered or duplicated)")
                report.problems.append(Problem("broken_chain", writer, segment, number, f"expected seq "
                                               f"{expected_seq}, found {seq}: {what}"))
            elif prev != expected_prev:
                report.problems.append(Problem("broken_chain", writer, segment, number,
                                               f"seq {seq}: prev is not the hash of seq {seq - 1} (that record was "
                                               "changed, or records were removed or reordered)"))
            if seq in at_anchor:
                seen_anchor.add(seq)
                anchor = at_anchor[seq]
                if anchor.hash != digest:
                    report.problems.append(Problem("anchor_mismatch", writer, segment, number,
                                                   f"seq {seq} has hash {digest[:12]}..., anchored {anchor.hash[:12]}..."
                                                   " (the chain was rewritten)"))
                elif anchor.segment and anchor.segment != segment:
                    report.problems.append(Problem("anchor_mismatch", writer, segment, number,
                                                   f"seq {seq} is in {segment}, anchored in {anchor.segment}"))
            expected_seq, expected_prev = seq + 1, digest
            report.records += 1
            report.predictions += predictions
            last = Head(seq, digest, segment)
    if last is not None:
        report.heads[writer] = last
    for anchor in anchors:
        if anchor.seq not in seen_anchor:
            present = f"the last record present is seq {last.seq}" if last else "no record is left"
            report.problems.append(Problem("truncated", writer, anchor.segment, None,
                                           f"anchored at seq {anchor.seq} ({anchor.segment}) but {present}: records "
                                           "or segments removed"))
    if anchors:
        report.anchored += 1


# --- anchors outside the ledger ---------------------------------------------------------------------------------

def _head(value: Any) -> Head:
    if isinstance(value, Head):
        return value
    if isinstance(value, Mapping):
        return Head(int(value["seq"]), str(value["hash"]), str(value.get("segment") or ""))
    seq, digest, *rest = value
    return Head(int(seq), str(digest), str(rest[0]) if rest else "")


def anchors_to_mapping(found: Mapping[str, Head]) -> dict[str, dict[str, Any]]:
    """writer -> {seq, hash, segment}: JSON for an anchors file or Dagster metadata."""
    return {w: {"seq": h.seq, "hash": h.hash, "segment": h.segment} for w, h in sorted(found.items())}


def anchors_from_mapping(mapping: Mapping[str, Any]) -> dict[str, Head]:
    """The inverse of :func:`anchors_to_mapping`; also accepts an anchors file's whole object (``{"heads": ...}``)
    and ``[seq, hash, segment]`` lists."""
    if "heads" in mapping and isinstance(mapping["heads"], Mapping):
        mapping = mapping["heads"]
    return {str(w): _head(v) for w, v in mapping.items()}


def save_anchors(path: Path | str, found: Mapping[str, Head]) -> None:
    """Write ``found`` to ``path`` atomically (a reader sees the old file or the new one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"anchored_at": dt.datetime.now(dt.UTC).isoformat(), "heads": anchors_to_mapping(found)}
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    with open(temporary, "w") as f:
        json.dump(document, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def load_anchors(path: Path | str) -> dict[str, Head]:
    return anchors_from_mapping(json.loads(Path(path).read_text()))


def merge_anchors(*sets: Mapping[str, Head | list[Head]]) -> dict[str, list[Head]]:
    """Several anchor sets (files, metadata of several runs) as writer -> every anchored head, for :func:`verify`."""
    merged: dict[str, list[Head]] = {}
    for anchors in sets:
        for writer, heads_of in _anchor_lists(anchors).items():
            merged.setdefault(writer, []).extend(h for h in heads_of if h not in merged.get(writer, []))
    return merged


def anchor(ledger_dir: Path | str, path: Path | str,
           previous: Iterable[Mapping[str, Head | list[Head]]] = ()) -> tuple[Report, dict[str, Head]]:
    """Verify the ledger against the anchors already in ``path`` (and ``previous``); when it is intact, write the
    current heads (every chain's newest verified record) to ``path``. Re-anchoring a tampered ledger would launder
    it, so nothing is written when the report has problems. (report, heads written: empty when not written)."""
    path = Path(path)
    known = [load_anchors(path)] if path.exists() else []
    report = verify(ledger_dir, merge_anchors(*known, *previous))
    if not report.ok:
        return report, {}
    save_anchors(path, report.heads)
    return report, dict(report.heads)
