"""LedgerWriter: records appended on the request path, written in batches by a background thread.

``append(entry)`` takes a lock for a few instructions and puts the entry in a bounded buffer: it never touches
a file, so a slow disk cannot slow a request. An entry is a :class:`LedgerRecord`, or a :class:`Deferred` (what the
service hands over: the answer it already has, whose records the flush thread builds, so that building them costs
the request nothing). When the buffer holds ``max_buffered`` records the record is dropped
and counted (``dropped``, ``dropped_predictions``); the service exports these counters as a metric. A daemon thread
drains the buffer at most ``flush_ms`` after the previous drain (sooner when the buffer is half full), serializes
and hash-chains the records (:mod:`time2bet.ledger.chain`), writes them with one ``write`` and makes them durable
(``fsync``) before counting them as ``written``. So a record appended more than ``flush_ms`` plus one write's time
ago survives a crash of the process (SIGKILL included) and, once fsynced, of the machine.

One writer per process and ledger directory, with an id no other process uses (:func:`service_writer_id` for a
service worker, the Dagster run id for the batch asset). Create it after the process forked (in a BentoML
worker's ``__init__``, not at import) and call :meth:`close` at exit (an ``atexit`` hook is registered; on SIGTERM
call it from the shutdown hook). A writer that finds its own segments already there (a retried Dagster step with
the same run id) continues its chain after the last complete record, discarding a torn tail first.
"""

from __future__ import annotations

import atexit
import collections
import datetime as dt
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Protocol, Self

from time2bet.ledger.chain import (
    GENESIS,
    encode_line,
    last_complete_line,
    safe_writer_id,
    segment_path,
    segments,
)
from time2bet.ledger.record import LedgerRecord, record_day, record_to_dict

log = logging.getLogger(__name__)

DEFAULT_FLUSH_MS = 200
DEFAULT_MAX_BUFFERED = 10_000
YIELD_EVERY = 32          # records the flush thread encodes between offering the GIL (about 0.3 ms of work)
GATHER_MAX = 256          # deferred entries built by one records_of call (then the GIL is offered)


class Deferred(Protocol):
    """Records built later, by the flush thread: ``n`` predictions (counted when dropped), ``records()`` them.

    A class whose entries can share records (the service's single-row answers: one record per model for a flush's
    worth of them instead of one each, which costs the flush thread a fraction of the time) also defines the
    classmethod ``records_of(entries)``; consecutive entries of that class are then built by one call, in runs of
    at most GATHER_MAX entries."""

    n: int

    def records(self) -> list[LedgerRecord]: ...


def service_writer_id(prefix: str = "svc") -> str:
    """``<prefix>-<host>-<pid>-<start time>``: unique per process (a reused pid starts at another time)."""
    started = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return safe_writer_id(f"{prefix}-{socket.gethostname()}-{os.getpid()}-{started}")


def _expand(entries, courteous: bool) -> tuple[list[LedgerRecord], list[tuple]]:
    """The entries as records (deferred ones built now), and the entries that failed to build, with why.
    ``courteous``: offer the GIL now and then (on the writer's own thread: request threads should not wait)."""
    records: list[LedgerRecord] = []
    rejected: list[tuple] = []

    def build_each(items) -> None:
        for count, entry in enumerate(items, start=1):
            if courteous and count % YIELD_EVERY == 0:
                time.sleep(0)
            try:
                records.extend(entry.records())
            except Exception as exc:  # noqa: BLE001 - a bug in a deferred entry loses that entry, counted, never the batch
                rejected.append((entry, f"{type(exc).__name__}: {exc}"))

    def build(run: list) -> None:
        gather = getattr(type(run[0]), "records_of", None)
        if gather is None:
            build_each(run)
            return
        for start in range(0, len(run), GATHER_MAX):
            if courteous and start:
                time.sleep(0)
            chunk = run[start:start + GATHER_MAX]
            try:
                built = gather(chunk)
            except Exception:  # noqa: BLE001 - then one by one: only the entry at fault is lost
                build_each(chunk)
                continue
            records.extend(built)

    run: list = []
    for entry in entries:
        if isinstance(entry, LedgerRecord):
            if run:
                build(run)
                run = []
            records.append(entry)
        elif run and type(entry) is not type(run[0]):
            build(run)
            run = [entry]
        else:
            run.append(entry)
    if run:
        build(run)
    return records, rejected


