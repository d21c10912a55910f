"""The ledger's files and hash chains.

Layout: ``<ledger_dir>/<yyyy-mm-dd>/<writer-id>.jsonl``, one append-only JSON-lines segment per writer per UTC day.
Each writer (a service worker, a batch-asset run) keeps one chain across its segments. A line is one JSON object::

    {"writer": "<writer-id>", "seq": 0, "prev": "<64 hex>", "record": {...}, "hash": "<64 hex>"}

``seq`` counts the writer's records from 0 without gaps; ``prev`` is the previous record's ``hash`` (:data:`GENESIS`
for seq 0); ``hash = sha256(prev + canonical)`` where ``canonical`` is the line's object without ``hash`` serialized
by orjson with sorted keys (floats in their shortest round-trip form, so re-serializing a parsed line gives the same
bytes). Editing any field changes the hash; removing or reordering lines breaks ``seq`` and ``prev``; removing the
newest lines (or a whole chain) is caught by comparing with anchored heads (:mod:`time2bet.ledger.verify`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

GENESIS = "0" * 64
SUFFIX = ".jsonl"
DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_writer_id(writer_id: str) -> str:
    """A writer id usable as a file name: letters, digits, ``.``, ``_`` and ``-`` (anything else becomes ``_``)."""
    cleaned = _UNSAFE.sub("_", writer_id.strip()).strip(".")
    if not cleaned:
        raise ValueError(f"unusable writer id {writer_id!r}")
    return cleaned


def canonical(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev: str, body: bytes) -> str:
    return hashlib.sha256(prev.encode("ascii") + body).hexdigest()


def encode_line(writer: str, seq: int, prev: str, record: dict[str, Any]) -> tuple[bytes, str]:
    """(the line with its newline, its hash)."""
    body = canonical({"writer": writer, "seq": seq, "prev": prev, "record": record})
    digest = chain_hash(prev, body)
    return body[:-1] + b',"hash":"' + digest.encode("ascii") + b'"}\n', digest


def rehash(obj: dict[str, Any]) -> str:
    """The hash a parsed line should carry (computed from its other fields)."""
    body = canonical({k: v for k, v in obj.items() if k != "hash"})
    return chain_hash(str(obj.get("prev")), body)


def segment_path(ledger_dir: Path, day: str, writer: str) -> Path:
    return Path(ledger_dir) / day / f"{writer}{SUFFIX}"


def relative_segment(ledger_dir: Path, path: Path) -> str:
    return Path(path).relative_to(ledger_dir).as_posix()


def segments(ledger_dir: Path | str, day: str | None = None) -> dict[str, list[Path]]:
    """writer -> its segment files, oldest day first (only ``<yyyy-mm-dd>/<writer>.jsonl``; other files are not
    the ledger's)."""
    root = Path(ledger_dir)
    found: dict[str, list[Path]] = {}
    if not root.is_dir():
        return found
    days = sorted(p for p in root.iterdir() if p.is_dir() and DAY_PATTERN.match(p.name)
                  and (day is None or p.name == day))
    for folder in days:
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            if path.is_file():
                found.setdefault(path.name[: -len(SUFFIX)], []).append(path)
    return found


def iter_lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(line number from 1, bytes without the newline, complete?) of a segment; only the last can be incomplete
    (a write cut short by a crash: a "torn tail")."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            complete = line.endswith(b"\n")
            yield number, line[:-1] if complete else line, complete


def last_complete_line(path: Path, chunk: int = 1 << 16) -> tuple[bytes | None, int, int]:
    """(the last newline-terminated line without its newline, or None; the offset where it starts; the offset just
    after its newline), read from the end of the file so that it is cheap on a large segment. Any bytes after that
    offset are a torn tail."""
    with open(path, "rb") as f:
        position = f.seek(0, 2)
        data = b""            # the file's bytes from `position` to its end
        end: int | None = None
        while True:
            if end is None:
                index = data.rfind(b"\n")
                if index >= 0:
                    end = position + index + 1
            if end is not None:
                index = data.rfind(b"\n", 0, end - 1 - position)
                if index >= 0:
                    return data[index + 1:end - 1 - position], position + index + 1, end
                if position == 0:
                    return data[:end - 1], 0, end
            if position == 0:
                return None, 0, 0
            step = min(chunk, position)
            position -= step
            f.seek(position)
            data = f.read(step) + data