class LedgerWriter:
    """Appends records to ``<ledger_dir>/<day>/<writer_id>.jsonl`` (see the module's docstring).

    ``autostart=False`` starts no thread: records are written only by :meth:`flush` (a batch job that writes once
    at the end, and tests)."""

    def __init__(self, ledger_dir: Path | str, writer_id: str, *, flush_ms: float = DEFAULT_FLUSH_MS,
                 max_buffered: int = DEFAULT_MAX_BUFFERED, autostart: bool = True) -> None:
        self.ledger_dir = Path(ledger_dir)
        self.writer_id = safe_writer_id(writer_id)
        self.flush_s = max(0.001, float(flush_ms) / 1000.0)
        self.max_buffered = max(1, int(max_buffered))
        self._wake_at = max(1, self.max_buffered // 2)
        self._buffer: collections.deque[LedgerRecord | Deferred] = collections.deque()
        self._lock = threading.Lock()            # guards the buffer and the counters
        self._io_lock = threading.Lock()         # one flush at a time (thread, flush(), close())
        self._wake = threading.Event()
        self._closed = False
        # counters (records, and predictions = rows); read them for metrics
        self.written = 0
        self.dropped = 0
        self.written_predictions = 0
        self.dropped_predictions = 0
        self.failed_flushes = 0
        self.last_error: str | None = None
        # chain state, touched only under _io_lock
        self._seq = -1
        self._head = GENESIS
        self._day: str | None = None
        self._fd: int | None = None
        self._resumed = False
        self._thread: threading.Thread | None = None
        atexit.register(self.close)
        if autostart:
            self._thread = threading.Thread(target=self._run, name=f"ledger-{self.writer_id}", daemon=True)
            self._thread.start()

    @classmethod
    def from_settings(cls, settings, writer_id: str, **kwargs) -> LedgerWriter:
        """A writer on ``settings.ledger_dir`` with the configured flush and buffer bounds."""
        kwargs.setdefault("flush_ms", settings.ledger_flush_ms)
        kwargs.setdefault("max_buffered", settings.ledger_max_buffered)
        return cls(settings.ledger_dir, writer_id, **kwargs)

    # --- the request path -------------------------------------------------------------------------------------

    def append(self, record: LedgerRecord | Deferred) -> bool:
        """Buffer ``record`` for the next flush; False (and counted as dropped) when the buffer is full or the
        writer is closed. O(1), no I/O. The buffer's bound counts entries (a deferred one may become several
        records)."""
        with self._lock:
            if self._closed or len(self._buffer) >= self.max_buffered:
                self.dropped += 1
                self.dropped_predictions += record.n
                return False
            self._buffer.append(record)
            wake = len(self._buffer) == self._wake_at
        if wake:
            self._wake.set()
        return True

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"written": self.written, "dropped": self.dropped, "buffered": len(self._buffer),
                    "written_predictions": self.written_predictions,
                    "dropped_predictions": self.dropped_predictions, "failed_flushes": self.failed_flushes}

    # --- the background thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_s
        while not self._closed:
            self._wake.wait(max(0.0, next_flush - time.monotonic()))
            self._wake.clear()
            if self._closed:
                break
            next_flush = time.monotonic() + self.flush_s
            try:
                self.flush()
            except Exception:
                log.exception("ledger flush failed")

    def flush(self) -> int:
        """Write every buffered record now (write + fsync); the number written. Records a write failed for are
        counted as dropped (``last_error`` says why) and the segment is cut back to its last whole record."""
        with self._io_lock:
            with self._lock:
                if not self._buffer:
                    return 0
                entries, self._buffer = self._buffer, collections.deque()
            done = 0
            batch: list[LedgerRecord] = []
            try:
                batch, rejected = _expand(entries, self._thread is threading.current_thread())
                groups, encode_rejected = self._encode(batch)
                rejected += encode_rejected
                if rejected:
                    with self._lock:
                        self.dropped += len(rejected)
                        self.dropped_predictions += sum(r.n for r, _ in rejected)
                        self.last_error = (f"record {getattr(rejected[-1][0], 'prediction_id', '(deferred)')} not "
                                           f"serializable: {rejected[-1][1]}")
                    log.error("ledger: %d record(s) dropped, not serializable: %s", len(rejected), rejected[-1][1])
                    left_out = {id(r) for r, _ in rejected}
                    batch = [r for r in batch if id(r) not in left_out]
                for records, data, day, seq, head in groups:
                    self._append_durably(day, data)
                    self._seq, self._head = seq, head
                    with self._lock:
                        self.written += len(records)
                        self.written_predictions += sum(r.n for r in records)
                    done += len(records)
            except Exception as exc:
                lost = batch[done:] if batch else list(entries)
                with self._lock:
                    self.failed_flushes += 1
                    self.dropped += len(lost)
                    self.dropped_predictions += sum(r.n for r in lost)
                    self.last_error = f"{type(exc).__name__}: {exc}"
                raise
            return done

    def _encode(self, batch: list[LedgerRecord]) -> tuple[list[tuple[list[LedgerRecord], bytes, str, int, str]],
                                      list[tuple[LedgerRecord, str]]]:
        """The batch as chained lines grouped by segment day, [(records, bytes, day, seq after, hash after)], and the
        records that could not be serialized (a value of an unexpected type) with why: left out of the chain."""
        if not self._resumed:
            self._resume()
        seq, head, day = self._seq, self._head, self._day
        groups: list[tuple[list[LedgerRecord], list[bytes], str]] = []
        ends: list[tuple[int, str]] = []
        rejected: list[tuple[LedgerRecord, str]] = []
        for count, record in enumerate(batch, start=1):
            if count % YIELD_EVERY == 0 and self._thread is threading.current_thread():
                time.sleep(0)   # let request threads have the GIL: encoding waits, they should not
            try:
                record_on, data = record_day(record), record_to_dict(record)
            except (TypeError, ValueError, AttributeError) as exc:
                rejected.append((record, f"{type(exc).__name__}: {exc}"))
                continue
            if day is None or record_on > day:      # segments move forward only: chain order == file order
                day = record_on
            seq += 1
            line, head = encode_line(self.writer_id, seq, head, data)
            if not groups or groups[-1][2] != day:
                groups.append(([], [], day))
                ends.append((seq, head))
            groups[-1][0].append(record)
            groups[-1][1].append(line)
            ends[-1] = (seq, head)
        return ([(records, b"".join(lines), group_day, *end) for (records, lines, group_day), end in zip(groups, ends)],
                rejected)

    def _append_durably(self, day: str, data: bytes) -> None:
        fd = self._open(day)
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            try:   # leave no partial record behind: the chain state was not advanced
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise

    def _open(self, day: str) -> int:
        if self._fd is not None and self._day == day:
            return self._fd
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        path = segment_path(self.ledger_dir, day, self.writer_id)
        created = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if created:   # the new directory entries survive a power loss too
            for folder in (path.parent, self.ledger_dir):
                try:
                    dir_fd = os.open(folder, os.O_RDONLY)
                    try:
                        os.fsync(dir_fd)
                    finally:
                        os.close(dir_fd)
                except OSError:
                    pass
        self._day = day
        return self._fd

    def _resume(self) -> None:
        """Continue this writer's chain when its segments exist already (same writer id after a restart)."""
        import orjson

        own = segments(self.ledger_dir).get(self.writer_id, [])
        for path in reversed(own):
            line, _start, end = last_complete_line(path)
            if path.stat().st_size > end:   # a torn tail from a crash: not a record, cut it off before appending
                log.warning("ledger %s: discarding a torn tail of %d bytes", path, path.stat().st_size - end)
                with open(path, "r+b") as f:
                    f.truncate(end)
                    f.flush()
                    os.fsync(f.fileno())
            if line is None:
                continue
            try:
                last = orjson.loads(line)
                self._seq, self._head, self._day = int(last["seq"]), str(last["hash"]), path.parent.name
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                # its newest record is unreadable (verify reports it): start a new chain rather than lose records
                fresh = safe_writer_id(f"{self.writer_id}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%fZ}")
                log.error("ledger %s: the last record is unreadable; writing a new chain as %s", path, fresh)
                self.writer_id = fresh
            break
        self._resumed = True

    # --- shutdown ---------------------------------------------------------------------------------------------

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop the thread and write everything buffered; idempotent. Appends after close are dropped."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        try:
            self.flush()
        finally:
            with self._io_lock:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
            atexit.unregister(self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
